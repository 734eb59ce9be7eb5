"""Changing a bundle's step presets: fit_edit_gain.py --with-presets stores them and fits the gain with them, and
scripts/studies/preset_validity.py compares the counterfactuals of candidate presets."""

import shutil

import pytest

from bundle_fixtures import GRADE_NAMES, tiny_ct_experiment
from DAECounterfactualLib.bundle.spec import StepPreset
from DAECounterfactualLib.bundle.store import load_bundle

TASK = {"name": "genant", "grade_names": list(GRADE_NAMES), "positive_min_grade": 2}
FAST = {"invert": 4, "decode": 4, "refine": 6, "refine_tol": 0.01, "spacing": "quadratic", "anderson": 2}


def test_the_experiments_presets_are_stored_and_the_gain_fitted_with_them(ct_bundle_path, tmp_path, script_main):
    bundle = shutil.copytree(ct_bundle_path, tmp_path / "bundle")
    before = load_bundle(bundle)
    config = tiny_ct_experiment(tmp_path, [TASK], presets={"fast": FAST, "standard": {"invert": 5, "decode": 5}})
    assert script_main("fit_edit_gain")([str(config), "--data-root", str(tmp_path), "--bundle", str(bundle),
                                        "--images", "2", "--with-presets"]) == 0
    after = load_bundle(bundle)
    assert after.config.presets == {"fast": StepPreset(**FAST), "standard": StepPreset(5, 5)}
    assert "fast 4×≤7/4 quadratic tol 0.01 AA2, standard 5×1/5" in after.model_card
    record = after.task("genant").metrics["edit_gain_fit"]
    assert record["preset"] == "fast" and record["images"] == 2
    assert after.latent_stats.mean.tolist() == before.latent_stats.mean.tolist()


def test_a_config_without_presets_is_refused_and_stores_nothing(ct_bundle_path, tmp_path, script_main, capsys):
    bundle = shutil.copytree(ct_bundle_path, tmp_path / "bundle")
    before = load_bundle(bundle).bundle_id
    config = tiny_ct_experiment(tmp_path, [TASK])
    with pytest.raises(SystemExit):
        script_main("fit_edit_gain")([str(config), "--data-root", str(tmp_path), "--bundle", str(bundle),
                                      "--with-presets"])
    assert "names no presets" in capsys.readouterr().err
    assert load_bundle(bundle).bundle_id == before


def test_preset_validity_prints_a_row_per_candidate(ct_bundle_path, tmp_path, script_main, capsys):
    config = tiny_ct_experiment(tmp_path, [TASK])
    assert script_main("preset_validity")([str(config), "--data-root", str(tmp_path), "--bundle", str(ct_bundle_path),
                                          "--split", "val", "--images", "4", "--candidates", "fast",
                                          "3,3,4,0.01,quadratic,2", "--gains", "1", "2.5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("task genant, stored edit gain") and "4 val images" in lines[0]
    rows = [line.split(" | ") for line in lines[2:]]
    assert [r[0].strip() for r in rows][1] == "3×≤5/3 quadratic tol 0.01 AA2" and len(rows) == 2
    assert [float(r[1]) for r in rows] == [1.0, 2.5]
    for row in rows:
        assert 0 <= float(row[2]) <= 1 and len(row[3].split()) == len(GRADE_NAMES) and float(row[5]) >= 0
    with pytest.raises(SystemExit):
        script_main("preset_validity")([str(config), "--data-root", str(tmp_path), "--bundle", str(ct_bundle_path),
                                        "--candidates", "fast", "standard", "--gains", "1"])
    assert "1 gains for 2 candidates" in capsys.readouterr().err
