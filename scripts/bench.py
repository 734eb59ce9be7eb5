#!/usr/bin/env python
"""Benchmark explanations per step preset (same as `daecf bench`):

    python scripts/bench.py --bundle vcf-ct --task genant --out bench.json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "DAECounterfactual"))

from DAECounterfactualLib.cli.commands import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
