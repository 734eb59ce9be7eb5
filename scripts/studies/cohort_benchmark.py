#!/usr/bin/env python
"""Time ``daecf score-cohort`` on a generated phantom cohort (BIDS layout) with 1 and 2 worker processes: the
figures of docs/PERFORMANCE.md's cohort section.

    python scripts/studies/cohort_benchmark.py --bundle vcf-ct --task genant --cases 96 --settings 1,1x1,2 --out OUT

OUT keeps the cohort (reused by later runs), the CSVs and report.json; the table is printed as Markdown.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from DAECounterfactualResearch.cohort_benchmark import format_table, parse_setting, run_cohort_benchmark
from DAECounterfactualResearch.experiment import run_script


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", default="vcf-ct")
    parser.add_argument("--task", default="genant")
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--settings", default="1,1x1,2", help="worker counts, comma-separated; WxT: W workers with "
                        "OMP_NUM_THREADS=T")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = tuple(args.settings.split(","))
    try:
        counts = [n for setting in settings for n in parse_setting(setting) if n is not None]
    except ValueError:
        counts = [0]
    if args.cases < 1 or args.repeats < 1 or min(counts) < 1:
        parser.error("--cases and --repeats must be positive, --settings positive W or WxT")
    args.out.mkdir(parents=True, exist_ok=True)
    report = run_cohort_benchmark(args.out, args.bundle, args.task, args.cases, settings, args.repeats, args.device)
    (args.out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(format_table(report))
    return 0


if __name__ == "__main__":
    run_script(main)
