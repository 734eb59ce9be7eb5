"""Evaluation: paper metrics from continuous scores, counterfactual checks, the baseline and the report."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualResearch.evaluation import (
    BodyMeasure,
    confusion_matrix,
    counterfactual_checks,
    frechet_distance,
    probe_table,
    proximity,
    reconstruction_by_preset,
    reference_height_loss,
    ruler_agreement,
    summarise_counterfactuals,
)
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualResearch.synthesis import simulate_fracture
from DAECounterfactualResearch.task_fitting import TaskRecipe, grading_metrics

RECIPE = TaskRecipe(name="genant", grade_names=("G0", "G1", "G2", "G3"), positive_min_grade=2,
                    exclude_from_probe=(1,))


def graded_latents(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Latents whose first dimension grows with the grade, plus noise in 7 more."""
    rng = np.random.default_rng(seed)
    grades = rng.integers(0, 4, n)
    z = rng.normal(size=(n, 8))
    z[:, 0] = grades + rng.normal(scale=0.6, size=n)
    return z, grades


def test_recipe_from_an_experiment_config_task():
    task = json.loads('{"name": "genant", "grade_names": ["G0", "G1", "G2", "G3"], "positive_min_grade": 2, '
                      '"exclude_from_probe": [1]}')
    assert TaskRecipe.from_config(task) == RECIPE
    assert TaskRecipe.from_config({**task, "probe_components": 16}).probe_components == 16


def test_an_ordinal_recipe_fits_its_probe_on_every_grade_and_its_probe_table_rows_too(monkeypatch):
    """``"ordinal": true`` routes the bundled task, the acceptance and the results table's rows through
    fit_ordinal_probe (excluded grades still left out); without it they stay binary."""
    from DAECounterfactualResearch import task_fitting
    from DAECounterfactualResearch.task_fitting import fit_recipe

    z, grades = graded_latents(300, 0)
    seen = []
    fit_ordinal = task_fitting.fit_ordinal_probe
    monkeypatch.setattr(task_fitting, "fit_ordinal_probe",
                        lambda x, g, *args, **kwargs: seen.append(sorted(set(g))) or fit_ordinal(x, g, *args, **kwargs))
    ordinal = replace(RECIPE, ordinal=True)
    assert TaskRecipe.from_config({"name": "genant", "grade_names": ["G0", "G1", "G2", "G3"],
                                   "positive_min_grade": 2, "exclude_from_probe": [1], "ordinal": True}) == ordinal
    probe, _ = fit_recipe(ordinal, z, grades, C=1.0)
    assert seen == [[0, 2, 3]]
    rows = probe_table(ordinal, z, grades, z, grades, c=1.0)
    assert len(seen) == 1 + len({row["probe"] for row in rows})
    fit_recipe(RECIPE, z, grades, C=1.0)
    assert len(seen) == 1 + len({row["probe"] for row in rows})  # the binary recipe never calls it
    assert roc_auc_score(grades[grades != 1] >= 2, probe.distance(z[grades != 1])) > 0.9


def test_recipe_labels_come_from_the_named_column_with_type_codes_counted_as_present():
    """Several tasks on one set of images: each reads its own column; a finding coded by type (Modic 1-3) is
    'present' for a two-grade task; unknown (-1) stays unknown; no column means the set's own grades."""
    from DAECounterfactualResearch.datasets import TrainingSet
    from DAECounterfactualLib.errors import InputError

    data = TrainingSet(np.zeros((5, 1, 2, 2)), np.array([0, 1, 2, 3, 4]), np.full(5, "train"), np.arange(5).astype(str),
                       {"modic": np.array([0, 1, 2, 3, -1], dtype=np.int16)})
    modic = TaskRecipe(**{**RECIPE.__dict__, "grade_names": ("absent", "present"), "label_column": "modic"})
    np.testing.assert_array_equal(modic.labels(data), [0, 1, 1, 1, -1])
    np.testing.assert_array_equal(RECIPE.labels(data), [0, 1, 2, 3, 4])
    with pytest.raises(InputError, match="label_column 'site' is not a column"):
        TaskRecipe(**{**RECIPE.__dict__, "label_column": "site"}).labels(data)


def test_recipe_strata_come_from_the_named_training_set_column():
    from DAECounterfactualResearch.datasets import TrainingSet
    from DAECounterfactualLib.errors import InputError
    from DAECounterfactualResearch.task_fitting import fit_task

    z, grades = graded_latents(300, 0)
    grades[:5] = -1  # ungraded samples are dropped together with their strata
    origin = np.where(np.arange(300) % 3 == 0, "real", "phantom")
    data = TrainingSet(np.zeros((300, 1, 2, 2)), grades, np.full(300, "train"), np.arange(300).astype(str),
                       {"origin": origin})
    stratified = TaskRecipe(**{**RECIPE.__dict__, "probe_strata": "origin"})
    assert RECIPE.strata(data) is None
    np.testing.assert_array_equal(stratified.strata(data), origin)
    with pytest.raises(InputError, match="probe_strata 'site' is not a column"):
        TaskRecipe(**{**RECIPE.__dict__, "probe_strata": "site"}).strata(data)
    z_val, g_val = graded_latents(200, 1)
    spec = fit_task(stratified, z, grades, z_val, g_val, stratified.strata(data))
    assert spec.metrics["auc"] > 0.9 and spec.metrics["train_n"] == 295


