"""The headless demo end to end on the real sample CT (fetched by `make`), with the tiny test bundle."""

import csv
import json

import pytest

from DAECounterfactualLib.errors import DAECFError

slicer = pytest.importorskip("slicer")


@pytest.fixture(scope="module")
def demo(blob_bundle, tmp_path_factory):
    from DAECounterfactualLib.cli.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    try:
        report = run_demo(out, bundle=str(blob_bundle), task="size", preset="fast")
    except DAECFError as exc:
        if "sample data not found" in str(exc):
            pytest.skip(f"sample CT not fetched: {exc}")
        raise
    return out, report


def test_demo_writes_every_output(demo):
    out, report = demo
    for name in ("strip.png", "scene.mrb", "scores.csv", "report.json"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    assert report["bundle"].startswith("blobs@") and report["clicked"]["level"] == "L3"
    assert set(report["timings"]) >= {"grade_s", "explain_s", "score_all_s"}


def test_scores_cover_every_labelled_vertebra(demo):
    out, report = demo
    with open(out / "scores.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["level"] for r in rows] == ["L2", "L3", "L4"]
    l3 = rows[1]
    assert float(l3["distance"]) == pytest.approx(report["grades"]["distance"], rel=1e-5)


def test_scene_reopens_with_sequences_and_table(demo):
    from DAECounterfactualLib.mrml import scene as mrml

    out, _ = demo
    scene = mrml.load_scene(out / "scene.mrb", mrml.new_scene())
    names = {scene.GetNthNode(i).GetName() for i in range(scene.GetNumberOfNodes())}
    assert "sample CT" in names and "clicked vertebra" in names
    assert any(n.endswith("S3 counterfactual") for n in names)
    tables = [scene.GetNthNodeByClass(i, "vtkMRMLTableNode") for i in
              range(scene.GetNumberOfNodesByClass("vtkMRMLTableNode"))]
    assert [t.GetTable().GetNumberOfRows() for t in tables] == [3]
    assert scene.GetNumberOfNodesByClass("vtkMRMLSequenceBrowserNode") == 2


def test_the_console_shows_every_grade_with_its_flag_and_warns_of_panels_the_model_cannot_draw(demo):
    from DAECounterfactualLib.cli.demo import console_lines

    _, report = demo
    flagged = {**report["scores"][0], "ood": 1, "ood_reason": "its latent is unlike the training images'"}
    passed = {**report["scores"][1], "ood": 0, "ood_reason": ""}
    report = {**report, "scores": [flagged, passed], "panel_note": "panels G0 reads as G1",
              "grades": {**report["grades"], "caution": ""}}
    lines, warnings = console_lines(report)
    assert lines[1] == (f"  L2: {flagged['grade_name']} (score {flagged['score']:.2f}) OUT OF DISTRIBUTION: its "
                        "latent is unlike the training images'")
    assert "OUT OF DISTRIBUTION" not in lines[2] and warnings == ["panels G0 reads as G1"]
    assert console_lines({**report, "panel_note": ""})[1] == []


def test_the_console_opens_with_the_tasks_caution_and_warns_with_it(demo):
    from DAECounterfactualLib.cli.demo import console_lines

    _, report = demo
    caution = "not valid on real patients: on 24 healthy vertebrae, healthy vertebrae graded G0 0.00 (target 0.90)"
    lines, warnings = console_lines({**report, "grades": {**report["grades"], "caution": caution}, "panel_note": ""})
    assert lines[0] == f"CAUTION: {caution}" and lines[1].startswith(f"{report['bundle']}, ")
    assert warnings == [caution]
