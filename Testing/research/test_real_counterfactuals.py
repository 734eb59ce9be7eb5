"""Issue 21's counterfactual checks on real vertebrae: which fractures are explained, and how the readings are
summarised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from DAECounterfactualResearch.real_counterfactuals import Fractured, RealBody, chosen_fractures, summary


def body_with_fractures() -> RealBody:
    image = np.zeros((1, 8, 8))
    fractures = [Fractured(kind, loss, grade, image) for grade, loss in ((1, 0.22), (2, 0.32), (3, 0.45))
                 for kind in ("biconcave", "crush", "wedge")]
    return RealBody("case", "VB3:a", "L2", image, np.ones((8, 8), bool), fractures)


def test_one_fracture_of_each_grade_is_explained_and_the_kinds_take_turns():
    body = body_with_fractures()
    first, second = chosen_fractures(body, 0, 2), chosen_fractures(body, 1, 2)
    assert [f.grade for f in first] == [2, 3] and [f.grade for f in second] == [2, 3]
    assert [f.kind for f in first] == ["wedge", "biconcave"] and [f.kind for f in second] == ["biconcave", "crush"]


def test_the_summary_reads_bands_changes_and_restored_heights():
    change = {"inside": 0.2, "outside": 0.05}
    healthy = [{"grade": 0, "cf_losses": [0.05, 0.22, 0.30, None], "cf_change": [change] * 4},
               {"grade": 1, "cf_losses": [0.10, 0.10, 0.45, 0.50], "cf_change": [change] * 4}]
    fractures = [{"grade": 3, "read_loss": 0.45, "g0_loss": 0.10}, {"grade": 2, "read_loss": 0.30, "g0_loss": 0.25},
                 {"grade": 3, "read_loss": None, "g0_loss": 0.05}]
    result = summary(healthy, fractures, 4)
    assert result["healthy_graded_g0"] == 0.5 and result["fractures"] == 3 and result["fractures_read"] == 2
    g1, g2, g3 = result["by_target"][1:]
    assert g1["in_band"] == 0.5 and g1["at_least_band"] == 0.5  # 0.22 is G1, 0.10 is G0
    assert g2["in_band"] == 0.5 and g2["at_least_band"] == 1.0  # 0.30 is G2, 0.45 is G3
    assert g3["read"] == 1 and g3["of"] == 2 and g3["median_loss"] == pytest.approx(0.50)
    assert g3["change_inside"] == pytest.approx(0.2) and g3["change_outside"] == pytest.approx(0.05)
    assert result["g0_restored"] == 0.5 and result["g0_loss_median"] == pytest.approx(0.175)


@pytest.mark.slow
@pytest.mark.real_data
def test_the_script_explains_real_unseen_bodies_and_writes_its_strips(tmp_path, script_main):
    import json

    from spine_testdata import real_data

    config = Path(__file__).resolve().parents[2] / "scripts" / "configs" / "vertebra-mri.json"
    assert script_main("real_counterfactuals")([str(config), "--data-root", str(real_data()), "--out", str(tmp_path),
                                                "--limit-cases", "1", "--preset", "fast", "--strips", "2",
                                                "--fracture-kinds", "wedge"]) == 0
    record = json.loads((tmp_path / "counterfactuals_vertebra-mri.json").read_text())
    assert record["series"] == ["vb3_01"]  # held out of the DAE's training, from the source it is trusted on
    assert record["ruler_check"]["n"] > 0 and len(record["healthy"]) == record["summary"]["healthy_bodies"] > 0
    assert all(row["kind"] == "wedge" and row["simulated_grade"] >= 2 for row in record["fractures"])
    assert len(list(tmp_path.glob("strip_vertebra-mri_vb3_01_*.png"))) == 2