def test_with_no_validation_split_c_and_metrics_come_from_folds_by_patient():
    from DAECounterfactualLib.errors import InputError
    from DAECounterfactualResearch.task_fitting import fit_task

    z, grades = graded_latents(300, 0)
    patients = np.repeat(["a", "b", "c"], 100)
    z[patients == "c", 1] += 5.0  # one patient sits elsewhere in a dimension that says nothing of the grade
    empty = np.zeros((0, 8))
    spec = fit_task(RECIPE, z, grades, empty, np.zeros(0, dtype=int), groups_train=patients)
    assert spec.metrics["split"] == "3-fold cross-validation by patient on the training split"
    assert spec.metrics["n"] == 300 and spec.metrics["auc"] > 0.9 and spec.metrics["C"] in RECIPE.c_grid
    full = fit_task(RECIPE, z, grades, z[:50], grades[:50])  # the final probe is fitted on every training latent
    np.testing.assert_allclose(spec.probe.distance(z), fit_task(
        TaskRecipe(**{**RECIPE.__dict__, "c_grid": (spec.metrics["C"],)}), z, grades, z[:50], grades[:50]
    ).probe.distance(z), atol=1e-9)
    assert full.metrics["split"] == "val"
    with pytest.raises(InputError, match="no validation images and no patient groups"):
        fit_task(RECIPE, z, grades, empty, np.zeros(0, dtype=int))


def test_confusion_matrix_rows_are_true_grades():
    assert confusion_matrix([0, 0, 1, 2], [0, 1, 1, 0], 3) == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


def test_probe_table_has_every_probe_and_calibration_and_auc_from_distances():
    z_train, g_train = graded_latents(300, 0)
    z_eval, g_eval = graded_latents(200, 1)
    g_eval[:3] = -1  # ungraded images are left out, not counted as G0
    rows = probe_table(RECIPE, z_train, g_train, z_eval, g_eval, c=1.0)
    assert [(r["probe"], r["calibration"]) for r in rows] == [
        (p, c) for p in ("svm", "logistic") for c in ("linear", "extremes", "poly3")]
    from DAECounterfactualResearch.probe_fitting import fit_probe

    use = g_train != 1
    probe = fit_probe(z_train[use], g_train[use] >= 2, kind="svm", C=1.0)
    known = g_eval >= 0
    expected = roc_auc_score(g_eval[known] >= 2, probe.distance(z_eval[known]))
    assert rows[0]["auc"] == pytest.approx(expected)
    assert rows[0]["n"] == known.sum() and np.sum(rows[0]["confusion"]) == known.sum()
    assert 0.5 < rows[0]["macro_f1"] <= 1 and rows[0]["mae"] < 0.6
    assert all(r["auc"] > 0.9 for r in rows)


def test_frechet_distance_is_zero_for_one_set_and_grows_with_the_mean_shift():
    a = np.random.default_rng(0).normal(size=(400, 3))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-8)
    assert frechet_distance(a, a + [2.0, 0, 0]) == pytest.approx(4.0, rel=1e-6)


