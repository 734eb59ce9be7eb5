#!/usr/bin/env python
"""Does a grade hold when the click is a few millimetres off the vertebral body's centre, and does centring the
point (``inference.centring``) give it back?

A radiologist's point lands near the centre, not on it. On every real vertebra of the bundle's modality (one data
source, e.g. VB3), the patch is cut at the centroid the training used and again with the point moved along each
axis (anterior, superior, right), each intact body with its simulated fractures, as the acceptance cuts them
(``real_acceptance.real_patches``), with a margin so that the same simulated fracture can also be graded where
centring moves the point. The shipped task grades every patch, as clicked and centred (by the bundle's centring
detector where it has one, and then also by the OOD score it replaced). Per shift and way: the acceptance's three
figures on the same healthy bodies (those whole in the patch at every shift), the share of healthy bodies graded as
at the centre, and how far their distance to the hyperplane moved (median, in the spread of healthy distances at
the centre). ``--patients held-out`` keeps the patients outside the bundle's training split (which the DAE and its
detectors never saw).

    python scripts/studies/click_placement.py scripts/configs/vertebra-mri.json --data-root DATA --source VB3 \
        --fracture-kinds wedge,biconcave --patients held-out --out docs/results/mri-real
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.inference.centring import REACH_MM
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualResearch.centring import crop_latents, placements, write_placement_study
from DAECounterfactualResearch.dataset_building import SpineCase, data_source
from DAECounterfactualResearch.experiment import add_bundle_arguments, chosen_task, load_experiment, run_script
from DAECounterfactualResearch.ood_sets import training_cut, vertebra_splits
from DAECounterfactualResearch.real_acceptance import (RealPatches, case_specs, healthy_and_fractured, real_patches,
                                                       shipped_grades, with_intervals)
from DAECounterfactualResearch.task_fitting import TaskRecipe, fit_recipe

AXES = {"anterior": np.array([0.0, 1.0, 0.0]), "superior": np.array([0.0, 0.0, 1.0]),
        "right": np.array([1.0, 0.0, 0.0])}  # RAS


@dataclass
class _Shifted:
    """A loaded case whose points are moved by ``shift`` (RAS mm), in the shape ``real_patches`` reads a case in."""
    case: SpineCase
    group: str
    shift: np.ndarray

    def load(self) -> SpineCase:
        return replace(self.case, positions=[replace(p, ras=np.asarray(p.ras) + self.shift)
                                             for p in self.case.positions])


def shifts(distances: list[float], axes: list[str]) -> dict[str, np.ndarray]:
    """The centre, then each axis in both directions at every distance: name -> RAS offset."""
    table = {"centre": np.zeros(3)}
    for axis in axes:
        unit = AXES[axis]
        for distance in distances:
            for sign in (1, -1):
                table[f"{axis} {sign * distance:+g} mm"] = sign * distance * unit
    return table


def concatenate(parts: list[RealPatches]) -> RealPatches:
    return RealPatches(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(RealPatches)})


def shifted_patches(bundle, specs, offsets: dict[str, np.ndarray], kinds, margin: int) -> dict[str, RealPatches]:
    """Each shift's patches of every case, ``margin`` pixels wider on every side (each case loaded once)."""
    parts: dict[str, list[RealPatches]] = {name: [] for name in offsets}
    for spec in tqdm(specs, desc="cases", unit="case"):
        case = spec.load()
        for name, offset in offsets.items():
            parts[name].append(real_patches(bundle, [_Shifted(case, spec.group, offset)], kinds, margin))
    return {name: concatenate(p) for name, p in parts.items()}


def held_out_groups(experiment, bundle, data_root: Path) -> set[str]:
    """The patients outside the bundle's training split, as its config's build command split them."""
    return {s.group for s in vertebra_splits(training_cut(experiment, bundle.config), data_root, None)[1]}


def placement_figures(graded: dict[str, np.ndarray], patches: dict[str, RealPatches],
                      positive_min_grade: int, resamples: int = 1000) -> dict[str, dict]:
    """Per shift: the acceptance figures on the bodies whole in the patch at every shift (with intervals over
    vertebrae), and how the healthy bodies' grades and distances moved from the centre's."""
    def healthy_rows(name: str) -> dict[str, int]:  # vertebra -> row of its real (unsimulated) G0 patch
        p = patches[name]
        rows = np.flatnonzero(~p.simulated & (p.grade == 0))
        return dict(zip(p.vertebra[rows], rows))
    whole_everywhere = set.intersection(*(set(p.vertebra[p.whole & ~p.simulated]) for p in patches.values()))
    centre_rows = healthy_rows("centre")
    common = sorted(whole_everywhere & set.intersection(*(set(healthy_rows(n)) for n in patches)))
    centre = graded["centre"]
    spread = float(np.std(centre[[centre_rows[v] for v in common], 0]))
    result = {}
    for name, p in patches.items():
        kept = replace(p, whole=np.isin(p.vertebra, common))
        rows = healthy_rows(name)
        here, there = (np.array([rows[v] for v in common]), np.array([centre_rows[v] for v in common]))
        same = graded[name][here, 1] == centre[there, 1]
        moved = np.abs(graded[name][here, 0] - centre[there, 0]) / spread
        healthy, _ = healthy_and_fractured(kept, positive_min_grade)
        checked = with_intervals(graded[name], kept, np.arange(len(p.grade)), positive_min_grade, resamples)
        result[name] = checked["pooled"] | {
            "intervals": checked["pooled_intervals"], "healthy_same_grade_as_centre": float(np.mean(same)),
            "healthy_distance_moved": float(np.median(moved)), "healthy_checked": int(healthy.sum())}
    return result


