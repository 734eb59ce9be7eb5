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

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualResearch.experiment import DEFAULT_DATA_ROOT, load_experiment, run_script
from DAECounterfactualResearch.ood_cache import read_cache, write_cache
from DAECounterfactualResearch.ood_detectors import CANDIDATES
from DAECounterfactualResearch.ood_evaluation import (BEFORE, SHIPPED_DETECTOR, ScoredSets, before_after_table,
                                                      encode_sets, markdown_table, measure, measure_detectors, pick,
                                                      summary)
from DAECounterfactualResearch.ood_round_trip import STEPS, round_trip_sets
from DAECounterfactualResearch.ood_sets import bundle_sets

ROUND_TRIP = f"mean squared error of a DDIM round trip ({STEPS} steps each way, no refinement), on a subsample"


def encoded(experiment, bundle, args) -> dict:
    """The encoded sets of one bundle (``ood_cache``), from ``--cache`` when it holds them."""
    cache = args.cache and args.cache / f"{bundle.config.name}.npz"
    cached = cache and read_cache(cache, args.round_trip, experiment.ood_sources)
    if cached:
        return cached
    sets = bundle_sets(experiment, bundle.config, args.data_root, args.limit_cases, args.mri_cases)
    explainer = Explainer(bundle)
    latents, groups, records = encode_sets(explainer, sets)
    errors, error_groups = round_trip_sets(explainer, sets, args.round_trip) if args.round_trip else ({}, {})
    data = {"z": latents, "g": groups, "r": errors, "rg": error_groups, "records": records,
            "skipped": sets.skipped, "round_trip": args.round_trip, "fit_sources": list(experiment.ood_sources)}
    if cache:
        write_cache(cache, data)
    return data


def measured_bundle(bundle, data: dict) -> dict[str, dict]:
    """Every detector's measurement; the round trip's on its subsample, where one was run."""
    out = measure_detectors(data["z"], data["g"], data["records"], bundle.latent_stats, CANDIDATES,
                            bundle.ood_detector)
    if data["r"]:
        records = {k: v | {"n": len(data["r"][k])} for k, v in data["records"].items()}
        out["round_trip"] = measure(ScoredSets(data["r"], data["rg"], records))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("configs", type=Path, nargs="+", help="experiment configs of the bundles to measure")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--out", type=Path, default=None, help="folder for ood_<bundle>.json and summary.json")
    parser.add_argument("--cache", type=Path, default=None, help="folder keeping each bundle's latents for reruns")
    parser.add_argument("--limit-cases", type=int, default=None,
                        help="at most this many real and phantom cases in each in-distribution split")
    parser.add_argument("--mri-cases", type=int, default=8, help="lumbar MRI cases cut for the MRI shifts")
    parser.add_argument("--round-trip", type=int, default=0,
                        help="also score the DDIM round trip on this many images of each set (0: not)")
    args = parser.parse_args(argv)
    measured = {}
    for config in args.configs:
        experiment = load_experiment(config)
        bundle = load_bundle(resolve_bundle(experiment.name))
        data = encoded(experiment, bundle, args)
        measured[bundle.config.name] = measured_bundle(bundle, data)
        detectors, skipped, fit_n = list(measured[bundle.config.name]), data["skipped"], len(data["z"]["fit"])
        described = {BEFORE: "the bundle's latent_stats.json", SHIPPED_DETECTOR: "the bundle's ood.json"} | \
            {k: v[0] for k, v in CANDIDATES.items()}
        record = {"bundle": bundle.bundle_id, "fit_n": fit_n, "skipped": skipped, "limit_cases": args.limit_cases,
                  "round_trip_images": args.round_trip, "detectors": described | {"round_trip": ROUND_TRIP},
                  "measured": measured[bundle.config.name]}
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"ood_{bundle.config.name}.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
        print(markdown_table(f"{bundle.bundle_id} (fit on {fit_n} training patches)",
                             measured[bundle.config.name], detectors))
        print("skipped: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()) + "\n")
    table = summary(measured)
    for name, row in table.items():
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    chosen = pick(table)
    print(f"picked: {chosen}\n")
    for name, bundle_measured in measured.items():
        print(before_after_table(name, bundle_measured, chosen) + "\n")
    if args.out:
        (args.out / "summary.json").write_text(json.dumps({"summary": table, "picked": chosen}, indent=1),
                                               encoding="utf-8")
    return 0


if __name__ == "__main__":
    run_script(main)
