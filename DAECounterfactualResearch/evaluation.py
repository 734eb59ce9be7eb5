"""Evaluation of a bundle the way the paper does it, plus the checks it never made.

Paper rows: detection ROC-AUC from the continuous signed distance (never from hard labels), grading MAE and
macro-F1 from the calibrated grade, for SVM and logistic probes and each calibration. Beyond the paper: does a
counterfactual re-encode to the grade it was made for (validity), does a CT counterfactual's measured vertebral
height loss give that grade (faithfulness), and how much of the image outside the vertebra changed (proximity).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from DAECounterfactualLib.bundle.spec import TaskSpec
from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.inference.patches import cut_patch, to_model_input, volume_value_range
from DAECounterfactualLib.inference.metrics import grain, mse, psnr, ssim
from DAECounterfactualLib.inference.spine_axis import patch_tilts
from DAECounterfactualLib.model.probe import CalibrationError

from .bootstrap import bootstrap_intervals
from .probe_fitting import fit_calibration
from .synthesis import (FRACTURE_KINDS, Heights, component_at_centre, genant_grade, make_spine_phantom,
                        morphometry)
from .task_fitting import TaskRecipe, fit_recipe_probe, grading_metrics

CALIBRATIONS = ("linear", "extremes", "poly")
CV_METRICS = ("auc", "mae", "macro_f1")
PROBES = ("svm", "logistic")


def confusion_matrix(grades: np.ndarray, predicted: np.ndarray, n_grades: int) -> list[list[int]]:
    """Rows: true grade; columns: predicted grade."""
    matrix = np.zeros((n_grades, n_grades), dtype=int)
    np.add.at(matrix, (np.asarray(grades, int), np.asarray(predicted, int)), 1)
    return matrix.tolist()


def roc_curve_points(scores: np.ndarray, positive: np.ndarray) -> dict[str, list[float]]:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(positive, bool), np.asarray(scores, float))
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


def labelled(z: np.ndarray, grades: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop samples without a grade (-1: e.g. a vertebra cut by the crop)."""
    known = np.asarray(grades) >= 0
    return z[known], np.asarray(grades)[known]


def probe_table(recipe: TaskRecipe, z_train: np.ndarray, g_train: np.ndarray, z_eval: np.ndarray,
                g_eval: np.ndarray, c: float, strata_train: np.ndarray | None = None) -> list[dict[str, Any]]:
    """One row per probe kind × calibration (the rows of the paper's Tables 3 and 4), metrics on the eval split.

    Each probe is fitted as the recipe's (``fit_recipe_probe``: binary or ordinal labels, excluded grades left
    out) with its kind replaced, the calibration on all grades; ``c`` is the regularisation chosen for the bundle
    (on the validation split)."""
    strata = None if strata_train is None else np.asarray(strata_train)[np.asarray(g_train) >= 0]
    z_train, g_train = labelled(z_train, g_train)
    z_eval, g_eval = labelled(z_eval, g_eval)
    n_grades = len(recipe.grade_names)
    rows = []
    for kind in PROBES:
        probe = fit_recipe_probe(replace(recipe, probe=kind, edit_components=0), z_train, g_train, c, strata)
        d_train, d_eval = probe.distance(z_train), probe.distance(z_eval)
        for method in CALIBRATIONS:
            calibration = fit_calibration(d_train, g_train, method, recipe.degree, grade_range=(0, n_grades - 1))
            predicted = calibration.grade(d_eval)
            row = {"probe": kind, "calibration": method if method != "poly" else f"poly{recipe.degree}", "C": c,
                   **grading_metrics(d_eval, predicted, g_eval, recipe.positive_min_grade),
                   "confusion": confusion_matrix(g_eval, predicted, n_grades)}
            try:
                calibration.inverse(0)
                row["invertible"] = True
            except CalibrationError:
                row["invertible"] = False  # cannot make counterfactuals for target grades
            rows.append(row)
    return rows


def cross_validated_rows(recipe: TaskRecipe, z: np.ndarray, grades: np.ndarray, c: float, folds: int,
                         groups: np.ndarray, strata: np.ndarray | None = None) -> list[dict]:
    """probe_table's rows averaged over folds that keep each group (case) in one fold, stratified by grade."""
    from sklearn.model_selection import StratifiedGroupKFold

    per_fold = []
    for train, held in StratifiedGroupKFold(folds, shuffle=True, random_state=0).split(z, grades, groups):
        fold_strata = None if strata is None else strata[train]
        per_fold.append(probe_table(recipe, z[train], grades[train], z[held], grades[held], c, fold_strata))
    rows = []
    for k, first in enumerate(per_fold[0]):
        rows.append({"probe": first["probe"], "calibration": first["calibration"],
                     **{m: float(np.mean([fold[k][m] for fold in per_fold])) for m in CV_METRICS}})
    return rows

