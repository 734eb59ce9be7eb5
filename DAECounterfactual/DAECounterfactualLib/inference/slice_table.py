"""Grade targets listed in a table of 2D slices (``daecf score --table``): one output row per input row, in input
order, every input column carried through.

The table names each target's slice (``image``, a file in the image folder), its centre in pixels (``x_px``,
``y_px``; x right, y down, upright slice) and the slice's pixel spacing (``pixel_spacing_row_mm``,
``pixel_spacing_col_mm``), optionally ``spacing_check`` (``ok``/``suspect``, see ``slices``) and ``ivd_label``
(disc labels counted from L5-S1 = 1; with it, only lumbar discs estimate a suspect slice's scale) and ``level``
(e.g. ``L4-L5``: a level outside the bundle's training data flags the row).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..io.slices import slice_patch, slice_spacing
from ..io.volumes import read_2d_image
from .explainer import Explainer
from .scores import grade_row

REQUIRED_COLUMNS = ("image", "x_px", "y_px", "pixel_spacing_row_mm", "pixel_spacing_col_mm")
TABLE_SCORE_COLUMNS = ("id", "distance", "probability", "score", "grade", "grade_name", "ood", "ood_reason", "caution")
LUMBAR_DISC_LABELS = ("1", "2", "3", "4", "5")


def read_table(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """Column names and rows of a targets table; a missing column or an empty table is an InputError."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows, columns = list(reader), list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{path}: cannot be read as a CSV table ({error})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(columns) or 'none'})")
    if not rows:
        raise InputError(f"{path}: the table has no rows")
    return columns, rows


def _number(path: Path, line: int, row: dict[str, str], column: str) -> float:
    try:
        value = float(row[column])
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value):
        raise InputError(f"{path}, line {line}: {column} {row[column]!r} is not a number")
    return value


def scale_centres(centres_xy: np.ndarray, rows: Sequence[dict[str, str]]) -> np.ndarray:
    """The centres that estimate a suspect slice's scale: its lumbar discs where the table names at least two
    (``ivd_label`` 1-5), else every target of the slice."""
    lumbar = [k for k, row in enumerate(rows) if row.get("ivd_label", "") in LUMBAR_DISC_LABELS]
    return centres_xy[lumbar] if len(lumbar) >= 2 else centres_xy


def read_slice_image(path: Path) -> np.ndarray:
    """A 2D slice (PNG or 2D NIfTI) as float32 grey values; a grey image stored with colour channels is averaged."""
    if not path.is_file():
        raise InputError(f"{path}: no such image")
    array = read_2d_image(path).astype(np.float32)
    return array[..., :3].mean(axis=-1) if array.ndim == 3 else array


def _image_patches(explainer: Explainer, path: Path, table: Path, rows: Sequence[tuple[int, dict[str, str]]]
                   ) -> np.ndarray:
    """Model inputs (N, 1, H, W) of one slice's rows (line number, row)."""
    config = explainer.config
    image = read_slice_image(path)
    height, width = image.shape
    line, first = rows[0]
    centres = np.array([[_number(table, n, r, "x_px"), _number(table, n, r, "y_px")] for n, r in rows])
    outside = [n for (n, _), (x, y) in zip(rows, centres) if not (0 <= x < width and 0 <= y < height)]
    if outside:
        raise InputError(f"{table}, line {outside[0]}: the centre lies outside {path.name} ({width}×{height} px)")
    spacing = slice_spacing(first.get("spacing_check") or "ok", _number(table, line, first, "pixel_spacing_row_mm"),
                            _number(table, line, first, "pixel_spacing_col_mm"), width, height,
                            scale_centres(centres, [r for _, r in rows]))
    value_range = config.preprocessing.intensity_range(image)
    patches = [slice_patch(image, centre, spacing, config.patch_size_px, config.patch_spacing_mm) for centre in centres]
    return np.stack([config.preprocessing.apply(p, value_range)[None] for p in patches])


def score_table(explainer: Explainer, table: str | Path, image_dir: str | Path, task: str
                ) -> tuple[list[str], list[dict[str, object]]]:
    """Output columns and one row per table row, in table order: ``TABLE_SCORE_COLUMNS`` then the input columns
    (an input column named like an output column is carried as ``input_<name>``)."""
    table, image_dir = Path(table), Path(image_dir)
    if explainer.config.model.in_channels != 1:
        raise InputError(f"bundle {explainer.config.name!r} expects {explainer.config.model.in_channels}-channel "
                         "images; slices have one channel")
    columns, rows = read_table(table)
    by_image: dict[str, list[tuple[int, dict[str, str]]]] = defaultdict(list)
    for index, row in enumerate(rows):
        by_image[row["image"]].append((index, row))
    names = explainer.bundle.task(task).grade_names
    carried = {c: f"input_{c}" if c in TABLE_SCORE_COLUMNS else c for c in columns}
    out: list[dict[str, object] | None] = [None] * len(rows)
    for image_name, image_rows in by_image.items():
        numbered = [(index + 2, row) for index, row in image_rows]  # line 1 is the header
        grades = explainer.grade(_image_patches(explainer, image_dir / image_name, table, numbered), task)
        for k, (index, row) in enumerate(image_rows):
            read_out = grade_row(grades, k, names, outside=explainer.config.outside(row.get("level")))
            out[index] = {"id": str(index + 1), **{c: read_out[c] for c in TABLE_SCORE_COLUMNS[1:]},
                          "ood": int(read_out["ood"]), **{carried[c]: row[c] for c in columns}}
    return [*TABLE_SCORE_COLUMNS, *carried.values()], out
