#!/usr/bin/env python
"""Choose step presets by measurement: inversion network calls and reconstruction error of candidate presets.

Reconstruction error is what the issue's quality target compares with the reference preset; the calls of the
inversion are what a tolerance saves (decoding costs the same for every candidate with the same decoding steps).
Each candidate is INVERT,DECODE,REFINE[,TOL[,SPACING]]:

    python scripts/tune_presets.py scripts/configs/vcf-ct.json --data-root DATA \
        --candidates 250,100,0 10,10,4 10,10,12,0.002,quadratic 10,10,12,0.001,quadratic
    python scripts/tune_presets.py scripts/configs/vcf-ct.json --data-root DATA --residuals 10   # where to refine
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "DAECounterfactual"))
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from DAECounterfactualLib.cli.bench import counting_unet_calls, preset_label  # noqa: E402
from DAECounterfactualLib.bundle.store import StepPreset, load_bundle, resolve_bundle  # noqa: E402
from DAECounterfactualLib.model.diffusion import ddim_invert, ddim_sample  # noqa: E402
from DAECounterfactualLib.inference.explainer import Explainer  # noqa: E402
from fit_edit_gain import gain_images  # noqa: E402
from experiment_cli import add_bundle_arguments  # noqa: E402
from train_dae import load_data, load_experiment  # noqa: E402

DEFAULT_CANDIDATES = ("250,100,0", "10,10,4", "20,20,2", "8,8,12,0.003,quadratic", "10,10,12,0.003,quadratic",
                      "10,10,12,0.002,quadratic", "10,10,12,0.001,quadratic", "10,10,12,0.002,uniform")


def parse_candidate(text: str) -> StepPreset:
    fields = text.split(",")
    numbers = [int(f) for f in fields[:3]] + [float(f) for f in fields[3:4]]
    return StepPreset(*numbers, *fields[4:5])


@torch.inference_mode()
def measure(explainer: Explainer, images: np.ndarray, preset: StepPreset) -> dict[str, float]:
    """Mean inversion calls per image (one image at a time, as in the module) and mean reconstruction MSE."""
    model, calls, errors = explainer.model, 0, []
    for image in images:
        x = torch.from_numpy(image[None])
        z = model.encode(x)
        with counting_unet_calls(model) as counts:
            x_T = ddim_invert(model, x, z, explainer.schedule, preset.invert, None, preset.refine,
                              preset.refine_tol, preset.spacing)
        calls += counts["calls"]
        decoded = ddim_sample(model, x_T, z, explainer.schedule, preset.decode, spacing=preset.spacing)
        errors.append(float(((decoded.clamp(-1, 1) - x) ** 2).mean()))
    return {"inversion_calls": calls / len(images), "recon_mse": float(np.mean(errors))}


@torch.inference_mode()
def refinement_residuals(explainer: Explainer, images: np.ndarray, steps: int, iterations: int = 8) -> None:
    """Change of x (RMS, worst image) made by each fixed-point iteration at each inversion step (uniform spacing):
    shows which steps need refinement and which have converged after two or three iterations."""
    model, log = explainer.model, []
    x = torch.from_numpy(images)
    ddim_invert(model, x, model.encode(x), explainer.schedule, steps, refine=iterations, refine_log=log)
    for t, changes in log:
        print(f"t={t:4d} " + " ".join(f"{r:.1e}" for r in changes), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bundle_arguments(parser)
    parser.add_argument("--images", type=int, default=8, help="validation images, spread over the split")
    parser.add_argument("--candidates", nargs="+", default=DEFAULT_CANDIDATES)
    parser.add_argument("--residuals", type=int, default=None, metavar="STEPS",
                        help="instead: the residual of each fixed-point iteration at each of STEPS inversion steps")
    args = parser.parse_args(argv)
    experiment = load_experiment(args.config)
    explainer = Explainer(load_bundle(resolve_bundle(args.bundle or experiment["bundle"]["name"])))
    data, _ = load_data(experiment, args.data_root)
    images = gain_images(data.subset(experiment["data"].get("val_split", "val")), args.images)
    if args.residuals:
        refinement_residuals(explainer, images, args.residuals)
        return 0
    print(f"{'preset':36s} | inversion calls/image | recon MSE")
    for text in args.candidates:
        preset = explainer.config.check_steps(parse_candidate(text))
        result = measure(explainer, images, preset)
        print(f"{preset_label(vars(preset)):36s} | {result['inversion_calls']:21.1f} | {result['recon_mse']:.2e}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
