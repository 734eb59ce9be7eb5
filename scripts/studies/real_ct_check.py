#!/usr/bin/env python
"""Can a CT bundle see the fractures simulated on the real CTs of its training split?

Phantom-only validation and test splits cannot answer this, and the answer decides whether the bundle's grades of
real vertebrae mean anything. Prints, on the training split's real-CT patches (G1 left out, as in the probe):
how much a simulated G2-G3 fracture changes the patch; the AUC of a probe fitted on the phantoms; the AUC of a
probe fitted on the real patches alone and of a logistic regression on their pixels, both cross-validated by
vertebra (no vertebra is scored by a model that saw it).

    python scripts/studies/real_ct_check.py scripts/configs/vcf-ct.json --data-root DATA
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from DAECounterfactualLib.bundle.registry import resolve_bundle
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualResearch.evaluation import grouped_auc, pixel_change
from DAECounterfactualResearch.experiment import add_bundle_arguments, load_data, load_experiment
from DAECounterfactualResearch.probe_fitting import fit_probe
from DAECounterfactualResearch.task_fitting import TaskRecipe


def main(argv: list[str] | None = None) -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_bundle_arguments(parser)
    args = parser.parse_args(argv)
    experiment = load_experiment(args.config)
    recipe = TaskRecipe.from_config(experiment.tasks[0])
    data, _ = load_data(experiment, args.data_root)
    train = data.subset(experiment.train_split)
    grades, extra = train.grades, train.extra
    usable = (grades >= 0) & ~np.isin(grades, recipe.exclude_from_probe)
    real, phantom = usable & (extra["origin"] == "real"), usable & (extra["origin"] == "phantom")
    positive = grades >= recipe.positive_min_grade
    vertebra = np.char.add(train.case_id.astype(str), extra["label"].astype(str))
    body_view = np.char.add(vertebra, extra["lateral_offset_mm"].astype(str))
    images = train.images.astype(np.float32)
    z = Explainer(load_bundle(resolve_bundle(args.bundle or experiment.name))).encode(train.images)

    change = pixel_change(images[real], body_view[real], extra["simulated"][real], positive[real])
    print(f"real-CT patches: {real.sum()} ({positive[real].sum()} G{recipe.positive_min_grade}+) from "
          f"{len(set(vertebra[real]))} vertebrae; a simulated fracture changes a patch by {change:.4f} on average "
          f"(image standard deviation {images[real].std():.3f})")
    probe = fit_probe(z[phantom], positive[phantom], recipe.probe, components=recipe.probe_components)
    print(f"probe fitted on the phantoms, AUC on the real patches: "
          f"{roc_auc_score(positive[real], probe.distance(z[real])):.3f}")

    def latent_probe(x, y):
        return fit_probe(x, y, recipe.probe, C=0.01).distance

    def pixel_model(x, y):
        return LogisticRegression(C=0.01, max_iter=3000).fit(x, y).decision_function

    flat = images[real].reshape(real.sum(), -1)
    print(f"probe fitted on real patches only (cross-validated by vertebra), AUC: "
          f"{grouped_auc(z[real], positive[real], vertebra[real], latent_probe):.3f}")
    print(f"logistic regression on their pixels (cross-validated by vertebra), AUC: "
          f"{grouped_auc(flat, positive[real], vertebra[real], pixel_model):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
