#!/usr/bin/env python
"""A DenseNet121 beside one task of a bundle, on a subset of the training patches the 2 CPU cores can afford.

evaluate.py trains its baseline on every training patch of every task; on the disc set (21,070 augmented patches,
four tasks) that is hours on a CPU. This study trains one task's DenseNet121 on the patches whose ``augmentation``
index is at most ``--augmentations`` (0: one plain patch per disc), keeps the epoch with the best validation AUC
(as evaluate.py does, so its figures are optimistic), and prints its validation figures beside the shipped
bundle's, with paired bootstrap intervals of the difference (same patients resampled for both).

    python scripts/studies/task_baseline.py scripts/configs/disc-mri.json --data-root DATA --task pfirrmann \\
        --augmentations 4 --epochs 8
    python scripts/studies/task_baseline.py ... --folds 5   # both models cross-validated by patient on training
    python scripts/studies/task_baseline.py ... --folds 5 --components 16 24 32   # DAE probes of several widths
    python scripts/studies/task_baseline.py ... --folds 5 --labels binary ordinal --C 0.0001 \
        --densenet-from docs/results/disc-mri/densenet_cv_pfirrmann.json   # other probes, the same DenseNet121
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualResearch.baseline import BaselineConfig, predict_probabilities, scores_and_grades, train_baseline
from DAECounterfactualResearch.evaluation import difference_intervals
from DAECounterfactualResearch.experiment import add_bundle_arguments, chosen_task, load_data, load_experiment
from DAECounterfactualResearch.task_fitting import TaskRecipe, grading_metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bundle_arguments(parser, task=True)
    parser.add_argument("--augmentations", type=int, default=4, help="highest augmentation index trained on")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--folds", type=int, default=0, help="compare under K-fold cross-validation by patient on "
                        "the training split instead of on the validation split (baseline_cv)")
    parser.add_argument("--components", type=int, nargs="+", default=None,
                        help="with --folds: DAE probes on these numbers of principal directions (0: all), each "
                             "against the same DenseNet121 (default: the task's own)")
    parser.add_argument("--labels", nargs="+", choices=("binary", "ordinal"), default=None,
                        help="with --folds: probes fitted on binary or ordinal labels, each at every width "
                             "(default: the task's own)")
    parser.add_argument("--C", type=float, default=None, help="with --folds: the probes' C (default: the bundle's)")
    parser.add_argument("--densenet-from", type=Path, default=None,
                        help="with --folds: an earlier --out JSON of the same split and folds, whose DenseNet121 "
                             "out-of-fold scores are used instead of training it again")
    parser.add_argument("--out", default=None, help="JSON of the --folds comparison")
    args = parser.parse_args(argv)
    experiment = load_experiment(args.config)
    recipe = TaskRecipe.from_config(chosen_task(parser, args, experiment))
    bundle = load_bundle(resolve_bundle(args.bundle or experiment.name))
    data, _ = load_data(experiment, args.data_root)
    train, val = data.subset(experiment.train_split), data.subset(experiment.val_split)
    if args.folds:
        from DAECounterfactualResearch.baseline_cv import cross_validated_comparison

        widths = args.components if args.components is not None else [recipe.probe_components]
        labels = args.labels or ["ordinal" if recipe.ordinal else "binary"]
        recipes = {probe_label(k, label): replace(recipe, probe_components=k, ordinal=label == "ordinal")
                   for label in labels for k in widths}
        earlier = json.loads(args.densenet_from.read_text(encoding="utf-8")) if args.densenet_from else None
        report = cross_validated_comparison(Explainer(bundle), bundle.task(recipe.name), recipes, train,
                                            args.augmentations, args.folds, args.epochs, args.C, earlier)
        report = {"bundle": bundle.bundle_id, "task": recipe.name, "augmentations": args.augmentations,
                  "epochs": earlier["epochs"] if earlier else args.epochs,
                  "C": args.C if args.C is not None else bundle.task(recipe.name).metrics["C"],
                  "densenet_from": str(args.densenet_from) if earlier else None, **report}
        print(json.dumps({k: v for k, v in report.items() if k != "out_of_fold"}, indent=1))
        if args.out:
            with open(args.out, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(report, indent=1) + "\n")
        return 0
    if "augmentation" in train.extra:
        train = train.select(train.extra["augmentation"] <= args.augmentations)
    y_train, y_val = recipe.labels(train), recipe.labels(val)
    spec = bundle.task(recipe.name)
    base = train_baseline(train.images, y_train, val.images, y_val, len(spec.grade_names), recipe.positive_min_grade,
                          BaselineConfig(epochs=args.epochs))
    theirs = scores_and_grades(predict_probabilities(base.model, val.images), recipe.positive_min_grade)
    grades = Explainer(bundle).grade(val.images, spec)
    ours = (grades.distance, grades.grade)
    rows = {"shipped DAE": grading_metrics(*ours, y_val, recipe.positive_min_grade),
            f"DenseNet121 (epoch {base.best_epoch} of {args.epochs}, {len(train)} patches)":
                grading_metrics(*theirs, y_val, recipe.positive_min_grade)}
    difference = difference_intervals(ours, theirs, y_val, recipe.positive_min_grade, val.case_id)
    print(f"{bundle.bundle_id}, task {recipe.name}, validation split ({len(val)} images, "
          f"{len(np.unique(val.case_id))} cases); DenseNet121 trained {base.seconds:.0f} s")
    print("model | AUC | MAE | macro-F1 | accuracy")
    for name, m in rows.items():
        print(f"{name} | {m['auc']:.3f} | {m['mae']:.3f} | {m['macro_f1']:.3f} | {m['accuracy']:.3f}")
    print("DAE minus DenseNet121, 95 % paired interval: " + json.dumps(
        {k: [round(v, 3) for v in interval] for k, interval in difference.items()}))
    return 0


def probe_label(components: int, labels: str = "binary") -> str:
    width = f"{components} directions" if components else "all directions"
    return f"DAE probe, {width}" + (", ordinal" if labels == "ordinal" else "")


if __name__ == "__main__":
    sys.exit(main())
