#!/usr/bin/env python
"""Choose step presets by measurement: inversion network calls and reconstruction error of candidate presets.

Reconstruction error is what the quality target (docs/PERFORMANCE.md) compares with the reference preset; the
calls of the inversion are what a tolerance saves (decoding costs the same for every candidate with the same
decoding steps). Check a chosen candidate's counterfactuals too (scripts/studies/preset_validity.py): an inversion
that retraces the image more exactly can leave z_sem edits less room (docs/PERFORMANCE.md, dr-retina).
Each candidate is INVERT,DECODE,REFINE[,TOL[,SPACING[,ANDERSON]]]:

    python scripts/tune_presets.py scripts/configs/vcf-ct.json --data-root DATA \
        --candidates 250,100,0 10,10,4 10,10,12,0.002,quadratic 10,10,12,0.001,quadratic
    python scripts/tune_presets.py scripts/configs/vcf-ct.json --data-root DATA --residuals 10   # where to refine
"""

from __future__ import annotations

import argparse
import sys

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.cli.bench import preset_label
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualResearch.bundle_making import gain_images
from DAECounterfactualResearch.experiment import add_bundle_arguments, load_data, load_experiment
from DAECounterfactualResearch.preset_tuning import measure, parse_candidate, refinement_residuals

DEFAULT_CANDIDATES = ("250,100,0", "10,10,4", "20,20,2", "8,8,12,0.003,quadratic", "10,10,12,0.003,quadratic",
                      "10,10,12,0.002,quadratic", "10,10,12,0.001,quadratic", "10,10,12,0.002,uniform")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bundle_arguments(parser)
    parser.add_argument("--images", type=int, default=8, help="validation images, spread over the split")
    parser.add_argument("--candidates", nargs="+", default=DEFAULT_CANDIDATES)
    parser.add_argument("--residuals", type=int, default=None, metavar="STEPS",
                        help="instead: the residual of each fixed-point iteration at each of STEPS inversion steps")
    args = parser.parse_args(argv)
    experiment = load_experiment(args.config)
    explainer = Explainer(load_bundle(resolve_bundle(args.bundle or experiment.name)))
    data, _ = load_data(experiment, args.data_root)
    images = gain_images(data.subset(experiment.val_split), args.images)
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
