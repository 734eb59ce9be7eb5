"""The README's Slicer-console snippet for a study folder: the module Logic's explainer scores the cases straight from
their files, the scene is left exactly as it was (no volume is loaded into it), and the grades are those that
Score all gives for the same volume and label map loaded as nodes."""

from __future__ import annotations

import numpy as np
import pytest

from cohort_testdata import TOLERANCE, rows, write_cohort

slicer = pytest.importorskip("slicer")

from DAECounterfactualLib.inference.cohort import CaseScorer, score_cohort  # noqa: E402
from DAECounterfactualLib.io.cohort import find_cases  # noqa: E402
from DAECounterfactualLib.io.volumes import read_volume  # noqa: E402
from DAECounterfactualLib.mrml import scene as mrml  # noqa: E402
from scene_fixtures import scene_state  # noqa: E402


def test_a_study_folder_is_scored_from_the_console_without_loading_it_into_the_scene(scene, logic, tmp_path):
    cases = find_cases(write_cohort(tmp_path / "study", cases=2))
    before = scene_state(scene)
    calls = []
    summary = score_cohort(cases, tmp_path / "cohort.csv", CaseScorer(logic.explainer, "genant"),
                           progress=lambda *args: calls.append(args[:2]))  # in Slicer: slicer.app.processEvents()
    assert scene_state(scene) == before
    assert (summary.scored, summary.rows) == (2, 6) and calls == [(0, 2), (1, 2), (2, 2)]
    got = [r for r in rows(tmp_path / "cohort.csv") if r["case"] == cases[1].case_id]

    volume = mrml.add_volume_node(scene, read_volume(cases[1].image))
    labels = mrml.add_volume_node(scene, read_volume(cases[1].positions), "vtkMRMLLabelMapVolumeNode")
    expected = mrml.rows_from_table(logic.score(volume, labels, "genant"))
    assert [(r["level"], int(r["grade"])) for r in got] == [(r["level"], int(r["grade"])) for r in expected]
    for column, tolerance in TOLERANCE.items():
        np.testing.assert_allclose([float(r[column]) for r in got], [float(r[column]) for r in expected],
                                   rtol=0, atol=tolerance)
