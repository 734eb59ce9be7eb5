#!/usr/bin/env python
"""Train a diffusion autoencoder from an experiment config (scripts/configs/*.json).

Checkpoints go to the cache folder (default ~/.cache/daecf/runs/<bundle name>, or --run-dir), outside the work
tree; running the same command again resumes exactly where the last run stopped. On finishing it exports the EMA
weights (ema.safetensors + model_config.json) for scripts/make_bundle.py.

    python scripts/train_dae.py scripts/configs/dr-retina.json [--data-root ../shared/data] [--max-minutes 60]
    torchrun --nproc_per_node 4 scripts/train_dae.py CONFIG --device cuda      # several GPUs (DDP, nccl)
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-endpoint HOST:29500 scripts/train_dae.py CONFIG --device cuda

The global batch (the config's batch_size) is split over the ranks, so a DDP run follows the same schedule as a
single-process one. On CPU the same command runs with the gloo backend; Testing/test_training.py runs it with
two CPU processes (the ranks end with equal weights, one checkpoint is written, and they stop at the same step).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "DAECounterfactual"))

import torch  # noqa: E402

from DAECounterfactualLib.model.config import DAEConfig  # noqa: E402
from DAECounterfactualLib.io.files import sha256_file  # noqa: E402
from DAECounterfactualResearch.datasets import TrainingSet, load_training_set, medmnist_training_set  # noqa: E402
from DAECounterfactualLib.errors import InputError  # noqa: E402
from DAECounterfactualLib.model.preprocessing import Preprocessing  # noqa: E402
from DAECounterfactualResearch.training import Trainer, TrainConfig, default_cache_dir  # noqa: E402

DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"


def load_experiment(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def load_data(experiment: dict, data_root: Path) -> tuple[TrainingSet, Path]:
    """The experiment's training set and the file it came from, checked against its bundle section (if any)."""
    spec, bundle_spec = experiment["data"], experiment.get("bundle")
    path = Path(spec["path"])
    path = path if path.is_absolute() else data_root / path
    if spec["kind"] == "medmnist":
        return medmnist_training_set(path), path
    if spec["kind"] == "training_set":
        if bundle_spec is not None:
            check_built_for(path, bundle_spec)
        return load_training_set(path), path
    raise ValueError(f"unknown data kind {spec['kind']!r}")


def check_built_for(path: Path, bundle_spec: dict) -> None:
    """Refuse a training set that build_dataset.py cut with another window or patch than the bundle states: the
    bundle would preprocess volumes one way at inference while its model learnt another (its manifest.json says)."""
    manifest = path.parent / "manifest.json"
    if not manifest.exists():
        return
    built = json.loads(manifest.read_text(encoding="utf-8")).get("settings", {})
    differ = patch_differences(built.get("preprocessing"), built, bundle_spec)
    if differ:
        raise InputError(f"{path} was built with " + ", ".join(differ) + "; rebuild it with the config's "
                         "data.build command or correct the config's bundle section")


def patch_differences(preprocessing: dict | None, patch: dict, bundle_spec: dict) -> list[str]:
    """Where a window and patch geometry (``patch``: size_px, spacing_mm) differ from those an experiment's bundle
    section states, as "key found (config: stated)"; a setting either side leaves out is not compared."""
    stated = _patch_settings(bundle_spec.get("preprocessing"), bundle_spec.get("patch", {}))
    found = _patch_settings(preprocessing, patch)
    return [f"{key} {found[key]} (config: {stated[key]})" for key in stated
            if None not in (found[key], stated[key]) and found[key] != stated[key]]


def _patch_settings(preprocessing: dict | None, patch: dict) -> dict:
    """Window and patch geometry in one comparable form (None where not stated)."""
    return {"preprocessing": preprocessing and Preprocessing.from_dict(preprocessing).to_dict(),
            "size_px": patch.get("size_px"), "spacing_mm": patch.get("spacing_mm")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--warm-start", type=Path, default=None,
                        help="a fresh run starts from these weights (bundle model.safetensors or export ema.safetensors)")
    parser.add_argument("--total-samples", type=int, default=None,
                        help="override the config's training length, e.g. to extend a finished run")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    experiment = load_experiment(args.config)
    model_config = DAEConfig.from_dict(experiment["model"])
    overrides = {"total_samples": args.total_samples} if args.total_samples else {}
    train_config = TrainConfig(**{**experiment["train"], **overrides})
    data, data_path = load_data(experiment, args.data_root)
    train = data.subset(experiment["data"].get("train_split", "train"))
    val = data.subset(experiment["data"].get("val_split", "val"))
    run_dir = args.run_dir or default_cache_dir() / experiment["bundle"]["name"]
    manifest = {"file": str(data_path.name), "sha256": sha256_file(data_path), "train_images": len(train),
                "val_images": len(val), "experiment": str(args.config.name)}
    trainer = Trainer(model_config, train_config, torch.from_numpy(train.images),
                      run_dir, validation=torch.from_numpy(val.images) if len(val) else None, device=args.device,
                      data_manifest=manifest)
    if args.warm_start and trainer.step == 0:
        trainer.warm_start(args.warm_start)
    print(f"run {run_dir}: {trainer.meta['parameters'] / 1e6:.2f} M parameters, {len(train)} training images, "
          f"resuming at step {trainer.step}/{trainer.total_steps}", flush=True)
    result = trainer.run(max_minutes=args.max_minutes)
    if result["done"] and trainer.rank == 0:
        print(f"finished: exported EMA weights to {trainer.export(run_dir / 'export')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
