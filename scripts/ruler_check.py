#!/usr/bin/env python
"""How well do the faithfulness rulers read fractures of known height loss? Intact and fractured phantom pairs.

Each pair is one phantom built twice from the same seed, once with a fracture of a drawn kind and height loss
(0.20-0.50) on its middle vertebra; its patches are cut at several lateral offsets as build_dataset.py cuts them.
The Genant ratio ruler (the faithfulness of evaluate.py) reads the fractured patch alone; the reference ruler
reads it against the intact one (evaluate.py's faithfulness from intact inputs). Printed per ruler and fracture
kind: how often the measured grade is the fracture's grade, and the mean and SD of measured minus true loss.

    python scripts/ruler_check.py scripts/configs/vcf-ct.json [--pairs 24]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "DAECounterfactual"))
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402

from DAECounterfactualLib.bundle.store import load_bundle, resolve_bundle  # noqa: E402
from DAECounterfactualResearch.evaluation import BodyMeasure, ct_body_measure, reference_height_loss  # noqa: E402
from DAECounterfactualLib.inference.scores import cut_patch, to_model_input, volume_value_range  # noqa: E402
from DAECounterfactualResearch.synthesis import FRACTURE_KINDS, genant_grade, make_spine_phantom  # noqa: E402
from experiment_cli import add_bundle_arguments  # noqa: E402
from train_dae import load_experiment  # noqa: E402

LABEL = 21  # the middle vertebra of a phantom (T9-T11 by default)


def _patch(config, phantom, offset: float) -> np.ndarray:
    """The model input of the middle vertebra, cut as the module cuts it but ``offset`` mm off its centre."""
    ras = next(p.ras for p in phantom.positions if p.label == LABEL)
    patch = cut_patch(config, phantom.volume, ras, offset)
    return to_model_input(config, [patch], volume_value_range(config, phantom.volume))[0]


def pair_readings(config, measure: BodyMeasure, seed: int, loss: float, kind: str,
                  offsets: tuple[float, ...]) -> list[dict]:
    """Both rulers' height loss of one fractured phantom vertebra, at each lateral offset."""
    intact, fractured = make_spine_phantom(seed=seed), make_spine_phantom(seed=seed, fractures={LABEL: (loss, kind)})
    readings = []
    for offset in offsets:
        before, after = measure.heights(_patch(config, intact, offset)), measure.heights(_patch(config, fractured, offset))
        if before is None or after is None:
            continue
        readings.append({"kind": kind, "loss": loss, "offset": offset, "ratio": after.height_loss,
                         "reference": reference_height_loss(after, before)})
    return readings


def summary_rows(readings: list[dict]) -> list[str]:
    rows = []
    for ruler in ("ratio", "reference"):
        for kind in FRACTURE_KINDS:
            sample = [r for r in readings if r["kind"] == kind]
            if not sample:
                continue
            error = np.array([r[ruler] - r["loss"] for r in sample])
            agree = np.mean([genant_grade(r[ruler]) == genant_grade(r["loss"]) for r in sample])
            rows.append(f"{ruler} | {kind} | {len(sample)} | {agree:.2f} | {error.mean():+.3f} | {error.std():.3f}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bundle_arguments(parser)
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--offsets", type=float, nargs="+", default=[-6, -2, 0, 4])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    experiment = load_experiment(args.config)
    config = load_bundle(resolve_bundle(args.bundle or experiment["bundle"]["name"])).config
    measure, rng = ct_body_measure(config), np.random.default_rng(args.seed)
    readings = []
    for n in range(args.pairs):
        kind, loss = FRACTURE_KINDS[n % len(FRACTURE_KINDS)], float(rng.uniform(0.2, 0.5))
        readings += pair_readings(config, measure, 100 + n, loss, kind, tuple(args.offsets))
    print("ruler | kind | patches | grade agreement | mean error | error SD")
    print("\n".join(summary_rows(readings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