INTERVAL_FIGURES = ("auc", "mae", "macro_f1", "accuracy", "validity", "reflection_validity", "faithfulness")


def grading_intervals(distance: np.ndarray, predicted: np.ndarray, grades: np.ndarray, positive_min_grade: int,
                      groups: np.ndarray) -> dict[str, list[float]]:
    """Bootstrap intervals of detection AUC, MAE, macro-F1 and accuracy, resampling whole cases (``groups``)."""
    def figures(i: np.ndarray) -> dict[str, float]:
        metrics = grading_metrics(distance[i], predicted[i], grades[i], positive_min_grade)
        return {k: v for k, v in metrics.items() if k in INTERVAL_FIGURES}
    return bootstrap_intervals(figures, groups)


def difference_intervals(ours: tuple[np.ndarray, np.ndarray], theirs: tuple[np.ndarray, np.ndarray],
                         grades: np.ndarray, positive_min_grade: int, groups: np.ndarray) -> dict[str, list[float]]:
    """Bootstrap intervals of our AUC, MAE and macro-F1 minus another model's, both scored on the same resampled
    cases (a paired comparison: far narrower than two separate intervals). ``ours`` and ``theirs``: (continuous
    detection score, predicted grade) per image."""
    def figures(i: np.ndarray) -> dict[str, float]:
        a = grading_metrics(ours[0][i], ours[1][i], grades[i], positive_min_grade)
        b = grading_metrics(theirs[0][i], theirs[1][i], grades[i], positive_min_grade)
        return {k: a[k] - b[k] for k in ("auc", "mae", "macro_f1")}
    return bootstrap_intervals(figures, groups)


def counterfactual_intervals(cases: list[dict[str, Any]], n_grades: int,
                             groups: np.ndarray) -> dict[str, list[float]]:
    """Bootstrap intervals of validity, reflection validity and faithfulness, resampling the explained images'
    cases (``groups``: one per image in ``cases``); each image keeps its counterfactuals for every grade."""
    def figures(i: np.ndarray) -> dict[str, float]:
        summary = summarise_counterfactuals([cases[k] for k in i], n_grades)
        return {k: v for k, v in summary.items() if k in INTERVAL_FIGURES}
    return bootstrap_intervals(figures, groups)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of vectors (FID's formula, here on z_sem)."""
    from scipy import linalg

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise InputError("the Fréchet distance needs at least two vectors per set")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = np.real(linalg.sqrtm(cov_a @ cov_b))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root))


def latent_geometry(probe, z: np.ndarray) -> dict[str, float]:
    """Why a probe direction may not be drawn: how the latents spread, and how much of that spread lies along n̂.

    In the probe's standardised space every axis has variance 1. ``effective_rank`` is the participation ratio
    (sum λ)² / sum λ² of the covariance eigenvalues; ``direction_variance`` is the variance of the latents along
    n̂ (1 = an average direction). A DAE decoder learns to follow the directions its encoder actually uses; a probe
    that separates the classes along a direction of variance 0.01 reads a faint trace the decoder can ignore (the
    vcf-ct models have effective rank 2-3 and their genant direction far below 1)."""
    u = probe.standardize(z)
    u = u - u.mean(axis=0)
    eigenvalues = np.clip(np.linalg.eigvalsh(u.T @ u / max(len(u) - 1, 1)), 0, None)
    explained = np.cumsum(eigenvalues[::-1]) / eigenvalues.sum()
    return {"effective_rank": float(eigenvalues.sum() ** 2 / np.sum(eigenvalues ** 2)),
            "components_for_99pct": int(np.searchsorted(explained, 0.99) + 1),
            "direction_variance": float(np.var(u @ probe.unit_normal, ddof=1))}


def reconstruction_quality(originals: np.ndarray, reconstructions: np.ndarray) -> dict[str, float]:
    pairs = list(zip(originals, reconstructions))
    return {"mse": float(np.mean([mse(r, o) for o, r in pairs])),
            "psnr": float(np.mean([psnr(r, o) for o, r in pairs])),
            "ssim": float(np.mean([ssim(r, o) for o, r in pairs]))}


