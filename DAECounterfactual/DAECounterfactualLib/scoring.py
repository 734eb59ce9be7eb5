"""From volumes (or 2D image sets) to model inputs and per-vertebra score rows: shared by the CLI and the Logic.

A model input is the sagittal patch at a RAS point, cut with the bundle's patch size and spacing, and mapped to
the model range with the bundle's preprocessing. Percentile (MRI) scaling takes its percentiles over the whole
volume, so every vertebra of one scan is scaled alike, exactly as the dataset builder does at training time.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from .bundle import BundleConfig
from .errors import Cancelled, InputError
from .geometry import Patch, extract_sagittal_patch
from .pipeline import Explainer, Grades
from .volumes import Volume, VertebraPosition

SCORE_COLUMNS = ("id", "level", "r", "a", "s", "distance", "probability", "score", "grade", "grade_name", "ood",
                 "ood_score")


def grade_row(grades: Grades, n: int, grade_names: Sequence[str]) -> dict[str, object]:
    """The read-out of image ``n`` as a row: distance, probability, score, grade, grade name, OOD flag and score."""
    grade = int(grades.grade[n])
    return {"distance": float(grades.distance[n]), "probability": float(grades.probability[n]),
            "score": float(grades.score[n]), "grade": grade, "grade_name": grade_names[grade],
            "ood": bool(grades.ood[n]), "ood_score": float(grades.ood_score[n])}


def volume_value_range(config: BundleConfig, volume: Volume) -> tuple[float, float]:
    return config.preprocessing.intensity_range(volume.array if config.preprocessing.kind == "percentile" else None)


def cut_patch(config: BundleConfig, volume: Volume, ras) -> Patch:
    return extract_sagittal_patch(volume, ras, config.patch_size_px, config.patch_spacing_mm)


def to_model_input(config: BundleConfig, patches: Sequence[Patch], value_range: tuple[float, float]) -> np.ndarray:
    """(N, 1, H, W) model-range images of volume patches (which have one channel)."""
    if config.model.in_channels != 1:
        raise InputError(f"bundle {config.name!r} expects {config.model.in_channels}-channel images; volume "
                         "patches have one channel")
    return np.stack([config.preprocessing.apply(p.pixels, value_range)[None] for p in patches])


def model_input(config: BundleConfig, volume: Volume, ras, value_range: tuple[float, float] | None = None
                ) -> tuple[Patch, np.ndarray]:
    """The patch (original units, with geometry) and the model input (1, H, W) for one point."""
    patch = cut_patch(config, volume, ras)
    return patch, to_model_input(config, [patch], value_range or volume_value_range(config, volume))[0]


def _rows(explainer: Explainer, task: str, images: np.ndarray, ids: Sequence, levels: Sequence[str],
          points: Sequence) -> list[dict[str, object]]:
    grades = explainer.grade(images, task)
    names = explainer.bundle.task(task).grade_names
    return [{"id": ids[i], "level": levels[i], **_ras_columns(points[i]), **grade_row(grades, i, names)}
            for i in range(len(images))]


def _ras_columns(point) -> dict[str, object]:
    return dict(zip("ras", ("", "", "") if point is None else (float(v) for v in point)))


def score_volume(explainer: Explainer, volume: Volume, positions: Sequence[VertebraPosition], task: str,
                 batch_size: int = 64, progress: Callable[[int, int], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> list[dict[str, object]]:
    """One row per position (id = its label), patches encoded in batches; a point outside the volume is an
    InputError."""
    if not positions:
        raise InputError(f"{volume.label}: no vertebra positions to score")
    config = explainer.config
    value_range = volume_value_range(config, volume)
    rows: list[dict[str, object]] = []
    for start in range(0, len(positions), batch_size):
        if cancelled is not None and cancelled():
            raise Cancelled("scoring cancelled")
        chunk = positions[start:start + batch_size]
        images = to_model_input(config, [cut_patch(config, volume, p.ras) for p in chunk], value_range)
        rows += _rows(explainer, task, images, [p.label for p in chunk],
                      [p.level for p in chunk], [p.ras for p in chunk])
        if progress is not None:
            progress(len(rows), len(positions))
    return rows


def score_images(explainer: Explainer, images: np.ndarray, ids: Sequence[str], task: str
                 ) -> list[dict[str, object]]:
    """Rows for 2D images in their original units (e.g. 8-bit photographs), preprocessed per image."""
    config = explainer.config
    size, channels = config.model.image_size, config.model.in_channels
    if images.ndim != 4 or images.shape[1:] != (channels, size, size):
        raise InputError(f"bundle {config.name!r} expects images of {channels}×{size}×{size}, got "
                         f"{images.shape[1:]}")
    prepared = np.stack([config.preprocessing.apply(image) for image in images])
    return _rows(explainer, task, prepared, list(ids), [""] * len(images), [None] * len(images))


def write_scores_csv(rows: Sequence[Mapping[str, object]], path: str | Path) -> Path:
    """One row per vertebra or image with the ``SCORE_COLUMNS``, at full precision."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=SCORE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: int(v) if isinstance(v, bool) else v for k, v in row.items()} for row in rows)
    return path