def probe_by_folds(z: dict[str, np.ndarray], patches: dict[str, RealPatches], recipe: TaskRecipe, C: float,
                   fit_on: list[str], folds: int = 5) -> dict[str, np.ndarray]:
    """(distance, grade) of every shift's patches by probes fitted, ``folds`` times, on the other patients'
    patches at the shifts ``fit_on`` (say only the centroid, or every shift: a probe that saw the click jitter)."""
    groups = np.unique(patches["centre"].group)
    fold_of = {g: k % folds for k, g in enumerate(np.random.default_rng(0).permutation(groups))}
    graded = {name: np.full((len(p.grade), 2), np.nan) for name, p in patches.items()}
    for fold in range(folds):
        train = [(z[n][m], patches[n].grade[m]) for n in fit_on
                 for m in [np.array([fold_of[g] != fold for g in patches[n].group]) & (patches[n].grade >= 0)]]
        probe, calibration = fit_recipe(recipe, np.concatenate([t[0] for t in train]),
                                        np.concatenate([t[1] for t in train]), C)
        for name, p in patches.items():
            held = np.array([fold_of[g] == fold for g in p.group])
            distance = probe.distance(z[name][held])
            graded[name][held] = np.stack([distance, calibration.grade(distance)], axis=1)
    return graded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bundle_arguments(parser, task=True)
    parser.add_argument("--source", required=True, help="data source whose series are cut (ct, VB3, VB1, ...)")
    parser.add_argument("--distances", default="3,6", help="comma-separated shifts in mm along each axis")
    parser.add_argument("--axes", default=",".join(AXES), help=f"comma-separated, of {', '.join(AXES)}")
    parser.add_argument("--fracture-kinds", default="wedge,biconcave,crush")
    parser.add_argument("--jittered-probe", action="store_true", help="also grade the clicks as they are with "
                        "probes fitted by patient folds on the centroid's patches alone and on every shift's")
    parser.add_argument("--patients", choices=("all", "held-out"), default="all",
                        help="held-out: only the patients outside the bundle's training split")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    experiment = load_experiment(args.config)
    bundle = load_bundle(resolve_bundle(args.bundle or experiment.name))
    entry = chosen_task(parser, args, experiment)
    task = bundle.task(entry["name"])
    specs = [s for s in case_specs(bundle, args.data_root) if data_source(s.group) == args.source]
    if args.patients == "held-out":
        held = held_out_groups(experiment, bundle, args.data_root)
        specs = [s for s in specs if s.group in held]
    if not specs:
        parser.error(f"no {args.patients} patients of source {args.source!r} under {args.data_root}")
    axes = [a for a in args.axes.split(",") if a]
    if not set(axes) <= set(AXES):
        parser.error(f"--axes: unknown {sorted(set(axes) - set(AXES))}; choose from {', '.join(AXES)}")
    offsets = shifts([float(d) for d in args.distances.split(",") if d.strip()], axes)
    margin = int(round(REACH_MM / bundle.config.patch_spacing_mm))
    patches = shifted_patches(bundle, specs, offsets, tuple(k for k in args.fracture_kinds.split(",") if k), margin)
    explainer = Explainer(bundle)
    record = {"bundle": bundle.bundle_id, "task": task.name, "source": args.source, "patients": len(specs),
              "which_patients": args.patients, "shifts_ras_mm": {n: o.tolist() for n, o in offsets.items()},
              "reach_mm": REACH_MM, "figures": {}}
    z_crops = {name: crop_latents(explainer, p.images, margin) for name, p in tqdm(patches.items(), desc="encoding")}
    for way, placed in placements(bundle, z_crops).items():
        z = {name: place.latents for name, place in placed.items()}
        graded = {name: shipped_grades(z[name], task) for name in patches}
        record["figures"][way] = placement_figures(graded, patches, task.positive_min_grade)
        if args.jittered_probe and way == "as clicked":
            recipe = TaskRecipe.from_config(entry)
            for label, fit_on in (("probe fitted at the centroid", ["centre"]), ("probe fitted at every shift",
                                                                                 list(patches))):
                record["figures"][label] = placement_figures(probe_by_folds(z, patches, recipe, 0.01, fit_on),
                                                             patches, task.positive_min_grade)
        for name, place in placed.items():
            record["figures"][way][name]["median_move_mm"] = place.median_move_mm
    suffix = "_held-out" if args.patients == "held-out" else ""
    write_placement_study(args.out / f"click_placement_{bundle.config.name}_{args.source}{suffix}.json", record,
                          {"healthy G0": "healthy_g0", "AUC": "fracture_auc", "within one": "within_one_grade",
                           "same grade": "healthy_same_grade_as_centre", "distance moved": "healthy_distance_moved"})
    return 0


if __name__ == "__main__":
    run_script(main)
