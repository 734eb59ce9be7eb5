#!/usr/bin/env python
"""Evaluate a bundle the way the paper does, beside a DenseNet121 baseline, plus counterfactual checks.

    python scripts/evaluate.py scripts/configs/vcf-ct.json --data-root DATA --split test --out docs/results/vcf-ct
    python scripts/evaluate.py scripts/configs/dr-retina.json --split val --out docs/results/dr-retina
    python scripts/evaluate.py --report docs/results            # (re)write docs/RESULTS.md from every results.json

Writes results.json and plots (ROC, calibration, t-SNE of z_sem, counterfactual strips) to --out. Probes are
refitted on the training split with the bundle's regularisation for the table rows; the bundle's own task is
used for the counterfactuals. The DAE is never retrained here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualLib.io.files import sha256_file
from DAECounterfactualResearch.baseline import (BaselineConfig, predict_probabilities, scores_and_grades,
                                                train_baseline)
from DAECounterfactualResearch.evaluation import (
    confusion_matrix,
    counterfactual_checks,
    counterfactual_intervals,
    ct_body_measure,
    difference_intervals,
    frechet_distance,
    grading_intervals,
    labelled,
    latent_geometry,
    previous_baseline,
    probe_table,
    reconstruction_by_preset,
    roc_curve_points,
    ruler_agreement,
    spread,
)
from DAECounterfactualResearch.experiment import DEFAULT_DATA_ROOT, load_data, load_experiment
from DAECounterfactualResearch.report import write_plots, write_results_markdown
from DAECounterfactualResearch.task_fitting import TaskRecipe, grading_metrics

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path, nargs="?")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--bundle", default=None, help="bundle folder or name (default: the experiment's name)")
    parser.add_argument("--split", default="test", help="held-out split to report on (RetinaMNIST: val)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--cases", type=int, default=40, help="images explained for the counterfactual checks")
    parser.add_argument("--preset", default="standard")
    parser.add_argument("--reconstruction-images", type=int, default=8,
                        help="held-out images reconstructed with every step preset (0 skips)")
    parser.add_argument("--baseline-epochs", type=int, default=20, help="0 skips the DenseNet121 baseline")
    parser.add_argument("--reuse-baseline", action="store_true",
                        help="keep the DenseNet121 results of an earlier results.json in --out (same data and split)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--report", type=Path, default=None, help="write docs/RESULTS.md from this results folder")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.report:
        path = write_results_markdown(args.report, REPO / "docs" / "RESULTS.md")
        print(f"wrote {path}")
        return 0
    if args.config is None or args.out is None:
        parser.error("an experiment config and --out are required (or --report)")

    experiment = load_experiment(args.config)
    bundle = load_bundle(resolve_bundle(args.bundle or experiment.name))
    explainer = Explainer(bundle)
    data, data_path = load_data(experiment, args.data_root)
    train, val = data.subset(experiment.train_split), data.subset("val")
    held_out = data.subset(args.split)
    if len(held_out) == 0:
        raise SystemExit(f"{data_path}: no images in split {args.split!r}")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    z_train, z_held = explainer.encode(train.images), explainer.encode(held_out.images)
    first_recipe = TaskRecipe.from_config(experiment.tasks[0])
    eval_cases = held_out.case_id[first_recipe.labels(held_out) >= 0]  # the unit the bootstrap intervals resample
    results = {"bundle": bundle.bundle_id, "experiment": args.config.name, "data": data_path.name,
               "data_sha256": sha256_file(data_path),
               "split": args.split, "n_train": len(train), "n_eval": len(held_out),
               "n_eval_cases": len(np.unique(eval_cases)), "tasks": {}}
    if args.reconstruction_images > 0:
        reconstructed = spread(args.reconstruction_images, first_recipe.labels(held_out))
        results["reconstruction_by_preset"] = reconstruction_by_preset(explainer, held_out.images[reconstructed])
        results["reconstruction_cases"] = reconstructed.tolist()
    for task in experiment.tasks:
        recipe = TaskRecipe.from_config(task)
        spec = bundle.task(recipe.name)
        c = float(spec.metrics.get("C", 1.0))
        train_grades, val_grades, held_grades = recipe.labels(train), recipe.labels(val), recipe.labels(held_out)
        rows = probe_table(recipe, z_train, train_grades, z_held, held_grades, c, recipe.strata(train))
        z_eval, g_eval = labelled(z_held, held_grades)
        eval_cases = held_out.case_id[held_grades >= 0]
        shipped = explainer.grade_latents(z_eval, spec)
        positive = g_eval >= recipe.positive_min_grade
        entry = {"rows": rows, "shipped": {"probe": spec.probe.kind, "calibration": spec.calibration.method,
                                           "distance": shipped.distance.tolist(), "grades": g_eval.tolist(),
                                           "roc": roc_curve_points(shipped.distance, positive),
                                           "calibration_coefficients": list(spec.calibration.coefficients),
                                           "confusion": confusion_matrix(g_eval, shipped.grade, len(spec.grade_names)),
                                           "intervals": grading_intervals(shipped.distance, shipped.grade, g_eval,
                                                                          recipe.positive_min_grade, eval_cases)},
                 "grade_names": list(spec.grade_names), "positive_min_grade": recipe.positive_min_grade,
                 "latent_geometry": latent_geometry(spec.probe, z_train)}
        previous = previous_baseline(args.out, results, recipe.name) if args.reuse_baseline else None
        if previous:
            entry["baseline"] = previous
        elif args.baseline_epochs:
            base = train_baseline(train.images, train_grades, *labelled(val.images, val_grades), len(spec.grade_names),
                                  recipe.positive_min_grade, BaselineConfig(epochs=args.baseline_epochs))
            held_images = labelled(held_out.images, held_grades)[0]
            score, predicted = scores_and_grades(predict_probabilities(base.model, held_images),
                                                 recipe.positive_min_grade)
            entry["baseline"] = {"model": "MONAI DenseNet121 (from scratch)", "best_epoch": base.best_epoch,
                                 "train_seconds": base.seconds, "history": base.history,
                                 **grading_metrics(score, predicted, g_eval, recipe.positive_min_grade),
                                 "roc": roc_curve_points(score, positive),
                                 "scores": score.tolist(), "predicted": predicted.tolist()}
        if "scores" in entry.get("baseline", {}):  # per-image scores: a paired comparison on the same cases
            entry["baseline"]["difference_intervals"] = difference_intervals(
                (shipped.distance, shipped.grade),
                (np.array(entry["baseline"]["scores"]), np.array(entry["baseline"]["predicted"])),
                g_eval, recipe.positive_min_grade, eval_cases)
        picks = spread(args.cases, held_grades)
        measure = ct_body_measure(bundle.config) if bundle.config.preprocessing.kind == "ct_window" else None
        checks = counterfactual_checks(explainer, held_out.images[picks], held_grades[picks], recipe.name,
                                       args.preset, measure, progress=_progress("counterfactuals"))
        latents, explanations = checks.pop("latents"), checks.pop("explanations")
        real = {g: z_eval[g_eval == g] for g in range(len(spec.grade_names))}
        checks["frechet_zsem"] = {str(g): frechet_distance(real[g], latents[g])
                                  for g in latents if len(real[g]) > 1}
        checks["preset"], checks["edit_gain"] = args.preset, spec.edit_gain
        checks["intervals"] = counterfactual_intervals(checks["cases"], len(spec.grade_names), held_out.case_id[picks])
        if measure is not None:
            known = held_grades >= 0
            kinds = held_out.extra.get("fracture_kind")
            checks["ruler"] = ruler_agreement(measure, held_out.images[known], held_grades[known],
                                              None if kinds is None else np.asarray(kinds)[known])
        entry["counterfactuals"] = checks
        entry["picked_cases"] = picks.tolist()
        write_plots(args.out, recipe.name, entry, z_held, held_out, explanations, picks, held_grades)
        results["tasks"][recipe.name] = entry
    results["seconds"] = time.time() - started
    (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"wrote {args.out / 'results.json'} in {results['seconds']:.0f} s")
    return 0


def _progress(what: str):
    def report(done: int, total: int) -> None:
        print(f"{what}: {done}/{total}", end="\r" if done < total else "\n", file=sys.stderr, flush=True)
    return report


if __name__ == "__main__":
    sys.exit(main())
