#!/usr/bin/env python
"""Choose a task's probe and calibration without touching a held-out split: k-fold CV on the training split.

Each fold refits every probe kind x calibration row of the results table (evaluation.probe_table) on the other
folds and scores the held fold; the table gives the mean over folds. Where a dataset has no test split of its own
(RetinaMNIST here: its test split is withheld), picking the recipe by its validation MAE would report a choice
made on the reported split; this is the honest way to make that choice.

    python scripts/probe_cv.py scripts/configs/dr-retina.json --C 0.001
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
from DAECounterfactualResearch.evaluation import probe_table  # noqa: E402
from DAECounterfactualLib.inference.explainer import Explainer  # noqa: E402
from DAECounterfactualResearch.task_fitting import TaskRecipe  # noqa: E402
from experiment_cli import add_bundle_arguments, chosen_task  # noqa: E402
from train_dae import load_data, load_experiment  # noqa: E402

METRICS = ("auc", "mae", "macro_f1")


def cross_validated_rows(recipe: TaskRecipe, z: np.ndarray, grades: np.ndarray, c: float, folds: int,
                         groups: np.ndarray, strata: np.ndarray | None = None) -> list[dict]:
    """probe_table's rows averaged over folds that keep each group (case) in one fold, stratified by grade."""
    from sklearn.model_selection import StratifiedGroupKFold

    per_fold = []
    for train, held in StratifiedGroupKFold(folds, shuffle=True, random_state=0).split(z, grades, groups):
        fold_strata = None if strata is None else strata[train]
        per_fold.append(probe_table(recipe, z[train], grades[train], z[held], grades[held], c, fold_strata))
    rows = []
    for k, first in enumerate(per_fold[0]):
        rows.append({"probe": first["probe"], "calibration": first["calibration"],
                     **{m: float(np.mean([fold[k][m] for fold in per_fold])) for m in METRICS}})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bundle_arguments(parser, task=True)
    parser.add_argument("--C", type=float, default=None, help="default: the C the bundle chose")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args(argv)
    experiment = load_experiment(args.config)
    recipe = TaskRecipe.from_config(chosen_task(parser, args, experiment))
    bundle = load_bundle(resolve_bundle(args.bundle or experiment["bundle"]["name"]))
    c = args.C if args.C is not None else float(bundle.task(recipe.name).metrics.get("C", 1.0))
    data, _ = load_data(experiment, args.data_root)
    train = data.subset(experiment["data"].get("train_split", "train"))
    z = Explainer(bundle).encode(train.images)
    rows = cross_validated_rows(recipe, z, train.grades, c, args.folds, train.case_id, recipe.strata(train))
    print(f"{bundle.bundle_id}, task {recipe.name}, C {c:g}, {args.folds}-fold CV on {len(train)} training images")
    print("probe | calibration | CV AUC | CV MAE | CV macro-F1")
    for row in rows:
        print(f"{row['probe']} | {row['calibration']} | {row['auc']:.3f} | {row['mae']:.3f} | {row['macro_f1']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