def reconstruction_by_preset(explainer, images: np.ndarray) -> dict[str, dict[str, Any]]:
    """Encode -> DDIM inversion -> decode of each image with every step preset of the bundle, as an explanation
    does it: the reconstruction quality each preset buys against the input, and its seconds per image here
    (inversion and decoding; the latents, the same for every preset, are encoded once)."""
    results, latents = {}, explainer.encode(images)
    for name in explainer.config.presets:
        steps = explainer.preset(name)
        started, reconstructions = time.perf_counter(), []
        for image, z in zip(images, latents):
            x_T = explainer.invert(image[None], z[None], steps)
            reconstructions.append(explainer.decode(x_T, z[None], steps)[0])
        explainer.forget_inversions()
        results[name] = reconstruction_quality(images, np.stack(reconstructions)) | {
            "steps": vars(steps).copy(), "seconds_per_image": (time.perf_counter() - started) / len(images)}
    return results


RULER_LABEL = 21  # the middle vertebra of a phantom (T9-T11 by default)


@dataclass(frozen=True)
class BodyMeasure:
    """Segments the vertebral body of a patch by a threshold and measures its Genant grade (CT only).

    The patch is upsampled (linear) before thresholding: at 1.5 mm a pixel is about 5 % of a body's height, as
    wide as the whole G1 band, so edges found to the nearest pixel could not tell G1 from G0 or G2."""

    threshold: float   # in model units [-1, 1]
    spacing_mm: float
    upsample: int = 4

    def mask(self, image: np.ndarray, upsample: int = 1) -> np.ndarray:
        """Body mask at the patch's resolution, or ``upsample`` times finer."""
        from scipy import ndimage

        pixels = np.asarray(image, dtype=np.float64)[0]
        if upsample > 1:
            pixels = ndimage.zoom(pixels, upsample, order=1)
        body = component_at_centre(pixels, self.threshold)
        if body.sum() <= 16 * upsample ** 2:
            return body
        return ndimage.binary_fill_holes(ndimage.binary_opening(body, iterations=upsample))

    def heights(self, image: np.ndarray) -> Heights | None:
        """Anterior, middle and posterior heights of the body at the patch centre; None where none is found."""
        try:
            return morphometry(self.mask(image, self.upsample), self.spacing_mm / self.upsample)
        except InputError:
            return None

    def height_loss(self, image: np.ndarray) -> float | None:
        """Genant height loss 1 - min(Ha, Hm) / Hp of the body at the patch centre; None where none is found."""
        heights = self.heights(image)
        return None if heights is None else heights.height_loss

    def grade(self, image: np.ndarray) -> int | None:
        """Morphometric grade of the body at the patch centre; None where no body can be measured."""
        loss = self.height_loss(image)
        return None if loss is None else genant_grade(loss)


def reference_height_loss(heights: Heights, intact: Heights) -> float:
    """Height lost against the same body intact: 1 - min(Ha, Hm, Hp) / max(Ha, Hp) of the intact body.

    Unlike the Genant ratio it sees crush fractures, which lower all three heights alike; it needs the body
    before the fracture, which a counterfactual of an intact vertebra has: the input."""
    return 1.0 - min(heights.ha, heights.hm, heights.hp) / max(intact.ha, intact.hp)


def ct_body_measure(config) -> BodyMeasure:
    """Bone threshold (150 HU) in the bundle's model units; needs a CT window preprocessing."""
    pre = config.preprocessing
    if pre.kind != "ct_window":
        raise InputError(f"morphometric faithfulness needs a CT bundle, {config.name} has {pre.kind} preprocessing")
    threshold = float(pre.apply(np.array([150.0], np.float32))[0])
    return BodyMeasure(threshold=threshold, spacing_mm=config.patch_spacing_mm)


def _agreement_by_grade(measured: np.ndarray, truth: np.ndarray, n_grades: int) -> list[float]:
    """Share of ``measured == truth`` among the samples of each true grade (nan for a grade without samples)."""
    return [float(np.mean(measured[truth == g] == g)) if (truth == g).any() else float("nan")
            for g in range(n_grades)]


def _mean_by_grade(values: np.ndarray, grades: np.ndarray, n_grades: int) -> list[float]:
    """Mean of the finite ``values`` of each grade (nan for a grade with none)."""
    return [float(np.mean(values[(grades == g) & np.isfinite(values)]))
            if ((grades == g) & np.isfinite(values)).any() else float("nan") for g in range(n_grades)]


