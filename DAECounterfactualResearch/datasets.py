"""The 2D training-set format shared by the dataset builder, the trainer, the probe fitter and the evaluation.

One ``.npz`` (read with ``allow_pickle=False``) with per-sample arrays:
    images      (N, C, H, W) float16, already preprocessed to the model range [-1, 1]
    grades      (N,) int16 ordinal grade, -1 where unknown
    split       (N,) str   train / val / test (patient-level: a case never spans two splits)
    case_id     (N,) str
optional: level (N,) str, patch_to_ras (N, 4, 4) float32, lateral_offset_mm (N,) float32, simulated (N,) bool,
contrast (N,) str (CT, T1, T2, TIRM, water-fat: what an experiment's ``data.balance_by`` can balance).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.model.preprocessing import Preprocessing

REQUIRED = ("images", "grades", "split", "case_id")
FIXED_8BIT = Preprocessing("fixed_range", 0.0, 255.0)


@dataclass
class TrainingSet:
    images: np.ndarray
    grades: np.ndarray
    split: np.ndarray
    case_id: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4:
            raise InputError(f"training images must be (N, C, H, W), got shape {self.images.shape}")
        for name, values in (("grades", self.grades), ("split", self.split), ("case_id", self.case_id),
                             *self.extra.items()):
            if len(values) != n:
                raise InputError(f"training set field {name!r} has {len(values)} entries, images have {n}")

    def __len__(self) -> int:
        return len(self.images)

    def select(self, mask: np.ndarray) -> "TrainingSet":
        return TrainingSet(self.images[mask], self.grades[mask], self.split[mask], self.case_id[mask],
                           {k: v[mask] for k, v in self.extra.items()})

    def subset(self, split: str) -> "TrainingSet":
        return self.select(self.split == split)

    def save(self, path: Path) -> None:
        arrays = {"images": self.images.astype(np.float16), "grades": self.grades.astype(np.int16),
                  "split": self.split.astype(str), "case_id": self.case_id.astype(str), **self.extra}
        np.savez_compressed(path, **arrays)


def balanced(data: TrainingSet, column: str) -> TrainingSet:
    """The rows repeated so that every value of ``column`` (e.g. ``contrast``) is about as common as the most
    common one: a sequence seen in few exams is otherwise a small share of every batch, and the DAE spends little of
    its latent on it. Each row is repeated in place, so the seeded training order stays reproducible."""
    values = data.extra.get(column)
    if values is None:
        raise InputError(f"the training set has no {column!r} column to balance by (has {sorted(data.extra)}); "
                         "rebuild it with scripts/build_dataset.py")
    if len(values) and not all(str(v) for v in values):
        raise InputError(f"{column!r} is empty for {sum(not str(v) for v in values)} rows: cannot balance by it")
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    repeats = np.maximum(np.round(counts.max() / counts), 1).astype(int)[inverse]
    return data.select(np.repeat(np.arange(len(data)), repeats))


def load_training_set(path: str | Path) -> TrainingSet:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable training set ({exc})") from None
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise InputError(f"{path}: training set lacks {missing} (has {sorted(arrays)})")
    return TrainingSet(*(arrays.pop(k) for k in REQUIRED), extra=arrays)


def medmnist_training_set(path: str | Path, splits: tuple[str, ...] = ("train", "val")) -> TrainingSet:
    """A MedMNIST ``.npz`` (8-bit images, labels N×1) as a training set; each image is its own case."""
    from DAECounterfactualLib.io.volumes import read_npz_dataset

    parts = [(split, read_npz_dataset(path, split)) for split in splits]
    images = np.concatenate([FIXED_8BIT.apply(data.images) for _, data in parts])
    split = np.array([name for name, data in parts for _ in range(len(data.images))])
    case_id = np.array([f"retina_{s}_{k:05d}" for s, data in parts for k in range(len(data.images))])
    grades = np.concatenate([data.labels for _, data in parts]).astype(np.int16)
    return TrainingSet(images.astype(np.float16), grades, split, case_id)
