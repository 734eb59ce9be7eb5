"""A task's acceptance on real patients, kept in the task (``RealDataCheck``): a task that missed a target gives
every grade a caution, wherever the grade is read; a task that meets them, or was never measured, gives none."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from DAECounterfactualLib.bundle.real_data import RealDataCheck
from DAECounterfactualLib.bundle.store import load_bundle, set_real_data
from DAECounterfactualLib.errors import BundleError
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualLib.inference.scores import SCORE_COLUMNS, grade_row, read_scores_csv, write_scores_csv
from bundle_fixtures import rewrite_bundle_file

TARGETS = {"healthy_g0": 0.90, "fracture_auc": 0.95, "within_one_grade": 0.90}
FAILED = RealDataCheck("24 healthy vertebrae of 5 real CT series", {"healthy_g0": 0.0, "fracture_auc": 0.47,
                                                                     "within_one_grade": 0.92}, TARGETS, "cmd")
PASSED = RealDataCheck("243 healthy vertebrae of 50 volunteers", {"healthy_g0": 0.95, "fracture_auc": 0.99,
                                                                   "within_one_grade": 0.92}, TARGETS, "cmd")


def test_the_caution_names_the_figures_missed_and_only_those():
    assert FAILED.missed == ("healthy_g0", "fracture_auc") and not FAILED.met
    assert "healthy vertebrae graded G0 0.00 (target 0.90)" in FAILED.caution
    assert "AUC) 0.47 (target 0.95)" in FAILED.caution and "within one grade" not in FAILED.caution
    assert "24 healthy vertebrae of 5 real CT series" in FAILED.caution
    assert PASSED.met and PASSED.caution == ""
    assert RealDataCheck.from_dict(FAILED.to_dict()) == FAILED


def test_a_record_names_known_figures_with_a_target_each():
    with pytest.raises(ValueError, match="figures"):
        RealDataCheck("x", {"accuracy": 0.9}, {"accuracy": 0.9})
    with pytest.raises(ValueError, match="targets"):
        RealDataCheck("x", {"healthy_g0": 0.9}, {})


@pytest.fixture()
def recorded(blob_bundle, tmp_path):
    path = tmp_path / "bundle"
    shutil.copytree(blob_bundle, path)
    return path


def test_every_grade_of_a_task_that_failed_on_real_patients_carries_the_caution(recorded, overfit_dae, tmp_path):
    images = overfit_dae[1].numpy()
    before = load_bundle(recorded)
    assert before.task("size").caution == ""
    set_real_data(recorded, "size", FAILED)
    bundle = load_bundle(recorded)
    assert bundle.bundle_id != before.bundle_id  # the manifest covers the record
    assert bundle.task("size").real_data == FAILED and bundle.task("size").caution == FAILED.caution
    explainer = Explainer(bundle)
    grades = explainer.grade(images, "size")
    assert grades.caution == FAILED.caution
    rows = [{"id": n, **grade_row(grades, n, bundle.task("size").grade_names)} for n in range(len(images))]
    assert all(row["caution"] == FAILED.caution for row in rows) and not any(row["ood"] for row in rows)
    read = read_scores_csv(write_scores_csv(rows, tmp_path / "scores.csv"))
    assert list(read[0]) == list(SCORE_COLUMNS) and read[0]["caution"] == FAILED.caution
    explanation = explainer.explain(images[1], "size", preset="fast", sweep_count=0)
    assert explanation.grades.caution == FAILED.caution
    np.testing.assert_array_equal(grades.grade, Explainer(before).grade(images, "size").grade)  # grades unchanged

    set_real_data(recorded, "size", PASSED)  # a task that meets the targets loses the caution
    assert Explainer(load_bundle(recorded)).grade(images, "size").caution == ""
    set_real_data(recorded, "size", None)
    assert load_bundle(recorded).task("size").real_data is None


def test_a_record_with_an_unknown_figure_is_refused_when_the_bundle_loads(recorded):
    import json

    set_real_data(recorded, "size", FAILED)
    task_file = recorded / "tasks" / "size.json"
    data = json.loads(task_file.read_text())
    data["real_data"]["figures"]["accuracy"] = 0.5
    data["real_data"]["targets"]["accuracy"] = 0.9
    rewrite_bundle_file(recorded, "tasks/size.json", data)  # as if written so: the record itself is refused
    with pytest.raises(BundleError, match="real_data.figures"):
        load_bundle(recorded)


def test_verify_says_how_each_task_did_on_real_patients(recorded, capsys):
    from DAECounterfactualLib.cli.commands import main

    assert main(["verify", str(recorded)]) == 0
    assert "real patients" not in capsys.readouterr().out  # never measured: says nothing either way
    set_real_data(recorded, "size", FAILED)
    assert main(["verify", str(recorded)]) == 0
    assert f"    {FAILED.caution}" in capsys.readouterr().out.splitlines()
    set_real_data(recorded, "size", PASSED)
    assert main(["verify", str(recorded)]) == 0
    assert ("    valid on real patients: every target met on 243 healthy vertebrae of 50 volunteers"
            in capsys.readouterr().out)
