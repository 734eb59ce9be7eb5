#!/usr/bin/env python
"""Is channels-last (NHWC) faster for a bundle's networks here? Seconds per UNet call and per encoder batch, in the
default (NCHW) layout and in channels-last, interleaved in one run so the machine's drift hits both alike:

    python scripts/studies/unet_layouts.py --bundle vcf-ct --batches 1 6 --repeats 20

The Explainer runs its model channels-last on the CPU because of this measurement (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys

import torch

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.cli.bench import timed


@torch.inference_mode()
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", default="vcf-ct")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 6], help="UNet batch sizes")
    parser.add_argument("--encoder-batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    nchw = load_bundle(resolve_bundle(args.bundle)).require_model().eval()
    nhwc = copy.deepcopy(nchw).to(memory_format=torch.channels_last)
    c = nchw.config
    generator = torch.Generator().manual_seed(0)
    print(f"{args.bundle}: {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("call | NCHW ms | NHWC ms | NCHW / NHWC | max |difference|")
    cases = [(f"UNet batch {n}", n, lambda m, x, z: m.unet(x, torch.full((len(x),), 500.0), z))
             for n in args.batches]
    cases.append((f"encoder batch {args.encoder_batch}", args.encoder_batch, lambda m, x, z: m.encode(x)))
    for name, n, call in cases:
        x = torch.rand(n, c.in_channels, c.image_size, c.image_size, generator=generator) * 2 - 1
        z = torch.randn(n, c.z_dim, generator=generator)
        a, b = [], []
        for _ in range(3):  # interleaved rounds
            a += timed(lambda: call(nchw, x, z), args.repeats // 3 + 1)[0]
            b += timed(lambda: call(nhwc, x, z), args.repeats // 3 + 1)[0]
        difference = float((call(nchw, x, z) - call(nhwc, x, z)).abs().max())
        ta, tb = statistics.median(a) * 1e3, statistics.median(b) * 1e3
        print(f"{name} | {ta:.1f} | {tb:.1f} | {ta / tb:.2f} | {difference:.1e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
