#!/usr/bin/env python
"""Fit the task probes of an experiment on its trained DAE and write the model bundle.

Reads the EMA weights exported by train_dae.py, encodes the experiment's training set once, fits every task in
the config (probe + calibration, regularisation chosen on the validation split), computes the latent statistics
for the out-of-distribution flag, and writes the bundle with its model card and manifest:

    python scripts/make_bundle.py scripts/configs/dr-retina.json [--out Resources/Models/dr-retina]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch

from DAECounterfactualLib.bundle.store import add_task, load_bundle, write_bundle
from DAECounterfactualLib.inference.explainer import Explainer, encode_images
from DAECounterfactualLib.model.schedule import NoiseSchedule
from DAECounterfactualLib.model.networks import count_parameters
from DAECounterfactualLib.model.ood import LatentStats
from DAECounterfactualResearch.bundle_making import bundle_config, fit_tasks, fitted_tasks, gain_images, load_ema_model
from DAECounterfactualResearch.experiment import DEFAULT_DATA_ROOT, load_data, load_experiment
from DAECounterfactualResearch.model_card import render_model_card, with_gain_section
from DAECounterfactualResearch.training import default_cache_dir, reconstruct, semantic_reliance

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--allow-unfinished", action="store_true",
                        help="bundle the EMA weights of the latest checkpoint of a run that has not finished")
    parser.add_argument("--gain-images", type=int, default=12,
                        help="validation images to fit each task's edit gain on (0: gain 1)")
    args = parser.parse_args(argv)

    experiment = load_experiment(args.config)
    name = experiment.name
    run_dir = args.run_dir or default_cache_dir() / name
    run_meta = json.loads((run_dir / "checkpoint.json").read_text(encoding="utf-8"))
    model = load_ema_model(run_dir, run_meta, args.allow_unfinished)
    model_config = model.config
    data, _ = load_data(experiment, args.data_root)
    splits = experiment.train_split, experiment.val_split
    train, val = data.subset(splits[0]), data.subset(splits[1])
    config = bundle_config(experiment, model_config, train)
    model.eval()
    z_train, z_val = encode_images(model, train.images), encode_images(model, val.images)
    stats = LatentStats.from_latents(z_train)
    tasks = fit_tasks(experiment, z_train, train, z_val, val)
    # the checks below need images the probes were not fitted on; a set with no validation split (every patient
    # trained the DAE) can only offer its training images, and the card says so
    checked, checked_text = (val, "validation images") if len(val) else (train, "training images (no validation split)")

    with torch.no_grad():
        images = torch.from_numpy(checked.images[:16].astype(np.float32))
        standard = config.presets["standard"]
        recon = reconstruct(model, images, NoiseSchedule(), standard.decode, **standard.inversion_options())
        recon_mse = float(torch.mean((recon - images) ** 2))
        reliance = semantic_reliance(model, images, NoiseSchedule())
    z_checked = z_val if len(val) else z_train
    z_fp16 = encode_images(copy.deepcopy(model).half().float(), checked.images)  # what the fp16 bundle will give
    delta = max(float(np.abs(t.probe.distance(z_fp16) - t.probe.distance(z_checked)).max()) for t in tasks)
    card = render_model_card(experiment, config, run_meta, tasks, count_parameters(model), recon_mse, delta,
                             reliance, checked_text)
    out = args.out or REPO / "Resources" / "Models" / name
    write_bundle(out, config, model, stats, tasks, card, fp16=True, overwrite=True)
    if args.gain_images:  # fitted on the bundle as written (fp16 weights): what users will run
        bundle = load_bundle(out)
        tasks = fitted_tasks(Explainer(bundle), list(bundle.tasks.values()), gain_images(checked, args.gain_images),
                             "fast")
        card = with_gain_section(bundle.model_card, tasks)
        for task in tasks:
            add_task(out, task, overwrite=True, model_card=card)
    print(card)
    return 0


if __name__ == "__main__":
    sys.exit(main())