def ruler_agreement(measure: BodyMeasure, images: np.ndarray, grades: np.ndarray,
                    kinds: np.ndarray | None = None) -> dict[str, Any]:
    """How often the faithfulness ruler gives labelled held-out images their own grade: the ceiling of
    faithfulness, since no counterfactual can be measured more reliably than real images of its target grade.
    ``kinds`` (the fracture kind of each image, "" if none) adds the agreement on the fractured ones by kind."""
    grades = np.asarray(grades)
    losses = np.array([np.nan if v is None else v for v in map(measure.height_loss, images)])
    ok, n_grades = np.isfinite(losses), int(grades.max()) + 1
    measured = np.array([genant_grade(v) if np.isfinite(v) else -1 for v in losses])
    by_grade = _agreement_by_grade(measured[ok], grades[ok], n_grades)
    by_kind = {} if kinds is None else {
        str(kind): float(np.mean(measured[ok & (kinds == kind)] == grades[ok & (kinds == kind)]))
        for kind in np.unique(kinds[ok & (grades > 0)]) if kind}
    return {"n": int(len(grades)), "measured": int(ok.sum()), "agreement_by_kind": by_kind,
            "agreement": float(np.mean(measured[ok] == grades[ok])),
            "agreement_within_one": float(np.mean(np.abs(measured[ok] - grades[ok]) <= 1)),
            "agreement_by_grade": by_grade,
            "agreement_grade_balanced": float(np.nanmean(by_grade)),  # counterfactuals target every grade alike
            "mean_loss_by_grade": _mean_by_grade(losses, grades, n_grades)}


def _phantom_patch(config, phantom, offset: float) -> np.ndarray:
    """The model input of the middle vertebra, cut as the module cuts it but ``offset`` mm off its centre."""
    index = next(n for n, p in enumerate(phantom.positions) if p.label == RULER_LABEL)
    tilt = patch_tilts(config, phantom.positions, [index])[index]
    patch = cut_patch(config, phantom.volume, phantom.positions[index].ras, offset, tilt)
    return to_model_input(config, [patch], volume_value_range(config, phantom.volume))[0]


def pair_readings(config, measure: BodyMeasure, seed: int, loss: float, kind: str,
                  offsets: tuple[float, ...]) -> list[dict]:
    """Both rulers' height loss of one fractured phantom vertebra, at each lateral offset."""
    intact, fractured = make_spine_phantom(seed=seed), make_spine_phantom(seed=seed, fractures={RULER_LABEL: (loss, kind)})
    readings = []
    for offset in offsets:
        before, after = measure.heights(_phantom_patch(config, intact, offset)), measure.heights(_phantom_patch(config, fractured, offset))
        if before is None or after is None:
            continue
        readings.append({"kind": kind, "loss": loss, "offset": offset, "ratio": after.height_loss,
                         "reference": reference_height_loss(after, before)})
    return readings


def ruler_summary_rows(readings: list[dict]) -> list[str]:
    """Per ruler and fracture kind: patches, grade agreement, mean and SD of the height-loss error."""
    rows = []
    for ruler in ("ratio", "reference"):
        for kind in FRACTURE_KINDS:
            sample = [r for r in readings if r["kind"] == kind]
            if not sample:
                continue
            error = np.array([r[ruler] - r["loss"] for r in sample])
            agree = np.mean([genant_grade(r[ruler]) == genant_grade(r["loss"]) for r in sample])
            rows.append(f"{ruler} | {kind} | {len(sample)} | {agree:.2f} | {error.mean():+.3f} | {error.std():.3f}")
    return rows


def proximity(counterfactual: np.ndarray, reconstruction: np.ndarray, body: np.ndarray,
              dilate_px: int = 3) -> dict[str, float]:
    """Mean absolute change inside the (dilated) vertebral body and outside it, model units."""
    from scipy import ndimage

    region = ndimage.binary_dilation(body, iterations=dilate_px) if dilate_px > 0 else np.asarray(body, bool)
    change = np.abs(np.asarray(counterfactual, np.float64) - reconstruction).mean(axis=0)
    return {"inside": float(change[region].mean()) if region.any() else float("nan"),
            "outside": float(change[~region].mean()) if (~region).any() else float("nan")}


