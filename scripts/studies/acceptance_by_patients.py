#!/usr/bin/env python
"""How many real patients does issue 21's acceptance need before its figures say something about the model?

CT has 4 real patients (24 healthy bodies), so each leave-one-patient-out probe is fitted on 3. This draws ``n``
training patients of one data source at random (``--draws`` times per ``n``), fits the task's probe and calibration
and a plain logistic regression on the pixels and on z_sem on their real patches, and scores every other patient of
the source (``acceptance_by_patients.by_training_patients``). On VB3's MRIs (50 patients, where the latent holds
the fracture) it shows what CT's patient count costs a model that works; on CT, the model's own curve.

    python scripts/studies/acceptance_by_patients.py scripts/configs/vertebra-mri.json --data-root DATA \
        --source VB3 --fracture-kinds wedge,biconcave --out docs/results/mri-real
    python scripts/studies/acceptance_by_patients.py scripts/configs/vcf-ct.json --data-root DATA \
        --source ct --counts 1,2,3 --out docs/results/ct-real
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualResearch.acceptance_by_patients import FIGURES, PERCENTILES, by_training_patients
from DAECounterfactualResearch.dataset_building import data_source
from DAECounterfactualResearch.experiment import add_bundle_arguments, chosen_task, load_experiment, run_script
from DAECounterfactualResearch.real_acceptance import case_specs, real_patches
from DAECounterfactualResearch.task_fitting import TaskRecipe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bundle_arguments(parser, task=True)
    parser.add_argument("--source", required=True, help="the data source to draw patients from (ct, VB1, VB3)")
    parser.add_argument("--counts", default="1,2,3,5,10,20,40", help="numbers of training patients")
    parser.add_argument("--draws", type=int, default=20, help="random draws of training patients per count")
    parser.add_argument("--C", type=float, default=0.01, help="the probes' regularisation (as real_acceptance.py)")
    parser.add_argument("--fracture-kinds", default="wedge,biconcave,crush",
                        help="the kinds simulated on intact bodies (those the bundle's training set had)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for acceptance_by_patients_<bundle>_<source>.json")
    args = parser.parse_args(argv)
    experiment = load_experiment(args.config)
    recipe = TaskRecipe.from_config(chosen_task(parser, args, experiment))
    bundle = load_bundle(resolve_bundle(args.bundle or experiment.name))
    specs = [s for s in case_specs(bundle, args.data_root) if data_source(s.group) == args.source]
    if not specs:
        parser.error(f"no real series of source {args.source!r} under {args.data_root}")
    patches = real_patches(bundle, specs, tuple(k for k in args.fracture_kinds.split(",") if k))
    z = Explainer(bundle).encode(patches.images)
    curve = by_training_patients(z, patches, recipe, args.C, [int(n) for n in args.counts.split(",")], args.draws)
    for n, row in curve.items():
        print(f"{n} training patients ({row['draws']} draws): " + ", ".join(
            f"{name} {row[name][1]:.2f} ({row[name][0]:.2f}-{row[name][2]:.2f})" for name in FIGURES))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        record = {"bundle": bundle.bundle_id, "task": recipe.name, "source": args.source,
                  "patients": int(len(set(patches.group))), "patches": int(len(z)), "draws": args.draws,
                  "C": args.C, "percentiles": list(PERCENTILES), "by_training_patients": curve}
        path = args.out / f"acceptance_by_patients_{bundle.config.name}_{args.source}.json"
        path.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    run_script(main)
