#!/usr/bin/env python
"""Does a disc's grade hold when the click is a few millimetres off the disc's centre along the spine, and does
centring the point give it back?

The disc counterpart of ``click_placement.py``, on SPIDER's sagittal T2 slices with the radiologists' disc centres
and Pfirrmann grades: every graded disc of a split (``val``: patients the bundle never saw) is cut as training cut
it, at the centre and moved up or down the slice (superior = up), with a margin for the crops centring chooses
from. The shipped task grades every patch as clicked and centred (``centring.centring_ways``). Per shift and way:
mean absolute error and agreement within one grade against the radiologists, the rank correlation of the
hyperplane distance with their grades (95 % intervals resampling patients), and the share of discs graded as at the
centre.

    python scripts/studies/disc_click_placement.py scripts/configs/disc-mri.json --data-root DATA --split val \
        --out docs/results/disc-mri
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from tqdm import tqdm

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.inference.centring import REACH_MM
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualResearch.bootstrap import bootstrap_intervals
from DAECounterfactualResearch.centring import crop_latents, placements, write_placement_study
from DAECounterfactualResearch.disc_dataset import disc_patches
from DAECounterfactualResearch.experiment import add_bundle_arguments, chosen_task, load_experiment, run_script


def disc_figures(distance: np.ndarray, grade: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    error = np.abs(grade - truth)
    return {"mae": float(np.mean(error)), "within_one_grade": float(np.mean(error <= 1)),
            "spearman": float(spearmanr(distance, truth)[0])}


def with_patient_intervals(distance, grade, truth, patients, resamples: int) -> dict:
    figures = disc_figures(distance, grade, truth)
    figures["intervals"] = bootstrap_intervals(lambda i: disc_figures(distance[i], grade[i], truth[i]), patients,
                                               n_resamples=resamples)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bundle_arguments(parser, task=True)
    parser.add_argument("--split", default="val", help="SPIDER split whose discs are graded")
    parser.add_argument("--distances", default="3,6", help="comma-separated shifts in mm up and down the slice")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    experiment = load_experiment(args.config)
    bundle = load_bundle(resolve_bundle(args.bundle or experiment.name))
    task = bundle.task(chosen_task(parser, args, experiment)["name"])
    config = bundle.config
    margin = int(round(REACH_MM / config.patch_spacing_mm))
    superior = {"centre": 0.0} | {f"superior {sign * d:+g} mm": sign * d for d in
                                  (float(v) for v in args.distances.split(",") if v.strip()) for sign in (1, -1)}
    explainer = Explainer(bundle)
    z_crops, discs = {}, None
    for name, mm in tqdm(superior.items(), desc="shifts"):  # y runs down the slice: superior is -y
        discs = disc_patches(args.data_root / "spider_discs", args.split, config.patch_size_px,
                             config.patch_spacing_mm, margin, shift_mm=(0.0, -mm))
        z_crops[name] = crop_latents(explainer, discs["images"], margin)
    truth, patients = discs["grades"], discs["case_id"]
    record = {"bundle": bundle.bundle_id, "task": task.name, "split": args.split, "discs": len(truth),
              "patients": len(set(patients)), "shifts_superior_mm": superior, "reach_mm": REACH_MM, "figures": {}}
    for way, placed in placements(bundle, z_crops).items():
        graded = {name: explainer.grade_latents(place.latents, task) for name, place in placed.items()}
        record["figures"][way] = {
            name: with_patient_intervals(g.distance, g.grade, truth, patients, args.resamples) | {
                "same_grade_as_centre": float(np.mean(g.grade == graded["centre"].grade)),
                "median_move_mm": placed[name].median_move_mm} for name, g in graded.items()}
    write_placement_study(args.out / f"disc_click_placement_{config.name}_{args.split}.json", record,
                          {"MAE": "mae", "within one": "within_one_grade", "Spearman": "spearman",
                           "same grade": "same_grade_as_centre", "moved mm": "median_move_mm"})
    return 0


if __name__ == "__main__":
    run_script(main)
