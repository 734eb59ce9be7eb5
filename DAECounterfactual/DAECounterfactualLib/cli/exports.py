"""Write an explanation to a folder: the strip, every image as NRRD on its patch plane, and a JSON summary.

Files are written into a hidden staging folder next to the destination and moved in only when all of them
exist, so a failure (disk full, cancelled, unwritable) leaves nothing partial behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..inference.geometry import Patch, patch_as_volume
from ..inference.explainer import Explainer, Explanation
from .strips import save_strip
from ..inference.patches import volume_value_range
from ..inference.panel_labels import panel_note, panel_readings
from ..inference.scores import grade_row
from ..io.volumes import Volume, write_volume


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def explanation_images(explanation: Explanation) -> dict[str, np.ndarray]:
    """Every image of an explanation by file stem, in the model range (C, H, W)."""
    images = {"reconstruction": explanation.reconstruction, "reflection": explanation.reflection}
    for g, name in enumerate(explanation.grade_names):
        images[f"counterfactual_{_safe(name)}"] = explanation.counterfactuals[g]
        images[f"difference_{_safe(name)}"] = explanation.differences[g]
    for i in range(len(explanation.sweep_distances)):
        images[f"sweep_{i:02d}"] = explanation.sweep[i]
    return images


def summary(explainer: Explainer, explanation: Explanation, patch: Patch, warning: str = "") -> dict[str, Any]:
    """What summary.json holds. A screening ``warning`` raises the OOD flag and is kept beside its reason."""
    names = explanation.grade_names
    grades = grade_row(explanation.grades, 0, names, warning)
    if not warning:
        del grades["warning"]
    return {
        "bundle": explainer.bundle.bundle_id, "task": explanation.task, "grades": grades,
        "target_distances": {name: float(d) for name, d in zip(names, explanation.target_distances)},
        "panels_read_as": panel_readings(explanation), "panel_note": panel_note(explanation),
        "sweep_distances": [float(d) for d in explanation.sweep_distances],
        "steps": {"invert": explanation.preset.invert, "decode": explanation.preset.decode},
        "retraced": explanation.retraced,
        "patch_to_ras": patch.patch_to_ras.tolist(), "patch_centre_ras": patch.centre_ras.tolist(),
    }


def write_explanation(out: str | Path, explainer: Explainer, patch: Patch, image: np.ndarray,
                      explanation: Explanation, volume: Volume, warning: str = "",
                      extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """strip.png, patch.nrrd (original units), one NRRD per explanation image (original units, differences in
    model units × half the intensity range), summary.json (with ``extra`` fields, e.g. where a centred point was
    given). A screening ``warning`` raises the OOD flag (in summary.json and as the strip's banner)."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out, prefix=".partial-"))
    except OSError as exc:
        raise InputError(f"{out}: cannot write the explanation here ({exc.strerror})") from None
    preprocessing = explainer.config.preprocessing
    value_range = volume_value_range(explainer.config, volume)
    half_range = (value_range[1] - value_range[0]) / 2
    try:
        result = summary(explainer, explanation, patch, warning) | {"input": volume.label} | (extra or {})
        save_strip(staging / "strip.png", image, explanation, title=f"{explainer.bundle.bundle_id} · {volume.label}",
                   ood_reason=result["grades"]["ood_reason"])
        write_volume(patch_as_volume(patch, "patch"), staging / "patch.nrrd")
        for stem, values in explanation_images(explanation).items():
            values = values.mean(axis=0)
            units = values * half_range if stem.startswith("difference") else preprocessing.invert(values, value_range)
            write_volume(patch_as_volume(Patch(units.astype(np.float32), patch.patch_to_ras), stem),
                         staging / f"{stem}.nrrd")
        (staging / "summary.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
        for item in staging.iterdir():
            os.replace(item, out / item.name)
    except OSError as exc:
        raise InputError(f"{out}: writing the explanation failed ({exc}); nothing was left behind") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result
