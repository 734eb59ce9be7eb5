#!/usr/bin/env python
"""Do faster step presets cost counterfactual quality? Validity and reconstruction error per candidate preset.

tune_presets.py measures what a preset costs in inversion calls and reconstruction error; this measures what the
counterfactuals of the whole explanation do under it (evaluation.counterfactual_checks: re-encoded grade equals the
target, reflection crosses the hyperplane, fine texture against the reconstruction's) at the bundle's stored edit
gain, or at the gain ``--gains`` gives each candidate (the gain each was fitted with), on images spread over a
split:

    python scripts/studies/preset_validity.py scripts/configs/vcf-ct.json --data-root DATA --split test \\
        --images 24 --candidates fast 8,8,12,0.004,quadratic

A candidate is a preset name of the bundle or INVERT,DECODE,REFINE[,TOL[,SPACING[,ANDERSON]]].
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.cli.bench import preset_label
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualResearch.evaluation import counterfactual_checks, spread
from DAECounterfactualResearch.experiment import add_bundle_arguments, chosen_task, load_data, load_experiment
from DAECounterfactualResearch.preset_tuning import parse_candidate
from DAECounterfactualResearch.task_fitting import TaskRecipe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bundle_arguments(parser, task=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--images", type=int, default=24, help="graded images spread over the split's grades")
    parser.add_argument("--candidates", nargs="+", default=["fast", "standard"])
    parser.add_argument("--gains", type=float, nargs="+", default=None, help="an edit gain per candidate")
    args = parser.parse_args(argv)
    if args.gains is not None and len(args.gains) != len(args.candidates):
        parser.error(f"--gains: {len(args.gains)} gains for {len(args.candidates)} candidates")
    experiment = load_experiment(args.config)
    recipe = TaskRecipe.from_config(chosen_task(parser, args, experiment))
    task = recipe.name
    explainer = Explainer(load_bundle(resolve_bundle(args.bundle or experiment.name)))
    data, _ = load_data(experiment, args.data_root)
    split = data.subset(args.split)
    grades = recipe.labels(split)
    picks = spread(args.images, grades)
    if not len(picks):
        parser.error(f"split {args.split!r} of {args.config} has no graded images for task {task!r}")
    images, grades = split.images[picks].astype("float32"), grades[picks]
    stored = explainer.bundle.task(task)
    print(f"task {task}, stored edit gain {stored.edit_gain:.3g}, {len(images)} {args.split} images")
    print(f"{'preset':36s} | gain  | validity | per grade | reflection | recon MSE | grain (per grade)")
    for text, gain in zip(args.candidates, args.gains or [stored.edit_gain] * len(args.candidates)):
        preset = explainer.preset(text if text in explainer.config.presets else parse_candidate(text))
        checks = counterfactual_checks(explainer, images, grades, replace(stored, edit_gain=gain), preset)
        print(f"{preset_label(vars(preset)):36s} | {gain:5.3g} | {checks['validity']:8.3f} | "
              f"{' '.join(f'{v:.2f}' for v in checks['validity_by_target'])} | {checks['reflection_validity']:10.3f} | "
              f"{checks['reconstruction']['mse']:.2e} | {checks['grain']:.2f} "
              f"({' '.join(f'{v:.2f}' for v in checks['grain_by_target'])})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
