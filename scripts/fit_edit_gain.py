#!/usr/bin/env python
"""Fit the edit gain of a bundle's tasks on validation images and store it in the bundle (weights untouched).

The gain makes a counterfactual for grade g re-encode to g (see task_fitting.fit_edit_gain). make_bundle.py
fits it for new bundles; this script refits it for an existing one:

    python scripts/fit_edit_gain.py scripts/configs/dr-retina.json [--data-root DATA] [--images 12]

``--response-at 2 4 8`` stores nothing: it prints, for each gain, where each grade's counterfactuals land, to show
whether a grade is out of the decoder's reach (more gain no longer moves it).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "DAECounterfactual"))
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402

from DAECounterfactualLib.bundle.store import add_task, load_bundle, resolve_bundle  # noqa: E402
from DAECounterfactualLib.inference.explainer import Explainer  # noqa: E402
from DAECounterfactualResearch.task_fitting import (  # noqa: E402
    MIN_RESPONSE_CORRELATION, MIN_RESPONSE_SLOPE, edit_response, fit_edit_gain)
from experiment_cli import add_bundle_arguments  # noqa: E402
from train_dae import load_data, load_experiment  # noqa: E402

GAIN_HEADING = "## Counterfactual edit gain"


def gain_images(val, count: int) -> np.ndarray:
    """``count`` validation images spread over the split (graded ones first choice)."""
    pool = val.images[val.grades >= 0] if (val.grades >= 0).sum() >= count else val.images
    return pool[np.linspace(0, len(pool) - 1, min(count, len(pool))).round().astype(int)].astype(np.float32)


def fitted_tasks(explainer: Explainer, tasks, images: np.ndarray, preset: str) -> list:
    """Each task with its edit gain fitted and the fit recorded in its metrics."""
    fitted = []
    for task in tasks:
        gain, record = fit_edit_gain(explainer, images, task, preset)
        fitted.append(replace(task, edit_gain=gain, metrics={**task.metrics, "edit_gain_fit": record}))
        print(f"task {task.name}: edit gain {gain:.2f} ({record})")
    return fitted


def gain_card_section(tasks) -> str:
    lines = [GAIN_HEADING,
             "Latent steps along the probe normal are multiplied by the task's edit gain, fitted on validation images "
             "so that decoded counterfactuals re-encode to their target distance (the decoder renders only part of "
             "a latent step). Response slope = re-encoded step / requested step."]
    for task in tasks:
        rounds = task.metrics.get("edit_gain_fit", {}).get("rounds", [])
        fits = "; ".join(f"gain {r['gain']:.2f} → slope {r['response_slope']:.3f} (r={r['correlation']:.2f})"
                         for r in rounds)
        lines.append(f"- Task `{task.name}`: edit gain {task.edit_gain:.2f} ({fits}).")
        if task.metrics.get("edit_gain_fit", {}).get("no_response"):
            lines.append(f"  **The decoder does not follow this task's probe direction** (response below slope "
                         f"{MIN_RESPONSE_SLOPE} or correlation {MIN_RESPONSE_CORRELATION}): no gain can make valid "
                         "counterfactuals, so none is applied; its counterfactuals barely differ from the "
                         "reconstruction. Grades are unaffected.")
    return "\n".join(lines) + "\n"


def with_gain_section(card: str, tasks) -> str:
    """The model card with its edit-gain section replaced (or appended)."""
    head = card.split(GAIN_HEADING)[0].rstrip("\n")
    return f"{head}\n\n{gain_card_section(tasks)}"


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
    args = parser.parse_args(argv)
    experiment = load_experiment(args.config)
    path = resolve_bundle(args.bundle or experiment["bundle"]["name"])
    bundle = load_bundle(path)
    data, _ = load_data(experiment, args.data_root)
    images = gain_images(data.subset(experiment["data"].get("val_split", "val")), args.images)
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
