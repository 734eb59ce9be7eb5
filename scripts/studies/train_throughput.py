#!/usr/bin/env python
"""Training images/s of an experiment's network under each speed path (eager, channels-last, torch.compile, CUDA
graphs), one after another on random data, with the FLOPs of a training step and, on a GPU, the fraction of the
measured bf16 matrix rate: which paths pay on this device (docs/PERFORMANCE.md).

    python scripts/studies/train_throughput.py scripts/configs/vcf-ct-real.json --device cuda --seconds 20 \\
        --variants eager,channels_last,compile,cuda_graphs --out $OUT/throughput.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from DAECounterfactualLib.model.config import DAEConfig
from DAECounterfactualLib.model.device import DEVICES, resolve_device
from DAECounterfactualResearch.experiment import load_experiment, run_script
from DAECounterfactualResearch.throughput import VARIANTS, compare_variants
from DAECounterfactualResearch.training import TrainConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--seconds", type=float, default=20.0, help="timed training per variant, after warm-up")
    parser.add_argument("--variants", default="eager,channels_last,compile,cuda_graphs",
                        help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--batch-size", type=int, default=None, help="instead of the config's")
    parser.add_argument("--out", type=Path, default=None, help="JSON report")
    args = parser.parse_args(argv)
    names = args.variants.split(",")
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    experiment = load_experiment(args.config)
    train = TrainConfig(**experiment.train)
    if args.batch_size:
        train = replace(train, batch_size=args.batch_size)
    device = resolve_device(args.device)
    peak = None
    if device.startswith("cuda"):
        import torch

        from DAECounterfactualResearch.gpu_window import matmul_tflops

        peak = matmul_tflops(torch.device(device))
    report = compare_variants(DAEConfig.from_dict(experiment.model), train, device, args.seconds, names, peak)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    run_script(main)
