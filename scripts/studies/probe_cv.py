#!/usr/bin/env python
"""Choose a task's probe and calibration without touching a held-out split: k-fold CV on the training split.

Each fold refits every probe kind x calibration row of the results table (evaluation.probe_table) on the other
folds and scores the held fold; the table gives the mean over folds. Where a dataset has no test split of its own
(RetinaMNIST here: its test split is withheld), picking the recipe by its validation MAE would report a choice
made on the reported split; this is the honest way to make that choice.

    python scripts/studies/probe_cv.py scripts/configs/dr-retina.json --C 0.001
    python scripts/studies/probe_cv.py scripts/configs/dr-retina.json --C 0.001 --labels ordinal   # an ordinal probe
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualResearch.evaluation import cross_validated_rows
from DAECounterfactualResearch.experiment import add_bundle_arguments, chosen_task, load_data, load_experiment
from DAECounterfactualResearch.task_fitting import TaskRecipe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bundle_arguments(parser, task=True)
    parser.add_argument("--C", type=float, default=None, help="default: the C the bundle chose")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--labels", choices=("binary", "ordinal"), default=None,
                        help="probe fitted on binary or ordinal labels (default: the task's own)")
    args = parser.parse_args(argv)
    experiment = load_experiment(args.config)
    recipe = TaskRecipe.from_config(chosen_task(parser, args, experiment))
    if args.labels:
        recipe = replace(recipe, ordinal=args.labels == "ordinal")
    bundle = load_bundle(resolve_bundle(args.bundle or experiment.name))
    c = args.C if args.C is not None else float(bundle.task(recipe.name).metrics.get("C", 1.0))
    data, _ = load_data(experiment, args.data_root)
    train = data.subset(experiment.train_split)
    z = Explainer(bundle).encode(train.images)
    rows = cross_validated_rows(recipe, z, train.grades, c, args.folds, train.case_id, recipe.strata(train))
    labels = "ordinal" if recipe.ordinal else "binary"
    print(f"{bundle.bundle_id}, task {recipe.name} ({labels} probe), C {c:g}, {args.folds}-fold CV on {len(train)} "
          "training images")
    print("probe | calibration | CV AUC | CV MAE | CV macro-F1")
    for row in rows:
        print(f"{row['probe']} | {row['calibration']} | {row['auc']:.3f} | {row['mae']:.3f} | {row['macro_f1']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
