"""scripts/refit_tasks.py: a bundle's tasks refitted from a config on its own encoder, into a copy."""

import json

import numpy as np
import pytest

from bundle_fixtures import GRADE_NAMES, tiny_ct_experiment
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualResearch.model_card import with_task_lines

CARD = """# x

## Training data
- File `dataset.npz`.

## Validation
- EMA reconstruction MSE 1e-5.
- Task `a` (grade >= 1 positive; probe svm): validation AUC 0.5.
  Counterfactual edits move along the normal's projection.
- Task `b` (grade >= 1 positive; probe svm): validation AUC 0.6.

## Limitations
Small.
"""


def test_task_lines_are_replaced_and_the_rest_of_the_card_kept():
    card = with_task_lines(CARD, ["- Tasks refitted by a script.", "- Task `a` (new): validation AUC 0.9."])
    assert card == CARD.replace("""- Task `a` (grade >= 1 positive; probe svm): validation AUC 0.5.
  Counterfactual edits move along the normal's projection.
- Task `b` (grade >= 1 positive; probe svm): validation AUC 0.6.
""", """- Tasks refitted by a script.
- Task `a` (new): validation AUC 0.9.
""")
    assert with_task_lines(card, ["- Task `a` (again)."]).count("- Task") == 1  # a second refit: no leftovers
    last = CARD.split("\n## Limitations")[0] + "\n"  # Validation as the card's last section
    assert with_task_lines(last, ["- Task `c`."]).endswith("- EMA reconstruction MSE 1e-5.\n- Task `c`.\n")
    assert with_task_lines("# x\nby hand\n", ["- Task `c`."]) == "# x\nby hand\n\n## Validation\n- Task `c`.\n"


def test_refit_writes_a_copy_with_the_config_recipe_and_leaves_the_source(ct_bundle_path, tmp_path,
                                                                          script_main):
    refit = script_main("refit_tasks")
    task = {"name": "genant", "grade_names": list(GRADE_NAMES), "positive_min_grade": 2, "calibration": "extremes",
            "probe_components": 4, "edit_components": 2, "c_grid": [0.1]}
    config = tiny_ct_experiment(tmp_path, [task])
    source = load_bundle(ct_bundle_path)
    out = tmp_path / "refitted"
    assert refit([str(config), "--data-root", str(tmp_path), "--bundle", str(ct_bundle_path),
                       "--out", str(out), "--gain-images", "0"]) == 0
    copy, again = load_bundle(out), load_bundle(ct_bundle_path)
    assert again.bundle_id == source.bundle_id and copy.bundle_id != source.bundle_id  # source untouched
    refitted = copy.task("genant")
    assert refitted.calibration.method == "extremes" and refitted.metrics["C"] == 0.1
    assert refitted.probe.edit_direction is not None and refitted.edit_gain == 1.0
    assert refitted.metrics["split"] == "val" and refitted.metrics["n"] == 16
    assert "latent_geometry" in refitted.metrics
    card = copy.model_card
    assert card.count("- Task `genant`") == 1 and "calibration extremes" in card
    assert "top 2 principal directions" in card and f"the DAE is that of `{source.bundle_id}`" in card
    assert "## Counterfactual edit gain" not in card
    np.testing.assert_array_equal(copy.latent_stats.mean, source.latent_stats.mean)  # same encoder, same stats
    assert refit([str(config), "--data-root", str(tmp_path), "--bundle", str(out),  # a refit of a refit
                       "--out", str(tmp_path / "gained"), "--gain-images", "2"]) == 0
    gained = load_bundle(tmp_path / "gained")
    card = gained.model_card
    assert card.count("## Counterfactual edit gain") == 1 and card.count("- Task `genant` (") == 1
    assert card.count("- Tasks refitted") == 1
    assert gained.task("genant").metrics["edit_gain_fit"]["images"] == 2


def test_refit_refuses_an_existing_folder_and_a_config_of_another_bundle(ct_bundle_path, tmp_path,
                                                                           capsys, script_main):
    refit = script_main("refit_tasks")
    task = {"name": "other", "grade_names": list(GRADE_NAMES), "positive_min_grade": 2}
    config = tiny_ct_experiment(tmp_path, [task])
    with pytest.raises(SystemExit):
        refit([str(config), "--data-root", str(tmp_path), "--bundle", str(ct_bundle_path),
                    "--out", str(tmp_path / "new")])
    assert "names tasks ['other'] but" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        refit([str(config), "--data-root", str(tmp_path), "--bundle", str(ct_bundle_path),
                    "--out", str(tmp_path)])
    assert "exists; name a new folder" in capsys.readouterr().err
    task["name"] = "genant"
    other_window = tiny_ct_experiment(tmp_path, [task])
    experiment = json.loads(other_window.read_text())
    experiment["bundle"]["preprocessing"]["high"] = 1500.0
    other_window.write_text(json.dumps(experiment))
    with pytest.raises(SystemExit):
        refit([str(other_window), "--data-root", str(tmp_path), "--bundle", str(ct_bundle_path),
                    "--out", str(tmp_path / "new")])
    assert "preprocessing {'kind': 'ct_window', 'low': -200.0, 'high': 800.0} (config:" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset.npz", "experiment.json"]  # nothing written


def test_a_failed_refit_leaves_no_folder_behind(ct_bundle_path, tmp_path, monkeypatch, script_main):
    refit = script_main("refit_tasks")
    task = {"name": "genant", "grade_names": list(GRADE_NAMES), "positive_min_grade": 2}
    config = tiny_ct_experiment(tmp_path, [task])

    def broken(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setitem(refit.__globals__, "fit_tasks", broken)
    with pytest.raises(RuntimeError, match="interrupted"):
        refit([str(config), "--data-root", str(tmp_path), "--bundle", str(ct_bundle_path),
                    "--out", str(tmp_path / "new")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset.npz", "experiment.json"]
