#!/usr/bin/env python
"""Issue 21's acceptance of a vertebra bundle on real data only (the CTs of spine_ct/ or the MRIs of spine_mri/,
by the bundle's modality): hold out each patient, fit probe and calibration on the rest, grade the held-out series
(healthy vertebrae graded G0, simulated fractures detected and graded within one grade) per series, per data source
(VB1, VB3, ct) and pooled, with intervals; the bundle's own task graded beside it; whether a linear model sees
the fractures in the pixels and in z_sem, and how far a fracture moves its intact twin in each; and how many
patches of each source the bundle's OOD detector flags.

    python scripts/real_acceptance.py scripts/configs/vcf-ct.json --data-root DATA --out docs/results/ct-real
    python scripts/real_acceptance.py scripts/configs/vertebra-mri.json --data-root DATA --out docs/results/mri-real \
        --fracture-kinds wedge,biconcave
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import load_bundle, set_real_data
from DAECounterfactualResearch.experiment import add_bundle_arguments, chosen_task, load_experiment, run_script
from DAECounterfactualResearch.real_acceptance import real_data_check, run
from DAECounterfactualResearch.task_fitting import TaskRecipe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bundle_arguments(parser, task=True)
    parser.add_argument("--out", type=Path, default=None, help="folder for acceptance_<bundle>.json")
    parser.add_argument("--C", type=float, default=0.01, help="the leave-one-out probes' regularisation")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of vertebrae")
    parser.add_argument("--calibration", choices=("linear", "extremes", "poly"), default=None,
                        help="the leave-one-out calibration instead of the task's")
    parser.add_argument("--fracture-kinds", default="wedge,biconcave,crush",
                        help="the kinds simulated on intact bodies (those the bundle's training set had)")
    parser.add_argument("--centre-on-body", action="store_true",
                        help="cut each vertebra at its body's centroid in the body mask, where a radiologist clicks, "
                             "instead of at the centroid file's point (VerSe/TPTBox CT centroids are whole vertebrae's, "
                             "about 10 mm posterior; the MRI files give the body's)")
    parser.add_argument("--record-in-bundle", metavar="SOURCE", default=None,
                        help="write the shipped task's figures on this data source (ct, VB3, ..., or pooled) into "
                             "the bundle's task: its grades carry a caution wherever they are shown while a target "
                             "is missed")
    args = parser.parse_args(argv)
    experiment = load_experiment(args.config)
    recipe = TaskRecipe.from_config(chosen_task(parser, args, experiment))
    recipe = replace(recipe, calibration=args.calibration) if args.calibration else recipe
    bundle = load_bundle(resolve_bundle(args.bundle or experiment.name))
    record = run(bundle, recipe.name, recipe, args.data_root, args.C, args.resamples,
                 tuple(k for k in args.fracture_kinds.split(",") if k), args.centre_on_body)
    if args.record_in_bundle:
        command = (f"python scripts/real_acceptance.py {args.config.as_posix()} --data-root DATA "
                   f"--fracture-kinds {args.fracture_kinds}{' --centre-on-body' * args.centre_on_body} "
                   f"--record-in-bundle {args.record_in_bundle}")
        check = real_data_check(record, args.record_in_bundle, command)
        set_real_data(bundle.path, recipe.name, check)
        print(f"recorded in {bundle.path} (task {recipe.name}): "
              + (f"caution: {check.caution}" if check.caution else "every target met, no caution"))
    text = json.dumps(record, indent=1)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        suffix = (f"_{args.calibration}" if args.calibration else "") + ("_body-centred" if args.centre_on_body else "")
        (args.out / f"acceptance_{bundle.config.name}{suffix}.json").write_text(text, encoding="utf-8")
    for name in ("leave_one_patient_out", "shipped_task"):
        for source, part in [("pooled", record[name]), *record[name]["per_source"].items()]:
            pooled, meets = part["pooled"], part["meets"]
            print(f"{name}, {source}: " + ", ".join(f"{k} {pooled[k]:.3f}{'' if meets.get(k, True) else ' (missed)'}"
                                                   for k in ("healthy_g0", "fracture_auc", "within_one_grade")))
    for source, aucs in record["visibility_auc"].items():
        print(f"{source}: fractures against healthy, linear model out of patient, AUC on pixels {aucs['pixels']:.3f}, "
              f"on z_sem {aucs['latent']:.3f}")
    for source, spaces in record["fracture_moves"].items():
        print(f"{source}: a G2-G3 fracture moves its intact twin by " + ", ".join(
            f"{m['move']:.3f} of the spread in {name} ({m['shared']:.2f} along the mean move)"
            for name, m in spaces.items()))
    for source, shares in record["flagged_out_of_distribution"].items():
        print(f"{source}: flagged out of distribution by the bundle's detector: "
              + ", ".join(f"{name} {share:.3f}" for name, share in shares.items()))
    return 0


if __name__ == "__main__":
    run_script(main)
