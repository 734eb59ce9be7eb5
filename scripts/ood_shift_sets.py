#!/usr/bin/env python
"""Out-of-distribution detection measured on shift sets (issue 23): for each bundle, its held-out in-distribution
patches against inputs it was not trained on (other modality, region, target, metal, units, masked, crop-cut,
noise, blur, non-spine, fractures beyond the training range), scored by the shipped OOD score and by candidate
detectors fitted on its training latents; AUROC, false flags and flag rates per bundle and shift, and the pick.

    python scripts/ood_shift_sets.py scripts/configs/{vcf-ct,vertebra-mri,disc-mri,dr-retina}.json \\
        --data-root DATA --out docs/results/ood --cache CACHE
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualResearch.experiment import DEFAULT_DATA_ROOT, load_experiment, run_script
from DAECounterfactualResearch.ood_detectors import CANDIDATES
from DAECounterfactualResearch.ood_evaluation import (encode_sets, markdown_table, measure_detectors, pick,
                                                      summary)
from DAECounterfactualResearch.ood_sets import bundle_sets


def encoded(experiment, bundle, args) -> tuple[dict, dict, dict, dict]:
    """Latents, cases, set records and skipped shifts of one bundle, from ``--cache`` when it holds them."""
    cache = args.cache and args.cache / f"{bundle.config.name}.npz"
    if cache and cache.exists() and cache.with_suffix(".json").exists():
        meta = json.loads(cache.with_suffix(".json").read_text(encoding="utf-8"))
        with np.load(cache, allow_pickle=False) as data:
            latents = {k[2:]: data[k] for k in data.files if k.startswith("z:")}
            groups = {k[2:]: data[k] for k in data.files if k.startswith("g:")}
        return latents, groups, meta["records"], meta["skipped"]
    sets = bundle_sets(experiment, bundle.config, args.data_root, args.limit_cases, args.mri_cases)
    latents, groups, records = encode_sets(Explainer(bundle), sets)
    if cache:
        args.cache.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **{f"z:{k}": v for k, v in latents.items()}, **{f"g:{k}": v for k, v in groups.items()})
        cache.with_suffix(".json").write_text(json.dumps({"records": records, "skipped": sets.skipped}),
                                              encoding="utf-8")
    return latents, groups, records, sets.skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("configs", type=Path, nargs="+", help="experiment configs of the bundles to measure")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--out", type=Path, default=None, help="folder for ood_<bundle>.json and summary.json")
    parser.add_argument("--cache", type=Path, default=None, help="folder keeping each bundle's latents for reruns")
    parser.add_argument("--limit-cases", type=int, default=None,
                        help="at most this many real and phantom cases in each in-distribution split")
    parser.add_argument("--mri-cases", type=int, default=8, help="lumbar MRI cases cut for the MRI shifts")
    args = parser.parse_args(argv)
    measured, detectors = {}, ["shipped", *CANDIDATES]
    for config in args.configs:
        experiment = load_experiment(config)
        bundle = load_bundle(resolve_bundle(experiment.name))
        latents, groups, records, skipped = encoded(experiment, bundle, args)
        measured[bundle.config.name] = measure_detectors(latents, groups, records, bundle.latent_stats, CANDIDATES)
        record = {"bundle": bundle.bundle_id, "fit_n": int(len(latents["fit"])), "skipped": skipped,
                  "limit_cases": args.limit_cases, "detectors": {"shipped": "the bundle's latent_stats.json"} |
                  {k: v[0] for k, v in CANDIDATES.items()}, "measured": measured[bundle.config.name]}
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"ood_{bundle.config.name}.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
        print(markdown_table(f"{bundle.bundle_id} (fit on {len(latents['fit'])} training patches)",
                             measured[bundle.config.name], detectors))
        print("skipped: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()) + "\n")
    table = summary(measured)
    for name, row in table.items():
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    chosen = pick(table)
    print(f"picked: {chosen}")
    if args.out:
        (args.out / "summary.json").write_text(json.dumps({"summary": table, "picked": chosen}, indent=1),
                                               encoding="utf-8")
    return 0


if __name__ == "__main__":
    run_script(main)
