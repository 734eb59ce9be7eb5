#!/usr/bin/env python
"""Does the decoder follow a probe fitted in the latents' main directions? AUC against edit response per subspace.

For each k, the probe is fitted on the top-k principal components of the standardised training latents (its normal
then lies in that subspace; k = 0: all 512 dimensions); the edit response is the slope of re-encoded over requested
distance steps on validation images (task_fitting.edit_response, gain 1). It picks a task's ``probe_components``:
the fewest directions that keep the validation AUC, where the decoder still draws the edit (vcf-ct: 16).

    python scripts/studies/probe_subspaces.py scripts/configs/vcf-ct.json --data-root DATA --components 8 12 16 24 0

``--edit-components m`` edits every wider probe along its normal's projection on the top m directions instead
(the task option ``edit_components``), to see whether a wider grader's distance follows edits the decoder draws.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import numpy as np

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualResearch.bundle_making import gain_images
from DAECounterfactualResearch.experiment import add_bundle_arguments, chosen_task, load_data, load_experiment
from DAECounterfactualResearch.task_fitting import TaskRecipe, edit_response, fit_task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bundle_arguments(parser, task=True)
    parser.add_argument("--components", type=int, nargs="+", default=[4, 8, 16, 0])
    parser.add_argument("--C", type=float, default=None,
                        help="probe regularisation (default: chosen from the recipe's grid on validation AUC, as "
                             "make_bundle does)")
    parser.add_argument("--images", type=int, default=8, help="validation images for the edit response")
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--edit-components", type=int, default=0,
                        help="edit probes wider than this along their normal's projection on this many directions")
    args = parser.parse_args(argv)
    experiment = load_experiment(args.config)
    bundle = load_bundle(resolve_bundle(args.bundle or experiment.name))
    recipe = chosen_task(parser, args, experiment)
    explainer, spec = Explainer(bundle), bundle.task(recipe["name"])
    data, _ = load_data(experiment, args.data_root)
    train = data.subset(experiment.train_split)
    val = data.subset(experiment.val_split)
    z_train, z_val = explainer.encode(train.images), explainer.encode(val.images)
    images = gain_images(val, args.images)
    print("components | edit components | C | val AUC | val MAE | val macro-F1 | response slope | r")
    for k in args.components:
        edit = args.edit_components if k == 0 or k > args.edit_components else 0
        task_recipe = replace(TaskRecipe.from_config(recipe), probe_components=k, edit_components=edit)
        task_recipe = replace(task_recipe, c_grid=(args.C,)) if args.C is not None else task_recipe
        fitted = fit_task(task_recipe, z_train, train.grades, z_val, val.grades, task_recipe.strata(train))
        task = replace(spec, probe=fitted.probe, calibration=fitted.calibration, edit_gain=1.0)
        requested, achieved = edit_response(explainer, images, task, args.preset)
        slope = float(requested @ achieved / (requested @ requested))
        m = fitted.metrics
        print(f"{k or 'all':>10} | {edit or '-'} | {m['C']:g} | {m['auc']:.3f} | {m['mae']:.3f} | "
              f"{m['macro_f1']:.3f} | {slope:.3f} | {np.corrcoef(requested, achieved)[0, 1]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
