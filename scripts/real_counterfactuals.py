#!/usr/bin/env python
"""Issue 21's counterfactual checks on real vertebrae: on the real series a vertebra bundle's DAE never trained on
(within the data sources its OOD detector is fitted on), do the counterfactuals of intact bodies lower the body as
their grade says, is the change in the body and not the background, and does the G0 counterfactual of a simulated
G2-G3 fracture restore the height? Heights are read by the endplate ruler, itself checked first on the simulated
fractures; JSON and the strips of three real vertebrae go to --out.

    python scripts/real_counterfactuals.py scripts/configs/vertebra-mri.json --data-root DATA \
        --out docs/results/mri-real --fracture-kinds wedge,biconcave
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.cli.strips import save_strip
from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualResearch.experiment import add_bundle_arguments, chosen_task, load_experiment, run_script
from DAECounterfactualResearch.real_counterfactuals import (healthy_counterfactuals, real_bodies, restored_fractures,
                                                            ruler_check, summary, unseen_specs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bundle_arguments(parser, task=True)
    parser.add_argument("--out", type=Path, default=None, help="folder for counterfactuals_<bundle>.json and strips")
    parser.add_argument("--preset", default="standard", help="step preset of the explanations")
    parser.add_argument("--fracture-kinds", default="wedge,biconcave,crush",
                        help="the kinds simulated on intact bodies (those the bundle's training set had)")
    parser.add_argument("--limit-cases", type=int, default=None, help="at most this many series (a quick look)")
    parser.add_argument("--strips", type=int, default=3, help="strips of this many real vertebrae, spread out")
    args = parser.parse_args(argv)
    experiment = load_experiment(args.config)
    spec = chosen_task(parser, args, experiment)
    bundle = load_bundle(resolve_bundle(args.bundle or experiment.name))
    task = bundle.task(spec["name"])
    specs = unseen_specs(experiment, bundle, args.data_root)[:args.limit_cases]
    bodies = real_bodies(bundle, specs, tuple(k for k in args.fracture_kinds.split(",") if k))
    if not bodies:
        raise InputError(f"{bundle.config.name}: no intact real body whole in the patch among the unseen series "
                         f"({', '.join(s.case for s in specs) or 'none'})")
    explainer = Explainer(bundle)
    check = ruler_check(bodies, bundle.config.patch_spacing_mm)
    healthy = healthy_counterfactuals(explainer, bodies, task, args.preset)
    fractures = restored_fractures(explainer, bodies, task, args.preset, task.positive_min_grade)
    record = {"bundle": bundle.bundle_id, "task": task.name, "preset": args.preset,
              "series": [s.case for s in specs], "ruler_check": check,
              "summary": summary(healthy, fractures, len(task.grade_names)), "healthy": healthy,
              "fractures": fractures}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"counterfactuals_{bundle.config.name}.json").write_text(json.dumps(record, indent=1),
                                                                            encoding="utf-8")
        for body in (bodies[int(i)] for i in np.unique(np.linspace(0, len(bodies) - 1, args.strips).round())):
            explanation = explainer.explain(body.image, task, preset=args.preset, sweep_count=0)
            save_strip(args.out / f"strip_{bundle.config.name}_{body.case}_{body.level}.png", body.image,
                       explanation, title=f"{bundle.bundle_id} {task.name}: {body.case} {body.level} (real, intact)")
    print(f"{bundle.bundle_id}: {len(bodies)} intact bodies of {len(specs)} unseen series; ruler on "
          f"{check['n']} simulated fractures: mean |error| {check.get('mean_abs_error', float('nan')):.3f}, "
          f"grade agreement {check.get('grade_agreement', float('nan')):.2f}")
    result = record["summary"]
    for name, row in zip(task.grade_names, result["by_target"]):
        print(f"counterfactual {name}: median height loss {row['median_loss']:.3f} (read {row['read']} of "
              f"{row['of']}), in its band {row['in_band']:.2f}, at least its band {row['at_least_band']:.2f}, "
              f"change inside/outside the body {row['change_inside']:.4f}/{row['change_outside']:.4f}")
    print(f"G0 counterfactual of {result['fractures_read']} simulated fractures: restored to G0 "
          f"{result['g0_restored']:.2f} (median loss {result['g0_loss_median']:.3f}, the fractures "
          f"{result['fracture_read_loss_median']:.3f})")
    return 0


if __name__ == "__main__":
    run_script(main)
