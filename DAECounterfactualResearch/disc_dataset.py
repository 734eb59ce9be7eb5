"""The disc training set, cut from SPIDER slices with disc centres and radiologists' grades (``discs.csv``).

Each graded disc gives one patch centred on the disc (``augmentation`` 0) and, in the training split, a number of
copies with a random small rotation, zoom, shift and gamma, the variation MRI slices show between patients and
scanners. Intensities are percentile-scaled over the whole slice, as ``daecf score --table`` does. ``grades`` holds
the Pfirrmann grade minus one (0-4); every other graded finding of the table (narrowing, herniation, Modic,
bulging, endplates, spondylolisthesis) is kept as its own column, for tasks that name it (``label_column``).
``case_id`` is the patient: a patient's T2 and T2-SPACE slices show the same discs and stay in one split.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.inference.slice_table import read_slice_image, scale_centres
from DAECounterfactualLib.io.slices import slice_patch, slice_spacing
from DAECounterfactualLib.model.preprocessing import Preprocessing

FINDINGS = ("pfirrmann", "narrowing", "herniation", "modic", "bulging", "up_endplate", "low_endplate",
            "spondylolisthesis")
CARRIED = ("image", "level", "manufacturer", "sequence", "spacing_check")
PREPROCESSING = Preprocessing("percentile", 1.0, 99.0)
AUGMENT = {"angle_deg": 12.0, "zoom": 0.1, "shift_mm": 2.0, "log_gamma": 0.25}


def read_discs(path: Path) -> dict[str, list[dict[str, str]]]:
    """Rows of the disc table grouped by image, in file order."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise InputError(f"{path}: no disc rows")
    by_image: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_image[row["image"]].append(row)
    return by_image


def spacing_of(rows: list[dict[str, str]]):
    """The slice's spacing by the rule of ``io.slices`` (lumbar discs estimate a suspect slice's scale)."""
    first = rows[0]
    centres = np.array([[float(r["x_px"]), float(r["y_px"])] for r in rows])
    return slice_spacing(first["spacing_check"], float(first["pixel_spacing_row_mm"]),
                         float(first["pixel_spacing_col_mm"]), int(first["img_w"]), int(first["img_h"]),
                         scale_centres(centres, rows))


def random_augmentation(rng: np.random.Generator) -> dict[str, float]:
    return {"angle_deg": rng.uniform(-1, 1) * AUGMENT["angle_deg"],
            "scale": float(np.exp(rng.uniform(-1, 1) * AUGMENT["zoom"])),
            "shift_mm": tuple(rng.uniform(-1, 1, 2) * AUGMENT["shift_mm"]),
            "gamma": float(np.exp(rng.uniform(-1, 1) * AUGMENT["log_gamma"]))}


def disc_samples(image: np.ndarray, rows: list[dict[str, str]], size_px: int, spacing_mm: float,
                 augmentations: int, rng: np.random.Generator, shift_mm=(0.0, 0.0)) -> list[dict]:
    """One sample per disc of one slice, cut at the disc centre moved by ``shift_mm`` (x right, y down), plus
    ``augmentations`` augmented ones per training disc."""
    spacing = spacing_of(rows)
    value_range = PREPROCESSING.intensity_range(image)
    samples = []
    for row in rows:
        centre = (float(row["x_px"]), float(row["y_px"]))
        count = augmentations if row["split"] == "train" else 0
        for index in range(count + 1):
            augment = random_augmentation(rng) if index else {"gamma": 1.0, "shift_mm": shift_mm}
            gamma = augment.pop("gamma")
            patch = slice_patch(image, centre, spacing, size_px, spacing_mm, **augment)
            scaled = PREPROCESSING.apply(patch, value_range)
            scaled = 2.0 * ((scaled + 1.0) / 2.0) ** gamma - 1.0
            samples.append({"image": scaled[None], "row": row, "augmentation": index,
                            "row_mm": spacing.row_mm, "column_mm": spacing.column_mm})
    return samples


def to_arrays(samples: list[dict]) -> dict[str, np.ndarray]:
    rows = [s["row"] for s in samples]
    arrays = {
        "images": np.stack([s["image"] for s in samples]).astype(np.float16),
        "grades": np.array([int(r["pfirrmann"]) - 1 for r in rows], dtype=np.int16),
        "split": np.array([r["split"] for r in rows], dtype=str),
        "case_id": np.array([f"spider_{r['patient']}" for r in rows], dtype=str),
        "disc_id": np.array([f"{r['image']}:{r['ivd_label']}" for r in rows], dtype=str),
        "augmentation": np.array([s["augmentation"] for s in samples], dtype=np.int16),
        "pixel_spacing_used_mm": np.array([[s["row_mm"], s["column_mm"]] for s in samples], dtype=np.float32),
    }
    arrays |= {name: np.array([int(r[name]) for r in rows], dtype=np.int16) for name in FINDINGS}
    arrays |= {name: np.array([r[name] for r in rows], dtype=str) for name in CARRIED}
    return arrays


def build_discs(folder: Path, size_px: int, spacing_mm: float, augmentations: int, seed: int
                ) -> tuple[dict[str, np.ndarray], list[Path]]:
    """The arrays of the training set and the files they were read from."""
    table = disc_table(folder)
    rng = np.random.default_rng(seed)
    samples, inputs = [], [table]
    for name, rows in sorted(read_discs(table).items()):
        path = folder / "images" / name
        inputs.append(path)
        samples.extend(disc_samples(read_slice_image(path), rows, size_px, spacing_mm, augmentations, rng))
    return to_arrays(samples), inputs


def disc_table(folder: Path) -> Path:
    """``folder``'s disc table, checked to exist."""
    table = folder / "discs.csv"
    if not table.exists():
        raise InputError(f"{table}: not found; --data-root must hold spider_discs/")
    return table


def disc_patches(folder: Path, split: str, size_px: int, spacing_mm: float, margin_px: int = 0,
                 shift_mm=(0.0, 0.0)) -> dict[str, np.ndarray]:
    """Every graded disc of ``split`` as training cut it (no augmentation), ``margin_px`` wider on every side and
    cut at the disc centre moved by ``shift_mm`` (x right, y down): the training set's columns, the images
    (N, 1, W, W) in float32."""
    table, samples = disc_table(folder), []
    for name, rows in sorted(read_discs(table).items()):
        if any(row["split"] == split for row in rows):  # a slice is one patient's, in one split
            image = read_slice_image(folder / "images" / name)
            samples += [sample for sample in disc_samples(image, rows, size_px + 2 * margin_px, spacing_mm, 0,
                                                          np.random.default_rng(0), shift_mm)
                        if sample["row"]["split"] == split]
    if not samples:
        raise InputError(f"{table}: no graded disc in split {split!r}")
    return to_arrays(samples) | {"images": np.stack([s["image"] for s in samples]).astype(np.float32)}
