#!/usr/bin/env python
"""Train a diffusion autoencoder from an experiment config (scripts/configs/*.json).

Checkpoints go to the cache folder (default ~/.cache/daecf/runs/<bundle name>, or --run-dir), outside the work
tree; running the same command again resumes exactly where the last run stopped. On finishing it exports the EMA
weights (ema.safetensors + model_config.json) for scripts/make_bundle.py.

    python scripts/train_dae.py scripts/configs/dr-retina.json [--data-root ../shared/data] [--max-minutes 60]
    torchrun --nproc_per_node 4 scripts/train_dae.py CONFIG --device cuda      # several GPUs (DDP, nccl)
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-endpoint HOST:29500 scripts/train_dae.py CONFIG --device cuda

The global batch (the config's batch_size) is split over the ranks, so a DDP run follows the same schedule as a
single-process one. On CPU the same command runs with the gloo backend; Testing/research/test_training.py runs it with
two CPU processes (the ranks end with equal weights, one checkpoint is written, and they stop at the same step).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from DAECounterfactualLib.io.files import sha256_file
from DAECounterfactualLib.model.config import DAEConfig
from DAECounterfactualLib.model.device import DEVICES, resolve_device
from DAECounterfactualResearch.datasets import balanced
from DAECounterfactualResearch.experiment import DEFAULT_DATA_ROOT, REPO, load_data, load_experiment
from DAECounterfactualResearch.training import COMPILE_MODES, Trainer, TrainConfig, default_cache_dir

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--warm-start", type=Path, default=None,
                        help="a fresh run starts from these weights (bundle model.safetensors or export ema.safetensors; "
                        "default: the config's warm_start)")
    parser.add_argument("--total-samples", type=int, default=None,
                        help="override the config's training length, e.g. to extend a finished run")
    parser.add_argument("--compile", default=None, choices=("none", *COMPILE_MODES),
                        help="torch.compile mode of the training step (instead of the config's)")
    parser.add_argument("--channels-last", action="store_true", help="NHWC weights and batches")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    experiment = load_experiment(args.config)
    model_config = DAEConfig.from_dict(experiment.model)
    overrides = {"total_samples": args.total_samples} if args.total_samples else {}
    overrides |= {"compile": args.compile} if args.compile else {}
    overrides |= {"channels_last": True} if args.channels_last else {}
    train_config = TrainConfig(**{**experiment.train, **overrides})
    data, data_path = load_data(experiment, args.data_root)
    train = data.subset(experiment.train_split)
    val = data.subset(experiment.val_split)
    run_dir = args.run_dir or default_cache_dir() / experiment.name
    manifest = {"file": str(data_path.name), "sha256": sha256_file(data_path), "train_images": len(train),
                "val_images": len(val), "experiment": str(args.config.name)}
    if experiment.balance_by:
        train = balanced(train, experiment.balance_by)
        values, seen = np.unique(train.extra[experiment.balance_by], return_counts=True)
        manifest["balanced_by"] = {experiment.balance_by: dict(zip(map(str, values), map(int, seen)))}
    trainer = Trainer(model_config, train_config, torch.from_numpy(train.images), run_dir,
                      validation=torch.from_numpy(val.images) if len(val) else None,
                      device=resolve_device(args.device), data_manifest=manifest)
    warm_start = args.warm_start or (REPO / experiment.warm_start if experiment.warm_start else None)
    if warm_start and trainer.step == 0:
        trainer.warm_start(warm_start)
    print(f"run {run_dir}: {trainer.meta['parameters'] / 1e6:.2f} M parameters, {len(train)} training images, "
          f"resuming at step {trainer.step}/{trainer.total_steps}", flush=True)
    result = trainer.run(max_minutes=args.max_minutes)
    if trainer.rank == 0:
        (run_dir / "last_call.json").write_text(json.dumps(result, indent=1))
        print(f"stopped at step {result['step']}: {result['images_per_s']:.0f} images/s in this call", flush=True)
    if result["done"] and trainer.rank == 0:
        print(f"finished: exported EMA weights to {trainer.export(run_dir / 'export')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
