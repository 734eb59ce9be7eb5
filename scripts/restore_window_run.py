#!/usr/bin/env python
"""Turn what a GPU window returned into run folders, one per experiment it trained.

    python scripts/restore_window_run.py FILES_AT [NAME ...] --runs runs
    python scripts/make_bundle.py scripts/configs/NAME.json --run-dir runs/NAME --allow-unfinished

FILES_AT is the folder the device tool copied the window's files into (window.json, the fp16 weights and their
shards). Each run folder holds the checkpoint pair in fp32 without optimizer state: make_bundle.py bundles it, and a
later window (or train_dae.py --run-dir) resumes it with a fresh optimizer, warmed up again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from DAECounterfactualResearch.checkpoint import META
from DAECounterfactualResearch.experiment import run_script
from DAECounterfactualResearch.gpu_window import restore_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", type=Path, help="the window's returned files (window.json beside the weights)")
    parser.add_argument("names", nargs="*", help="experiments to restore (default: every one trained)")
    parser.add_argument("--runs", type=Path, required=True, help="folder for the run folders")
    args = parser.parse_args(argv)
    window = json.loads((args.files / "window.json").read_text(encoding="utf-8"))
    names = args.names or [e["name"] for e in window["experiments"] if "record" in e]
    for name in names:
        run_dir = restore_run(args.files, name, args.runs)
        print(f"{name}: step {json.loads((run_dir / META).read_text())['step']} -> {run_dir}")
    return 0


if __name__ == "__main__":
    run_script(main)