def body_patch(size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A CT-like patch in model units: a bright rectangular body on soft tissue."""
    image = np.full((size, size), -0.2, np.float32)
    body = np.zeros((size, size), bool)
    body[14:34, 12:36] = True
    image[body] = 0.4
    return image, body


def test_body_measure_grades_an_intact_and_a_simulated_wedge_fracture():
    image, body = body_patch()
    measure = BodyMeasure(threshold=0.1, spacing_mm=1.5)
    assert measure.grade(image[None]) == 0
    fracture = simulate_fracture(image, body, 0.45, "wedge", 1.5)
    assert measure.grade(fracture.image[None]) == 3
    assert measure.grade(np.full((1, 48, 48), -1.0, np.float32)) is None  # nothing to measure


def test_upsampled_ruler_measures_simulated_fractures_closer_to_their_height_loss():
    image, body = body_patch()
    fractures = [simulate_fracture(image, body, loss, kind, 1.5)
                 for loss in (0.21, 0.23, 0.27, 0.3, 0.35, 0.38, 0.42) for kind in ("wedge", "biconcave")]
    requested = np.repeat([0.21, 0.23, 0.27, 0.3, 0.35, 0.38, 0.42], 2)

    def error(upsample):
        measure = BodyMeasure(threshold=0.1, spacing_mm=1.5, upsample=upsample)
        return np.mean(np.abs([measure.height_loss(f.image[None]) for f in fractures] - requested))

    assert error(4) < 0.8 * error(1)
    assert BodyMeasure(0.1, 1.5).mask(image[None]).shape == image.shape  # proximity needs the patch's grid


def test_ruler_agreement_is_the_share_of_labelled_images_measured_at_their_grade():
    image, body = body_patch()
    wedge = simulate_fracture(image, body, 0.45, "wedge", 1.5).image
    blank = np.full_like(image, -1.0)
    images = np.stack([image, wedge, wedge, blank])[:, None]
    ruler = ruler_agreement(BodyMeasure(threshold=0.1, spacing_mm=1.5), images, np.array([0, 3, 2, 1]),
                            np.array(["", "wedge", "crush", "wedge"]))
    assert ruler["agreement_by_kind"] == {"crush": 0.0, "wedge": 1.0}  # the unmeasured image is left out
    assert ruler["n"] == 4 and ruler["measured"] == 3
    assert ruler["agreement"] == pytest.approx(2 / 3) and ruler["agreement_within_one"] == 1.0
    assert ruler["agreement_by_grade"][0] == 1.0 and ruler["agreement_by_grade"][2:] == [0.0, 1.0]
    assert np.isnan(ruler["agreement_by_grade"][1])  # its only image could not be measured
    assert ruler["agreement_grade_balanced"] == pytest.approx(2 / 3)
    assert ruler["mean_loss_by_grade"][0] == pytest.approx(0, abs=0.02) and np.isnan(ruler["mean_loss_by_grade"][1])
    assert ruler["mean_loss_by_grade"][2] == ruler["mean_loss_by_grade"][3] == pytest.approx(0.45, abs=0.03)


def test_reference_ruler_sees_a_crush_fracture_that_the_genant_ratio_misses():
    image, body = body_patch()
    measure = BodyMeasure(threshold=0.1, spacing_mm=1.5)
    crushed = measure.heights(simulate_fracture(image, body, 0.3, "crush", 1.5).image[None])
    intact = measure.heights(image[None])
    assert crushed.height_loss == pytest.approx(0, abs=0.05)  # all three heights fell alike
    assert reference_height_loss(crushed, intact) == pytest.approx(0.3, abs=0.05)
    assert reference_height_loss(intact, intact) == pytest.approx(0, abs=0.02)


def test_proximity_separates_change_inside_and_outside_the_body():
    image, body = body_patch()
    changed = image.copy()
    changed[body] += 0.5
    inside_only = proximity(changed[None], image[None], body, dilate_px=0)
    assert inside_only["inside"] == pytest.approx(0.5) and inside_only["outside"] == 0
    everywhere = proximity(image[None] + 0.1, image[None], body)
    assert everywhere["inside"] == pytest.approx(0.1) and everywhere["outside"] == pytest.approx(0.1)


def test_summary_counts_hits_misses_and_measured_grades():
    cases = [{"cf_grades": [0, 1, 2, 3], "reflection_flipped": True, "cf_measured_grades": [0, 1, None, 3],
              "cf_measured_losses": [0.0, 0.22, None, 0.5], "proximity": [{"inside": 0.2, "outside": 0.0}] * 4,
              "cf_reference_grades": [0, 2, 2, None], "cf_out_of_distribution": [False, False, False, True]},
             {"cf_grades": [0, 0, 3, 3], "reflection_flipped": False, "cf_measured_grades": [1, 1, 0, 2],
              "cf_out_of_distribution": [False, False, True, True],
              "cf_measured_losses": [0.2, 0.24, 0.1, 0.3], "proximity": [{"inside": 0.4, "outside": 0.1}] * 4}]
    s = summarise_counterfactuals(cases, 4)
    assert s["validity"] == pytest.approx(6 / 8) and s["validity_within_one"] == 1.0
    assert s["mean_abs_grade_error"] == pytest.approx(2 / 8)
    assert s["validity_by_target"] == [1.0, 0.5, 0.5, 1.0]
    assert s["reflection_validity"] == 0.5
    assert s["out_of_distribution"] == 3 / 8 and s["out_of_distribution_by_target"] == [0, 0, 0.5, 1]
    assert "out_of_distribution" not in summarise_counterfactuals([{k: v for k, v in c.items()
                                                                    if k != "cf_out_of_distribution"}
                                                                   for c in cases], 4)
    assert s["faithfulness_measured"] == 7 and s["faithfulness"] == pytest.approx(4 / 7)
    assert s["faithfulness_within_one"] == pytest.approx(6 / 7)  # G2 measured as G0 is two grades off
    assert s["measured_loss_by_target"] == pytest.approx([0.1, 0.23, 0.1, 0.4])
    assert s["change_inside_body"] == pytest.approx(0.3) and s["change_outside_body"] == pytest.approx(0.05)
    assert s["faithfulness_from_intact_cases"] == 1  # only the first case's input was intact
    assert s["faithfulness_from_intact"] == pytest.approx(2 / 3)
    assert s["faithfulness_from_intact_by_target"][:3] == [1.0, 0.0, 1.0]


@pytest.mark.slow
def test_counterfactual_checks_regrade_real_explanations(overfit_dae, blob_bundle):
    explainer = Explainer(load_bundle(blob_bundle))
    images = overfit_dae[1].numpy()[:2]
    checks = counterfactual_checks(explainer, images, np.array([1, 3]), "size", "reference")
    assert checks["n_cases"] == 2 and len(checks["cases"]) == 2
    case = checks["cases"][0]
    explanation = explainer.explain(images[0], "size", preset="reference", sweep_count=0)
    regraded = explainer.grade(explanation.counterfactuals, "size")
    assert case["cf_grades"] == regraded.grade.tolist()  # the stored grades are those of re-encoded images
    assert case["cf_out_of_distribution"] == regraded.ood.tolist()  # ... and so are their OOD flags
    assert len(case["cf_grain"]) == 4 and len(checks["grain_by_target"]) == 4 and checks["grain"] > 0
    assert len(checks["out_of_distribution_by_target"]) == 4
    assert 0 <= checks["validity"] <= 1 and checks["reconstruction"]["mse"] < 5e-3
    assert set(checks["latents"]) == {0, 1, 2, 3} and checks["latents"][0].shape == (2, 32)


@pytest.mark.slow
def test_reconstruction_by_preset_reconstructs_like_an_explanation_with_each_preset(overfit_dae, blob_bundle):
    explainer = Explainer(load_bundle(blob_bundle))
    images = overfit_dae[1].numpy()[:2]
    by_preset = reconstruction_by_preset(explainer, images)
    assert set(by_preset) == set(explainer.config.presets)
    for name, result in by_preset.items():
        explanation = explainer.explain(images[1], "size", preset=name, sweep_count=0)
        own = np.mean((explanation.reconstruction - images[1]) ** 2)
        first = np.mean((explainer.explain(images[0], "size", preset=name, sweep_count=0).reconstruction
                         - images[0]) ** 2)
        assert result["mse"] == pytest.approx((own + first) / 2, rel=1e-4)  # the same encode-invert-decode path
        assert result["steps"] == vars(explainer.preset(name)) and result["seconds_per_image"] > 0
        assert np.isfinite(result["psnr"]) and 0 < result["ssim"] <= 1
    assert by_preset["reference"]["mse"] < 5e-3  # the overfitted model reconstructs with enough steps


def test_baseline_trains_and_scores_from_probabilities():
    from DAECounterfactualResearch.baseline import BaselineConfig, fit_size, scores_and_grades, train_baseline

    assert fit_size(torch.zeros(2, 3, 28, 28)).shape == (2, 3, 32, 32)
    assert fit_size(torch.zeros(2, 1, 64, 64)).shape == (2, 1, 64, 64)
    probabilities = np.array([[0.5, 0.2, 0.3], [0.1, 0.1, 0.8]])
    score, grade = scores_and_grades(probabilities, 1)
    np.testing.assert_allclose(score, [0.5, 0.9])
    assert grade.tolist() == [0, 2]
    rng = np.random.default_rng(0)
    grades = np.tile([0, 1, 2], 4)
    images = (rng.normal(size=(12, 1, 32, 32)) * 0.1 + grades[:, None, None, None] * 0.5 - 0.5).astype(np.float32)
    result = train_baseline(images, grades, images, grades, 3, 1, BaselineConfig(epochs=2, batch_size=6),
                            progress=False)
    assert 1 <= result.best_epoch <= 2 and len(result.history) == 2
    assert {"auc", "mae", "macro_f1"} <= set(result.history[0])


def test_the_cross_validated_comparison_holds_out_whole_patients_and_scores_their_plain_patches():
    from types import SimpleNamespace

    from DAECounterfactualResearch.baseline_cv import cross_validated_comparison
    from DAECounterfactualResearch.datasets import TrainingSet

    rng = np.random.default_rng(0)
    patients = np.repeat([f"p{k}" for k in range(6)], 16)  # 8 discs x (plain + 1 augmented copy) per patient
    grades = np.tile(np.repeat([0, 1, 2, 3, 0, 1, 2, 3], 2), 6)
    augmentation = np.tile([0, 1], 48)
    images = (rng.normal(size=(96, 1, 32, 32)) * 0.1 + grades[:, None, None, None] * 0.4 - 0.6).astype(np.float32)
    train = TrainingSet(images, grades, np.full(96, "train"), patients, {"augmentation": augmentation})
    encoded = []
    explainer = SimpleNamespace(config=SimpleNamespace(model=SimpleNamespace(z_dim=3)),
                                encode=lambda x: encoded.append(len(x)) or np.stack(
                                    [x.mean(axis=(1, 2, 3)), x.std(axis=(1, 2, 3)), x[:, 0, 0, 0]], axis=1))
    spec = SimpleNamespace(grade_names=("G0", "G1", "G2", "G3"), metrics={"C": 1.0})
    recipes = {"all": RECIPE, "one direction": replace(RECIPE, probe_components=1)}
    report = cross_validated_comparison(explainer, spec, recipes, train, augmentations=0, folds=3, epochs=1)
    assert encoded == [48]  # the plain patches only: augmentation index 0
    assert report["held_out_discs"] == 48 and report["patients"] == 6 and report["negatives"] == 24
    assert set(report["dae"]) == set(report["dae_minus_densenet121"]) == set(recipes)
    assert report["dae"]["all"]["auc"] > 0.9 and report["dae"]["all"]["n"] == report["densenet121"]["n"] == 48
    assert set(report["dae_minus_densenet121"]["all"]) == {"auc", "mae", "macro_f1"}
    assert len(report["densenet_epochs_kept"]) == 3
    held = report["out_of_fold"]  # enough to compare another probe later without the DenseNet121
    assert sorted(held["row"]) == list(np.flatnonzero(augmentation == 0))
    assert set(held["patient"]) == set(patients) and held["grade"] == grades[held["row"]].tolist()
    assert len(held["densenet121"]["score"]) == len(held["dae"]["all"]["grade"]) == 48
    assert held["dae"]["one direction"]["score"] != held["dae"]["all"]["score"]  # each recipe fitted as it says

    # another probe later, beside the same DenseNet121 without training it again; other held-out discs refused
    again = cross_validated_comparison(explainer, spec, {"ordinal": replace(RECIPE, ordinal=True)}, train,
                                       augmentations=0, folds=3, epochs=1, C=0.5, earlier=report)
    assert again["densenet121"] == report["densenet121"]
    assert again["out_of_fold"]["densenet121"] == held["densenet121"]
    assert again["densenet_epochs_kept"] == report["densenet_epochs_kept"]
    assert again["out_of_fold"]["dae"]["ordinal"]["score"] != held["dae"]["all"]["score"]
    from DAECounterfactualLib.errors import InputError
    with pytest.raises(InputError, match="scored on other held-out discs"):
        cross_validated_comparison(explainer, spec, recipes, train, augmentations=0, folds=2, epochs=1, earlier=report)


def test_report_states_targets_and_paper_numbers(tmp_path):
    from DAECounterfactualResearch.report import write_results_markdown

    row = {"probe": "svm", "calibration": "linear", "auc": 0.95, "mae": 0.4, "macro_f1": 0.5, "accuracy": 0.6}
    cf = {"n_cases": 4, "preset": "fast", "validity": 0.5, "validity_within_one": 1.0, "mean_abs_grade_error": 0.5,
          "validity_by_target": [1, 0, 0, 1], "reflection_validity": 1.0,
          "reconstruction": {"mse": 0.001, "psnr": 36.0, "ssim": 0.95}, "frechet_zsem": {"0": 1.5}}
    results = {"bundle": "vcf-ct@x", "split": "test", "n_eval": 10,
               "tasks": {"genant": {"rows": [row], "counterfactuals": cf, "shipped": {"probe": "svm",
                                                                                       "calibration": "linear"}}}}
    (tmp_path / "results" / "vcf-ct").mkdir(parents=True)
    (tmp_path / "results" / "vcf-ct" / "results.json").write_text(json.dumps(results))
    text = write_results_markdown(tmp_path / "results", tmp_path / "RESULTS.md", preface="# R").read_text(encoding="utf-8")
    assert "| DAE (ours) | svm | linear | 0.950 |" in text
    assert "| auc | >= 0.93 | 0.950 | – | met |" in text  # results from before intervals were recorded
    assert "| macro_f1 | >= 0.59 | 0.500 | – | not met (missed by 0.090) |" in text
    assert "| validity | >= 0.9 | 0.500 | – | not met (missed by 0.400) |" in text
    assert "bootstrap" not in text and "95 % interval of the shipped probe" not in text
    assert "DenseNet121 (paper" in text and "results/vcf-ct/genant_roc.png" in text
    assert "ceiling of faithfulness" not in text  # a results file without faithfulness gets no ruler rows
    assert "edit gain" not in text and "OOD threshold" not in text  # results from before they were recorded


def test_report_puts_faithfulness_next_to_the_rulers_agreement_on_real_images():
    from DAECounterfactualResearch.report import task_section

    cf = {"n_cases": 4, "preset": "fast", "validity": 0.5, "validity_within_one": 1.0, "mean_abs_grade_error": 0.5,
          "validity_by_target": [1, 0, 0, 1], "reflection_validity": 1.0, "edit_gain": 2.668,
          "out_of_distribution": 0.25, "out_of_distribution_by_target": [0.0, 0.0, 0.0, 1.0],
          "reconstruction": {"mse": 0.001, "psnr": 36.0, "ssim": 0.95},
          "faithfulness": 0.4, "faithfulness_measured": 16, "faithfulness_by_target": [1, 0.2, 0.2, 0.2],
          "faithfulness_within_one": 0.7, "measured_loss_by_target": [0.0, 0.1, 0.15, 0.2],
          "change_inside_body": 0.05, "change_outside_body": 0.03,
          "faithfulness_from_intact": 0.5, "faithfulness_from_intact_cases": 1,
          "faithfulness_from_intact_by_target": [1.0, 0.0, 1.0, 0.0],
          "ruler": {"n": 9, "agreement_by_grade": [1.0, 0.2, 0.3, 0.4], "agreement_grade_balanced": 0.475,
                    "agreement_within_one": 0.85, "mean_loss_by_grade": [0.0, 0.15, 0.25, 0.3],
                    "agreement_by_kind": {"crush": 0.0, "wedge": 0.35}}}
    entry = {"rows": [{"probe": "svm", "calibration": "linear", "auc": 0.9, "mae": 0.5, "macro_f1": 0.5,
                       "accuracy": 0.5}], "counterfactuals": cf, "shipped": {"probe": "svm", "calibration": "linear"}}
    reconstruction = {name: {"mse": mse, "psnr": psnr, "ssim": 0.99, "seconds_per_image": s,
                             "steps": {"invert": n, "decode": n, "refine": 0}}
                      for name, mse, psnr, s, n in [("fast", 2.4e-5, 52.2, 1.5, 8), ("reference", 1.6e-4, 44.0, 12.0, 250)]}
    results = {"bundle": "b", "split": "test", "n_eval": 9, "reconstruction_by_preset": reconstruction,
               "reconstruction_cases": [0, 3]}
    text = "\n".join(task_section(Path("vcf-ct"), "r", results, "genant", entry))
    assert "| faithfulness within one grade | 0.700 |" in text
    assert "by target grade | 0.000, 0.100, 0.150, 0.200 |" in text
    assert "of the labelled held-out images, by grade | 0.000, 0.150, 0.250, 0.300 |" in text
    assert "9 labelled held-out images: measured grade = label, by grade (the ceiling of faithfulness) | " \
           "1.000, 0.200, 0.300, 0.400 |" in text
    assert "| 0.475 / 0.850 |" in text
    assert "by fracture kind | crush 0.000, wedge 0.350 |" in text
    assert "faithfulness of the 1 intact inputs' counterfactuals" in text and "| 1.000, 0.000, 1.000, 0.000 |" in text
    assert "Reconstruction (encode, DDIM inversion, decode) of 2 held-out images" in text
    assert "| fast | 8×1/8 | 2.40e-05 | 52.2 | 0.9900 | 1.5 |" in text
    assert "| reference | 250×1/250 | 1.60e-04 | 44.0 | 0.9900 | 12.0 |" in text
    assert "| reconstruction MSE / PSNR / SSIM | 1.00e-03 / 36.000 / 0.950 |" in text
    assert "| edit gain (fitted on validation images) | 2.67 |" in text
    assert "beyond the bundle's OOD threshold (unlike the training images): all, by target grade | 0.250: 0.000, " \
           "0.000, 0.000, 1.000 |" in text


def test_edit_gain_is_fitted_from_the_re_encoding_response(overfit_dae, blob_bundle):
    from DAECounterfactualResearch.task_fitting import (MIN_RESPONSE_CORRELATION, MIN_RESPONSE_SLOPE, edit_response,
                                                        fit_edit_gain)

    explainer = Explainer(load_bundle(blob_bundle))
    spec = explainer.bundle.task("size")
    images = overfit_dae[1].numpy()[:2]
    requested, achieved = edit_response(explainer, images, spec, "fast")
    assert requested.shape == achieved.shape == (2 * len(spec.grade_names),)
    slope = float(requested @ achieved / (requested @ requested))
    correlation = float(np.corrcoef(requested, achieved)[0, 1])
    gain, record = fit_edit_gain(explainer, images, spec, "fast", rounds=1)
    assert record["rounds"][0]["response_slope"] == pytest.approx(slope)
    if slope >= MIN_RESPONSE_SLOPE and correlation >= MIN_RESPONSE_CORRELATION:
        assert gain == pytest.approx(float(np.clip(1.0 / slope, 1.0, 50.0))) and "no_response" not in record
    else:  # a direction the decoder ignores gets no gain
        assert gain == 1.0 and record["no_response"]


def test_latent_geometry_finds_a_probe_along_a_faint_direction():
    """Latents on a 2-d plane of 64 dimensions plus faint noise: effective rank 2; a probe along the plane sees
    tens of times an average direction's variance, one across it almost none (the vcf-ct failure)."""
    from DAECounterfactualResearch.evaluation import latent_geometry
    from DAECounterfactualLib.model.probe import LinearProbe

    rng = np.random.default_rng(0)
    plane = np.linalg.qr(rng.normal(size=(64, 2)))[0]
    z = rng.normal(size=(2000, 2)) @ plane.T * 3.0 + 0.01 * rng.normal(size=(2000, 64))
    mean, scale = z.mean(0), z.std(0)
    u = (z - mean) / scale
    directions = np.linalg.svd(u - u.mean(0), full_matrices=False)[2]
    top, across = directions[0], directions[2]  # the plane's main axis; one orthogonal to the plane
    along = latent_geometry(LinearProbe(normal=top, bias=0.0, mean=mean, scale=scale), z)
    faint = latent_geometry(LinearProbe(normal=across, bias=0.0, mean=mean, scale=scale), z)
    assert 1.8 < along["effective_rank"] < 2.2 and along["components_for_99pct"] == 2
    assert along["direction_variance"] > 20 and faint["direction_variance"] < 0.05


def test_a_baseline_is_reused_only_for_the_same_data_content(tmp_path):
    from DAECounterfactualResearch.evaluation import previous_baseline

    earlier = {"data": "dataset.npz", "data_sha256": "a" * 64, "split": "test",
               "tasks": {"genant": {"baseline": {"auc": 0.99}}}}
    (tmp_path / "results.json").write_text(json.dumps(earlier))
    same = {"data": "dataset.npz", "data_sha256": "a" * 64, "split": "test"}
    assert previous_baseline(tmp_path, same, "genant") == {"auc": 0.99}
    rebuilt = {**same, "data_sha256": "b" * 64}  # same file name, other content: its baseline does not apply
    assert previous_baseline(tmp_path, rebuilt, "genant") is None
    assert previous_baseline(tmp_path, {**same, "split": "val"}, "genant") is None


@pytest.mark.slow
def test_plots_replace_the_strips_of_an_earlier_run(overfit_dae, blob_bundle, tmp_path):
    """The report links every strip in the folder, so a strip left by an earlier run (another bundle's failure
    case) would be shown as this one's."""
    from DAECounterfactualResearch.datasets import TrainingSet
    from DAECounterfactualResearch.evaluation import roc_curve_points
    from DAECounterfactualResearch.report import write_plots

    explainer = Explainer(load_bundle(blob_bundle))
    spec = explainer.bundle.task("size")
    images = np.concatenate([overfit_dae[1].numpy()] * 2)
    grades = np.tile([1, 3, 0, 2], 2)
    data = TrainingSet(images, grades, np.full(8, "test"), np.arange(8).astype(str))
    picks = np.arange(2)
    checks = counterfactual_checks(explainer, images[picks], grades[picks], "size", "fast")
    explanations = checks.pop("explanations")
    assert len(explanations) == len(picks)
    distance = spec.probe.distance(explainer.encode(images))
    entry = {"grade_names": list(spec.grade_names), "counterfactuals": {**checks, "preset": "fast"},
             "shipped": {"probe": "svm", "calibration": "linear", "roc": roc_curve_points(distance, grades >= 2),
                         "distance": distance.tolist(), "grades": grades.tolist(),
                         "calibration_coefficients": list(spec.calibration.coefficients)}}
    (tmp_path / "size_strip_099.png").write_bytes(b"an earlier run's strip")
    write_plots(tmp_path, "size", entry, explainer.encode(images), data, explanations, picks, grades)
    strips = sorted(p.name for p in tmp_path.glob("size_strip_*.png"))
    assert strips == [f"size_strip_{k:03d}.png" for k in (0, 1)]
    assert (tmp_path / "size_roc.png").exists() and (tmp_path / "size_tsne.png").exists()


def test_report_gives_each_target_its_interval_and_names_a_goal_inside_it():
    from DAECounterfactualResearch.report import task_section

    cf = {"n_cases": 4, "preset": "fast", "validity": 0.76, "validity_within_one": 1.0, "mean_abs_grade_error": 0.5,
          "validity_by_target": [1, 0, 0, 1], "reflection_validity": 1.0, "intervals": {"validity": [0.7, 0.82]},
          "reconstruction": {"mse": 0.001, "psnr": 36.0, "ssim": 0.95}}
    shipped = {"probe": "svm", "calibration": "linear", "intervals": {"auc": [0.9, 0.94], "macro_f1": [0.45, 0.6]}}
    baseline = {"best_epoch": 3, "auc": 0.95, "mae": 0.4, "macro_f1": 0.6, "accuracy": 0.6, "train_seconds": 60,
                "difference_intervals": {"auc": [-0.07, 0.01], "mae": [-0.02, 0.2], "macro_f1": [-0.1, -0.02]}}
    entry = {"rows": [{"probe": "svm", "calibration": "linear", "auc": 0.921, "mae": 0.5, "macro_f1": 0.526,
                       "accuracy": 0.5}], "counterfactuals": cf, "shipped": shipped, "baseline": baseline}
    results = {"bundle": "b", "split": "test", "n_eval": 1260, "n_eval_cases": 60}
    text = "\n".join(task_section(Path("vcf-ct"), "r", results, "genant", entry))
    assert "| auc | >= 0.93 | 0.921 | 0.900 to 0.940 | not met (missed by 0.009); the goal lies inside the interval |" \
        in text
    assert "| macro_f1 | >= 0.59 | 0.526 | 0.450 to 0.600 | not met (missed by 0.064); the goal lies inside" in text
    assert "| validity | >= 0.9 | 0.760 | 0.700 to 0.820 | not met (missed by 0.140) |" in text
    assert "bootstrap over 1000 resamples of whole cases (grading: the 60 held-out cases" in text
    assert "| 95 % interval of the shipped probe (bootstrap over cases) | svm | linear | 0.900 to 0.940 | – | " \
           "0.450 to 0.600 | – |" in text
    assert "| validity: re-encoded grade = target grade | 0.760 (95 % interval 0.700 to 0.820) |" in text
    assert "| shipped DAE minus DenseNet121: 95 % interval of the difference (paired bootstrap over cases) | | | " \
           "-0.070 to 0.010 | -0.020 to 0.200 | -0.100 to -0.020 | |" in text
    assert "| binary reflection crosses the hyperplane | 1.000 |" in text  # no interval stored for it here


def test_bootstrap_resamples_whole_cases_and_widens_intervals_for_correlated_samples():
    from DAECounterfactualResearch.bootstrap import bootstrap_intervals, case_resamples

    groups = np.repeat(np.arange(10), 5)  # ten cases of five samples
    for indices in case_resamples(groups, 20, seed=1):
        drawn = groups[indices]
        assert len(indices) == 50 and all(np.sum(drawn == g) % 5 == 0 for g in np.unique(drawn))
    values = np.repeat(np.random.default_rng(0).normal(size=10), 5)  # samples of a case are copies of each other

    def mean(i):
        return {"mean": values[i].mean(), "undefined": np.nan if i[0] == 0 else 1.0}

    by_case = bootstrap_intervals(mean, groups, n_resamples=500)
    by_sample = bootstrap_intervals(mean, np.arange(50), n_resamples=500)
    assert by_case["mean"][0] < values.mean() < by_case["mean"][1]
    width = lambda interval: interval[1] - interval[0]  # noqa: E731
    assert width(by_case["mean"]) > 1.7 * width(by_sample["mean"])  # about sqrt(5) wider: 10 cases, not 50 samples
    assert by_case["undefined"] == [1.0, 1.0]  # resamples where a figure is undefined are left out of its interval


def test_grading_and_counterfactual_intervals_bracket_their_figures():
    from DAECounterfactualResearch.evaluation import counterfactual_intervals, grading_intervals, summarise_counterfactuals

    rng = np.random.default_rng(0)
    grades = rng.integers(0, 4, 200)
    distance = grades + rng.normal(scale=0.8, size=200)
    predicted = np.clip(np.round(distance), 0, 3).astype(int)
    intervals = grading_intervals(distance, predicted, grades, 2, np.arange(200) // 4)
    assert set(intervals) == {"auc", "mae", "macro_f1", "accuracy"}
    figures = grading_metrics(distance, predicted, grades, 2)
    assert all(intervals[k][0] <= figures[k] <= intervals[k][1] for k in intervals)
    cases = [{"cf_grades": [0, 1, 2, 3] if k % 3 else [0, 0, 2, 2], "reflection_flipped": bool(k % 2)}
             for k in range(30)]
    cf = counterfactual_intervals(cases, 4, np.arange(30))
    summary = summarise_counterfactuals(cases, 4)
    assert set(cf) == {"validity", "reflection_validity"}
    assert cf["validity"][0] < summary["validity"] < cf["validity"][1] < 1


def test_paired_difference_intervals_are_narrower_than_either_model_alone():
    from DAECounterfactualResearch.evaluation import difference_intervals, grading_intervals

    rng = np.random.default_rng(1)
    grades = rng.integers(0, 3, 300)
    shared = rng.normal(scale=0.7, size=300)  # both models miss the same hard cases
    ours = grades + shared + rng.normal(scale=0.1, size=300)
    theirs = grades + shared + rng.normal(scale=0.1, size=300) + 0.05
    to_grade = lambda d: np.clip(np.round(d), 0, 2).astype(int)  # noqa: E731
    groups = np.arange(300)
    diff = difference_intervals((ours, to_grade(ours)), (theirs, to_grade(theirs)), grades, 1, groups)
    alone = grading_intervals(ours, to_grade(ours), grades, 1, groups)
    assert set(diff) == {"auc", "mae", "macro_f1"}
    a = grading_metrics(ours, to_grade(ours), grades, 1)
    b = grading_metrics(theirs, to_grade(theirs), grades, 1)
    assert all(diff[k][0] <= a[k] - b[k] <= diff[k][1] for k in diff)
    assert diff["auc"][1] - diff["auc"][0] < 0.5 * (alone["auc"][1] - alone["auc"][0])


def test_cases_are_spread_over_every_grade_and_over_each_grades_whole_range():
    from DAECounterfactualResearch.evaluation import spread

    grades = np.repeat([0, 1, 2, 3], [100, 100, 100, 5])  # ordered as a set cut source by source would be
    picked = spread(40, grades)
    assert len(picked) == 40 and len(set(picked)) == 40
    assert [int(np.sum(grades[picked] == g)) for g in range(4)] == [12, 12, 11, 5]  # a grade out of cases drops out
    for g in range(3):  # from the first case of the grade to its last, not from its start only
        mine = picked[grades[picked] == g]
        assert mine.min() == 100 * g and mine.max() == 100 * g + 99
    assert len(spread(1000, grades)) == len(grades) and len(spread(0, grades)) == 0
