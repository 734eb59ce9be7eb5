#!/usr/bin/env python
"""Refit the tasks of an existing bundle on its own encoder, from the experiment config's task recipes.

make_bundle.py needs the DAE's training run; this needs only the bundle and the data, so a shipped DAE can be given
probes fitted another way (``probe_components``, ``edit_components``, ``calibration``, ...) without retraining.
It writes a copy: the source bundle is never changed. Each task's C is chosen on the validation split and its edit
gain fitted on validation images, as make_bundle.py does.

    python scripts/refit_tasks.py scripts/configs/vcf-ct.json --data-root DATA --out /tmp/vcf-ct-refit
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import add_task, load_bundle
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualResearch.bundle_making import fit_tasks, fitted_tasks, gain_images
from DAECounterfactualResearch.experiment import (Experiment, add_bundle_arguments, load_data, load_experiment,
                                                  patch_differences)
from DAECounterfactualResearch.model_card import GAIN_HEADING, task_card_lines, with_gain_section, with_task_lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bundle_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="folder for the refitted copy (must not exist)")
    parser.add_argument("--gain-images", type=int, default=12,
                        help="validation images to fit each task's edit gain on (0: gain 1)")
    args = parser.parse_args(argv)
    experiment = load_experiment(args.config)
    source = resolve_bundle(args.bundle or experiment.name)
    if args.out.exists():
        parser.error(f"--out {args.out} exists; name a new folder (the source bundle is never overwritten)")
    original = load_bundle(source, load_weights=False)
    named, bundled = {t["name"] for t in experiment.tasks}, set(original.tasks)
    if named != bundled:
        parser.error(f"{args.config} names tasks {sorted(named)} but {source} holds {sorted(bundled)}: every task "
                     "of the bundle is refitted, so both must name the same ones")
    # probes fitted on data cut and scaled another way than the bundle's would not grade what it sees at inference
    config = original.config
    differ = patch_differences(config.preprocessing.to_dict(), {"size_px": config.patch_size_px,
                                                                "spacing_mm": config.patch_spacing_mm,
                                                                "rows": config.patch_rows}, experiment.bundle)
    if differ:
        parser.error(f"{source} has " + ", ".join(differ) + f": {args.config} describes another bundle")
    data, _ = load_data(experiment, args.data_root)
    train = data.subset(experiment.train_split)
    val = data.subset(experiment.val_split)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{args.out.name}.", dir=args.out.parent))
    try:  # the copy is renamed to --out once every task is written: a failed refit leaves nothing behind
        shutil.copytree(source, staging / "bundle")
        refit_copy(staging / "bundle", experiment, args, train, val)
        (staging / "bundle").rename(args.out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"{args.out}: {load_bundle(args.out, load_weights=False).bundle_id}")
    return 0


def refit_copy(folder: Path, experiment: Experiment, args: argparse.Namespace, train, val) -> None:
    """Refit every task of the bundle copy in ``folder`` and rewrite its model card."""
    bundle = load_bundle(folder)
    explainer = Explainer(bundle)
    tasks = fit_tasks(experiment, explainer.encode(train.images), train, explainer.encode(val.images), val)
    if args.gain_images:
        tasks = fitted_tasks(explainer, tasks, gain_images(val, args.gain_images), "fast")
    provenance = (f"- Tasks refitted on this bundle's encoder by `scripts/refit_tasks.py` from `{args.config.name}`; "
                  f"the DAE is that of `{bundle.bundle_id}`.")
    card = with_task_lines(bundle.model_card, [provenance, *task_card_lines(experiment, tasks)])
    # the source's gain section describes gains these tasks no longer have
    card = with_gain_section(card, tasks) if args.gain_images else card.split(GAIN_HEADING)[0].rstrip("\n") + "\n"
    for task in tasks:
        add_task(folder, task, overwrite=True, model_card=card)
        print(f"task {task.name}: validation AUC {task.metrics['auc']:.3f}, edit gain {task.edit_gain:.2f}")


if __name__ == "__main__":
    sys.exit(main())
