#!/usr/bin/env python
"""Everything one GPU window needs, in one command: check the GPU, train experiments side by side for a fixed
time, and write weights, run records and strips under --out within the device tool's file limits.

    python scripts/gpu_window.py --out $OUT --minutes 7 --data-root DATA --speed auto scripts/configs/disc-mri.json [...]

``--explain-bench vcf-ct:genant --bench-patches FILE`` first times explanations of a shipped bundle on the GPU
(patches saved here by ``daecf bench --save-patches FILE``: the device has no sample CT).

It installs nothing: the device's own torch runs scripts/train_dae.py once per experiment (on a machine where this
package is not installed, run from the repository with PYTHONPATH=DAECounterfactual:. ). What it writes:
DAECounterfactualResearch/gpu_window.py; scripts/restore_window_run.py makes run folders of it again. On a CPU it
runs the same way (a dry run in the tests).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from DAECounterfactualLib.model.device import DEVICES, resolve_device
from DAECounterfactualResearch.experiment import run_script
from DAECounterfactualResearch.gpu_window import run_window
from DAECounterfactualResearch.throughput import VARIANTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("configs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, required=True, help="training time of each experiment")
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="run folders (checkpoints)")
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--total-samples", type=int, default=None, help="override every config's training length")
    parser.add_argument("--speed", default="eager", choices=("auto", *VARIANTS),
                        help="speed path of every experiment (torch.compile, CUDA graphs, channels-last); auto: time "
                        "each on the first experiment's network first and train with the fastest")
    parser.add_argument("--speed-seconds", type=float, default=15.0, help="timed seconds per path with --speed auto")
    parser.add_argument("--explain-bench", metavar="BUNDLE:TASK", help="benchmark explanations first")
    parser.add_argument("--bench-patches", type=Path, help="patches for --explain-bench (daecf bench --save-patches)")
    args = parser.parse_args(argv)
    if args.explain_bench and ":" not in args.explain_bench:
        parser.error(f"--explain-bench {args.explain_bench!r}: expected BUNDLE:TASK, e.g. vcf-ct:genant")
    window = run_window(args.configs, args.out, args.minutes, args.data_root, args.runs, resolve_device(args.device),
                        args.total_samples, args.speed, args.speed_seconds, args.explain_bench, args.bench_patches)
    failed = "error" in window.get("explain_bench", {})
    return 0 if all(e["returncode"] == 0 for e in window["experiments"]) and not failed else 1


if __name__ == "__main__":
    run_script(main)
