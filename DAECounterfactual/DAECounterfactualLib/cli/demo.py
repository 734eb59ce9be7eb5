"""The headless demo (`daecf demo`, the README's main job): what a radiologist does in Slicer, in one call.

Loads the sample CT into a headless MRML scene, places a point on a lumbar vertebra, grades it, explains it,
batch-scores every labelled vertebra, and writes strip.png, scene.mrb (opens in Slicer with the sequences and
the table), scores.csv and report.json (timings, grades, bundle id). Every step goes through the same
ExplanationLogic that the Slicer module uses.
"""

from __future__ import annotations

import json
import platform
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import InputError


@contextmanager
def _timed(timings: dict[str, float], name: str):
    start = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - start, 3)


def run_demo(out: str | Path, bundle: str = "vcf-ct", task: str = "genant", preset: str = "standard",
             level: str = "L3", device: str = "cpu") -> dict[str, Any]:
    from ..mrml import scene as mrml
    from ..mrml.logic import ExplanationLogic
    from .strips import save_strip
    from ..io.sampledata import sample_files
    from ..inference.patches import model_input
    from ..inference.scores import write_scores_csv
    from ..inference.spine_axis import patch_tilts
    from ..io.volumes import centroids_from_mask, read_volume, vertebral_bodies

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the output folder ({exc.strerror})") from None
    timings: dict[str, float] = {}
    with _timed(timings, "load_sample_s"):
        files = sample_files("spine-ct")
        volume = read_volume(files["image"])
        # The bodies: a radiologist clicks the body, 12-17 mm anterior of each whole vertebra's centroid here.
        mask = vertebral_bodies(read_volume(files["vertebra_mask"]), read_volume(files["subregion_mask"]))
        scene = mrml.new_scene()
        volume_node = mrml.add_volume_node(scene, volume, name="sample CT")
        labels_node = mrml.add_volume_node(scene, mask, "vtkMRMLLabelMapVolumeNode", "sample CT vertebral bodies")
        positions = {p.level: p for p in centroids_from_mask(mask)}
        if level not in positions:
            raise InputError(f"the sample CT has no vertebra {level}; it has {sorted(positions)}")
    logic = ExplanationLogic(scene, bundle=bundle, device=device)
    with _timed(timings, "load_model_s"):
        bundle_id = logic.bundle.bundle_id
    # A bundle that cuts along the spine takes its axis from the neighbours: they follow the clicked point (index 0).
    along = logic.bundle.config.patch_rows != "axial"
    clicked = [positions[level]] + [p for p in positions.values() if along and p.level != level]
    points = mrml.add_points(scene, [(p.level, p.ras) for p in clicked], name="clicked vertebra")
    with _timed(timings, "grade_s"):
        grades = logic.grade(volume_node, points, task)
    with _timed(timings, "explain_s"):
        nodes = logic.explain(volume_node, points, task, preset=preset)
    with _timed(timings, "score_all_s"):
        table = logic.score(volume_node, labels_node, task)
    with _timed(timings, "write_outputs_s"):
        rows = mrml.rows_from_table(table)
        write_scores_csv(rows, out / "scores.csv")
        _, image = model_input(logic.bundle.config, volume, positions[level].ras,
                               tilt_deg=patch_tilts(logic.bundle.config, clicked, [0])[0])
        save_strip(out / "strip.png", image, nodes.explanation,
                   title=f"{bundle_id} · sample CT (tptbox 1.1.0) {level} · task {task}",
                   ood_reason=nodes.grades["ood_reason"])
        mrml.save_scene(scene, out / "scene.mrb")
    steps = logic.explainer.preset(preset)
    report = {
        "bundle": bundle_id, "task": task, "preset": preset, "steps": {"invert": steps.invert,
                                                                       "decode": steps.decode},
        "sample": str(files["image"].name), "clicked": {"level": level, "ras": positions[level].ras.tolist()},
        "grades": grades, "panel_note": nodes.grades["panel_note"], "scores": rows, "timings": timings,
        "device": device,
        "python": platform.python_version(),
        "outputs": {name: str(out / name) for name in ("strip.png", "scene.mrb", "scores.csv", "report.json")},
    }
    (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


def console_lines(report: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What ``daecf demo`` prints: the lines for stdout (every grade with its out-of-distribution flag beside it,
    so a grade is never read without it, after the task's caution where it has one) and the warnings for stderr
    (the task's caution, the panels the model cannot draw)."""
    def flag(reason: str) -> str:
        return f" OUT OF DISTRIBUTION: {reason}" if reason else ""

    g = report["grades"]
    caution = [g["caution"]] if g.get("caution") else []
    lines = [f"CAUTION: {text}" for text in caution]
    lines += [f"{report['bundle']}, {report['clicked']['level']}: {g['grade_name']} (score {g['score']:.2f}, "
              f"P {g['probability']:.2f}){flag(g['ood_reason'])}"]
    lines += [f"  {row['level']}: {row['grade_name']} (score {row['score']:.2f}){flag(row['ood_reason'])}"
              for row in report["scores"]]
    lines.append("timings: " + ", ".join(f"{k} {v:.2f}" for k, v in report["timings"].items()))
    lines.append("wrote " + ", ".join(report["outputs"].values()))
    return lines, caution + ([report["panel_note"]] if report.get("panel_note") else [])
