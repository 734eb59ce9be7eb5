"""From volumes (or 2D image sets) to model inputs and per-vertebra score rows: shared by the CLI and the Logic.

A model input is the sagittal patch at a RAS point, cut with the bundle's patch size and spacing, and mapped to
the model range with the bundle's preprocessing. Percentile (MRI) scaling takes its percentiles over the whole
volume, so every vertebra of one scan is scaled alike, exactly as the dataset builder does at training time.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bundle import BundleConfig
from .errors import Cancelled, InputError
from .geometry import Patch, extract_sagittal_patch
from .pipeline import Explainer
from .volumes import Volume, VertebraPosition

COLUMNS = ("id", "level", "r", "a", "s", "distance", "probability", "score", "grade", "grade_name", "ood",
           "ood_score")


@dataclass
class ScoreRow:
    id: str
    level: str
    ras: tuple[float, float, float] | None
    distance: float
    probability: float
    score: float
    grade: int
    grade_name: str
    ood: bool
    ood_score: float

    def as_dict(self) -> dict[str, object]:
        r, a, s = self.ras if self.ras is not None else ("", "", "")
        return {"id": self.id, "level": self.level, "r": r, "a": a, "s": s, "distance": self.distance,
                "probability": self.probability, "score": self.score, "grade": self.grade,
                "grade_name": self.grade_name, "ood": self.ood, "ood_score": self.ood_score}


def volume_value_range(config: BundleConfig, volume: Volume) -> tuple[float, float]:
    return config.preprocessing.intensity_range(volume.array if config.preprocessing.kind == "percentile" else None)


def model_input(config: BundleConfig, volume: Volume, ras, value_range: tuple[float, float] | None = None
                ) -> tuple[Patch, np.ndarray]:
    """The patch (original units, with geometry) and the model input (1, H, W) for one point."""
    if config.model.in_channels != 1:
        raise InputError(f"bundle {config.name!r} expects {config.model.in_channels}-channel images, not volumes")
    patch = extract_sagittal_patch(volume, ras, config.patch_size_px, config.patch_spacing_mm)
    value_range = value_range or volume_value_range(config, volume)
    return patch, config.preprocessing.apply(patch.pixels, value_range)[None]


def _rows(explainer: Explainer, task: str, images: np.ndarray, ids: Sequence[str], levels: Sequence[str],
          points: Sequence) -> list[ScoreRow]:
    grades = explainer.grade(images, task)
    names = explainer.bundle.task(task).grade_names
    return [ScoreRow(id=ids[i], level=levels[i], ras=None if points[i] is None else tuple(map(float, points[i])),
                     distance=float(grades.distance[i]), probability=float(grades.probability[i]),
                     score=float(grades.score[i]), grade=int(grades.grade[i]), grade_name=names[grades.grade[i]],
                     ood=bool(grades.ood[i]), ood_score=float(grades.ood_score[i])) for i in range(len(images))]


def score_volume(explainer: Explainer, volume: Volume, positions: Sequence[VertebraPosition], task: str,
                 batch_size: int = 64, progress: Callable[[int, int], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> list[ScoreRow]:
    """One row per position, patches encoded in batches; a point outside the volume is an InputError."""
    if not positions:
        raise InputError(f"{volume.label}: no vertebra positions to score")
    config = explainer.config
    value_range = volume_value_range(config, volume)
    rows: list[ScoreRow] = []
    for start in range(0, len(positions), batch_size):
        if cancelled is not None and cancelled():
            raise Cancelled("scoring cancelled")
        chunk = positions[start:start + batch_size]
        images = np.stack([model_input(config, volume, p.ras, value_range)[1] for p in chunk])
        rows += _rows(explainer, task, images, [f"{volume.name or 'volume'}:{p.level}" for p in chunk],
                      [p.level for p in chunk], [p.ras for p in chunk])
        if progress is not None:
            progress(len(rows), len(positions))
    return rows


def score_images(explainer: Explainer, images: np.ndarray, ids: Sequence[str], task: str) -> list[ScoreRow]:
    """Rows for 2D images in their original units (e.g. 8-bit photographs), preprocessed per image."""
    config = explainer.config
    size, channels = config.model.image_size, config.model.in_channels
    if images.ndim != 4 or images.shape[1:] != (channels, size, size):
        raise InputError(f"bundle {config.name!r} expects images of {channels}×{size}×{size}, got "
                         f"{images.shape[1:]}")
    prepared = np.stack([config.preprocessing.apply(image) for image in images])
    return _rows(explainer, task, prepared, list(ids), [""] * len(images), [None] * len(images))


def write_scores_csv(rows: Sequence[ScoreRow], path: str | Path) -> Path:
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row.as_dict())
    return path
