#!/usr/bin/env python
"""Fit the edit gain of a bundle's tasks on validation images and store it in the bundle (weights untouched).

The gain makes a counterfactual for grade g re-encode to g (see task_fitting.fit_edit_gain). make_bundle.py
fits it for new bundles; this script refits it for an existing one:

    python scripts/fit_edit_gain.py scripts/configs/dr-retina.json [--data-root DATA] [--images 12]

``--with-presets`` first stores the experiment config's step presets in the bundle (after tune_presets.py), so the
gain is fitted with the presets users will run.

``--response-at 2 4 8`` stores nothing: it prints, for each gain, where each grade's counterfactuals land, to show
whether a grade is out of the decoder's reach (more gain no longer moves it).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import numpy as np

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import add_task, load_bundle, update_config
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualResearch.bundle_making import experiment_presets, fitted_tasks, gain_images
from DAECounterfactualResearch.experiment import add_bundle_arguments, load_data, load_experiment
from DAECounterfactualResearch.model_card import with_gain_section, with_presets_line
from DAECounterfactualResearch.task_fitting import edit_response


def print_response_by_target(explainer: Explainer, images: np.ndarray, task, gains: list[float], preset: str) -> None:
    """Per gain and target grade: the target distance, the mean re-encoded distance, the share graded as the target."""
    targets = np.array([task.calibration.inverse(g) for g in range(len(task.grade_names))])
    print(f"task {task.name}: target distances {np.round(targets, 2).tolist()}")
    print("gain | " + " | ".join(f"{name}: reached, valid" for name in task.grade_names))
    for gain in gains:
        requested, achieved = edit_response(explainer, images, replace(task, edit_gain=gain), preset)
        reached = (np.tile(targets, len(images)) - requested + achieved).reshape(len(images), len(targets))
        valid = task.calibration.grade(reached) == np.arange(len(targets))
        print(f"{gain:g} | " + " | ".join(f"{reached[:, g].mean():.2f}, {valid[:, g].mean():.2f}"
                                          for g in range(len(targets))), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bundle_arguments(parser)
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--response-at", type=float, nargs="+", default=None, metavar="GAIN",
                        help="print where each grade's counterfactuals land at these gains; store nothing")
    parser.add_argument("--with-presets", action="store_true",
                        help="first store the experiment config's step presets in the bundle")
    args = parser.parse_args(argv)
    if args.with_presets and args.response_at:
        parser.error("--response-at stores nothing; fit the gain with --with-presets separately")
    experiment = load_experiment(args.config)
    path = resolve_bundle(args.bundle or experiment.name)
    bundle = load_bundle(path)
    if args.with_presets:
        presets = experiment_presets(experiment)
        if not presets:
            parser.error(f"{args.config}: its bundle section names no presets")
        update_config(path, with_presets_line(bundle.model_card, replace(bundle.config, presets=presets)),
                      presets=presets)
        bundle = load_bundle(path)
    data, _ = load_data(experiment, args.data_root)
    images = gain_images(data.subset(experiment.val_split), args.images)
    explainer = Explainer(bundle)
    if args.response_at:
        for task in bundle.tasks.values():
            print_response_by_target(explainer, images, task, args.response_at, args.preset)
        return 0
    tasks = [replace(t, edit_gain=1.0) for t in bundle.tasks.values()]
    tasks = fitted_tasks(explainer, tasks, images, args.preset)
    card = with_gain_section(bundle.model_card, tasks)
    for task in tasks:
        add_task(path, task, overwrite=True, model_card=card)
    print(f"{path}: edit gains stored")
    return 0


if __name__ == "__main__":
    sys.exit(main())
