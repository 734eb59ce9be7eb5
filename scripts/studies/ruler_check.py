#!/usr/bin/env python
"""How well do the faithfulness rulers read fractures of known height loss? Intact and fractured phantom pairs.

Each pair is one phantom built twice from the same seed, once with a fracture of a drawn kind and height loss
(0.20-0.50) on its middle vertebra; its patches are cut at several lateral offsets as build_dataset.py cuts them.
The Genant ratio ruler (the faithfulness of evaluate.py) reads the fractured patch alone; the reference ruler
reads it against the intact one (evaluate.py's faithfulness from intact inputs). Printed per ruler and fracture
kind: how often the measured grade is the fracture's grade, and the mean and SD of measured minus true loss.

    python scripts/studies/ruler_check.py scripts/configs/vcf-ct.json [--pairs 24]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualResearch.evaluation import ct_body_measure, pair_readings, ruler_summary_rows
from DAECounterfactualResearch.experiment import add_bundle_arguments, load_experiment
from DAECounterfactualResearch.synthesis import FRACTURE_KINDS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bundle_arguments(parser)
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--offsets", type=float, nargs="+", default=[-6, -2, 0, 4])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    experiment = load_experiment(args.config)
    config = load_bundle(resolve_bundle(args.bundle or experiment.name)).config
    measure, rng = ct_body_measure(config), np.random.default_rng(args.seed)
    readings = []
    for n in range(args.pairs):
        kind, loss = FRACTURE_KINDS[n % len(FRACTURE_KINDS)], float(rng.uniform(0.2, 0.5))
        readings += pair_readings(config, measure, 100 + n, loss, kind, tuple(args.offsets))
    print("ruler | kind | patches | grade agreement | mean error | error SD")
    print("\n".join(ruler_summary_rows(readings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