def counterfactual_checks(explainer, images: np.ndarray, grades: np.ndarray, task, preset,
                          measure: BodyMeasure | None = None,
                          progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Explain every image; re-encode each grade counterfactual and the reflection and grade them again.

    validity: share of grade counterfactuals whose re-encoded grade is their target; reflection validity: share
    of binary counterfactuals that land on the other side of the hyperplane; out of distribution: the share whose
    re-encoded latent lies beyond the bundle's OOD threshold; grain: each counterfactual's fine texture over its
    reconstruction's (validity can be reached by adding grain the encoder reads as pathology). With ``measure``
    (CT): the share whose measured morphometric grade equals the target, and the change inside vs outside the
    vertebra. The explanations come back too (``explanations``, by case), so that a report draws them without
    explaining its strip cases again."""
    spec = task if isinstance(task, TaskSpec) else explainer.bundle.task(task)
    n_grades = len(spec.grade_names)
    per_case, recon, z_cf, explanations = [], [], {g: [] for g in range(n_grades)}, []
    for k, image in enumerate(images):
        e = explainer.explain(image, spec, preset=preset, sweep_count=0)
        explainer.forget_inversions()
        z, regraded = e.reencoded_latents, e.reencoded
        case = {"grade": int(grades[k]), "predicted": int(e.grades.grade[0]),
                "distance": float(e.grades.distance[0]),
                "cf_grades": regraded.grade[:n_grades].tolist(),
                "cf_distances": regraded.distance[:n_grades].tolist(),
                "target_distances": e.target_distances.tolist(),
                "cf_out_of_distribution": regraded.ood[:n_grades].tolist(),
                "cf_grain": [grain(cf, e.reconstruction) for cf in e.counterfactuals],
                "reflection_flipped": bool(np.sign(regraded.distance[-1]) != np.sign(e.grades.distance[0]))}
        if measure is not None:
            heights = [measure.heights(cf) for cf in e.counterfactuals]
            case["cf_measured_losses"] = [None if h is None else h.height_loss for h in heights]
            case["cf_measured_grades"] = [None if h is None else h.grade for h in heights]
            intact = measure.heights(image) if grades[k] == 0 else None
            if intact is not None:
                case["cf_reference_grades"] = [None if h is None else genant_grade(reference_height_loss(h, intact))
                                               for h in heights]
            body = measure.mask(e.reconstruction)
            case["proximity"] = [proximity(cf, e.reconstruction, body) for cf in e.counterfactuals]
        per_case.append(case)
        explanations.append(e)
        recon.append(e.reconstruction)
        for g in range(n_grades):
            z_cf[g].append(z[g])
        if progress:
            progress(k + 1, len(images))
    fitted_on = explainer.bundle.ood_fitted_on
    return summarise_counterfactuals(per_case, n_grades) | ({"ood_fitted_on": fitted_on} if fitted_on else {}) | {
        "reconstruction": reconstruction_quality(images, np.stack(recon)), "cases": per_case,
        "latents": {g: np.stack(v) for g, v in z_cf.items()}, "explanations": explanations}


def summarise_counterfactuals(cases: list[dict[str, Any]], n_grades: int) -> dict[str, Any]:
    targets = np.tile(np.arange(n_grades), len(cases))
    regraded = np.concatenate([c["cf_grades"] for c in cases])
    summary = {"n_cases": len(cases), "validity": float(np.mean(regraded == targets)),
               "validity_within_one": float(np.mean(np.abs(regraded - targets) <= 1)),
               "mean_abs_grade_error": float(np.mean(np.abs(regraded - targets))),
               "validity_by_target": _agreement_by_grade(regraded, targets, n_grades),
               "reflection_validity": float(np.mean([c["reflection_flipped"] for c in cases]))}
    if cases and "cf_out_of_distribution" in cases[0]:  # results from before it was recorded lack it
        beyond = np.concatenate([c["cf_out_of_distribution"] for c in cases]).astype(float)
        summary["out_of_distribution"] = float(beyond.mean())
        summary["out_of_distribution_by_target"] = _mean_by_grade(beyond, targets, n_grades)
    if cases and "cf_grain" in cases[0]:
        grains = np.concatenate([c["cf_grain"] for c in cases]).astype(float)
        summary["grain"] = float(np.nanmean(grains))
        summary["grain_by_target"] = _mean_by_grade(grains, targets, n_grades)
    if cases and "cf_measured_grades" in cases[0]:
        summary |= _faithfulness_summary(cases, targets, n_grades)
    return summary


def _faithfulness_summary(cases: list[dict[str, Any]], targets: np.ndarray, n_grades: int) -> dict[str, Any]:
    """Measured morphometric grade against the target grade, and the change inside vs outside the body."""
    measured = _measured_grades(cases, "cf_measured_grades")
    ok = measured >= 0
    summary = {"faithfulness": float(np.mean(measured[ok] == targets[ok])) if ok.any() else float("nan"),
               "faithfulness_within_one": (float(np.mean(np.abs(measured[ok] - targets[ok]) <= 1))
                                           if ok.any() else float("nan")),
               "faithfulness_measured": int(ok.sum()),
               "faithfulness_by_target": _agreement_by_grade(measured[ok], targets[ok], n_grades)}
    if "cf_measured_losses" in cases[0]:
        losses = np.array([np.nan if v is None else v for c in cases for v in c["cf_measured_losses"]])
        summary["measured_loss_by_target"] = _mean_by_grade(losses, targets, n_grades)
    summary |= _from_intact_summary([c for c in cases if "cf_reference_grades" in c], n_grades)
    summary["change_inside_body"] = float(np.nanmean([p["inside"] for c in cases for p in c["proximity"]]))
    summary["change_outside_body"] = float(np.nanmean([p["outside"] for c in cases for p in c["proximity"]]))
    return summary


def _measured_grades(cases: list[dict[str, Any]], key: str) -> np.ndarray:
    """The grades a ruler measured on every counterfactual of ``cases``, in order; -1 where none could be."""
    return np.array([m if m is not None else -1 for c in cases for m in c[key]])


def _from_intact_summary(cases: list[dict[str, Any]], n_grades: int) -> dict[str, Any]:
    """Faithfulness of the counterfactuals of intact inputs, measured against the input's own heights."""
    if not cases:
        return {}
    measured = _measured_grades(cases, "cf_reference_grades")
    ok, targets = measured >= 0, np.tile(np.arange(n_grades), len(cases))
    return {"faithfulness_from_intact": float(np.mean(measured[ok] == targets[ok])),
            "faithfulness_from_intact_cases": len(cases),
            "faithfulness_from_intact_by_target": _agreement_by_grade(measured[ok], targets[ok], n_grades)}


def spread(n: int, grades: np.ndarray) -> np.ndarray:
    """Indices of ``n`` cases spread over every grade: the grades take turns (a grade out of cases drops out), and
    each grade's share is spread evenly over its cases, from the first to the last (a set ordered by source or
    patient is then sampled across all of them, not from its start)."""
    by_grade = [np.flatnonzero(grades == g) for g in np.unique(grades[grades >= 0])]
    quota = [0] * len(by_grade)
    while sum(quota) < n and any(q < len(part) for q, part in zip(quota, by_grade)):
        for k, part in enumerate(by_grade):
            if quota[k] < len(part) and sum(quota) < n:
                quota[k] += 1
    picks = [part[np.linspace(0, len(part) - 1, q).round().astype(int)] for part, q in zip(by_grade, quota) if q]
    return np.array(sorted(np.concatenate(picks)) if picks else [], dtype=int)


def previous_baseline(out: Path, results: dict, task: str) -> dict | None:
    """The baseline entry of an earlier evaluation of the same data (by content, not file name) and split."""
    path = out / "results.json"
    if not path.exists():
        return None
    earlier = json.loads(path.read_text(encoding="utf-8"))
    if (earlier.get("data_sha256"), earlier.get("split")) != (results["data_sha256"], results["split"]):
        return None
    return earlier.get("tasks", {}).get(task, {}).get("baseline")


def out_of_fold_scores(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, fit) -> np.ndarray:
    """Each sample's score from a model fitted without its group (up to 5 folds by group); ``fit(x, y)`` returns a
    scoring function."""
    from sklearn.model_selection import GroupKFold

    scores = np.zeros(len(labels))
    for train, held in GroupKFold(min(5, len(set(groups)))).split(features, labels, groups):
        scores[held] = fit(features[train], labels[train])(features[held])
    return scores


def grouped_auc(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, fit) -> float:
    """AUC of out-of-fold scores, folds by group (``out_of_fold_scores``)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, out_of_fold_scores(features, labels, groups, fit)))


def pixel_change(images: np.ndarray, keys: np.ndarray, simulated: np.ndarray, fractured: np.ndarray) -> float:
    """Mean |simulated fracture - the same body's intact patch| over pixels and fractured patches."""
    intact = {k: i for i, k in enumerate(keys) if not simulated[i]}
    pairs = [(i, intact[keys[i]]) for i in np.flatnonzero(simulated & fractured) if keys[i] in intact]
    return float(np.mean([np.abs(images[i] - images[j]).mean() for i, j in pairs]))
