"""Per-vertebra score rows, from volumes or 2D image sets, and the scores CSV: shared by the CLI and the Logic.

Rows are graded in batches of model inputs cut by ``patches``; a row reads out one image's distance,
probability, calibrated score, grade, OOD flag and the reasons for the flag (``grade_row``).
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DAECFError, InputError
from ..io.files import atomic_write
from ..io.volumes import Volume, VertebraPosition, target_kind
from .patches import check_positions_inside, cut_patch, to_model_input, volume_value_range
from .screening import screen_volume
from .spine_axis import patch_tilts

if TYPE_CHECKING:  # rows and CSV need no torch; the explainer passed in brings it
    from ..bundle.spec import BundleConfig
    from .explainer import Explainer, Grades

SCORE_COLUMNS = ("id", "level", "kind", "r", "a", "s", "distance", "probability", "score", "grade", "grade_name",
                 "ood", "ood_score", "ood_reason", "caution")  # kind: vertebra or disc (empty for 2D images)


def grade_row(grades: Grades, n: int, grade_names: Sequence[str], warning: str = "", outside: str = ""
              ) -> dict[str, object]:
    """The read-out of image ``n`` as a row: distance, probability, score, grade, grade name, OOD flag, score and
    reasons.

    A ``warning`` from screening the image (e.g. an MRI given to a CT bundle) and ``outside`` (the target's level
    lies outside the bundle's training data, ``BundleConfig.outside``) raise the OOD flag like a far latent does;
    ``ood_reason`` says which, so no grade of such an image looks like an ordinary one. The warning is also kept
    on its own (``warning``, not a CSV column) for callers that print it once per image. ``caution`` is the task's
    (``TaskSpec.caution``: its grades missed their targets on real patients), on every row, flagged or not."""
    grade = int(grades.grade[n])
    reasons = [reason for reason in (warning, outside, latent_reason(grades, n)) if reason]
    return {"distance": float(grades.distance[n]), "probability": float(grades.probability[n]),
            "score": float(grades.score[n]), "grade": grade, "grade_name": grade_names[grade],
            "ood": bool(reasons), "ood_score": float(grades.ood_score[n]), "ood_reason": "; ".join(reasons),
            "caution": grades.caution, "warning": warning}


def latent_reason(grades: Grades, n: int) -> str:
    """Why image ``n``'s latent is flagged ("" if it is not): its OOD score against the bundle's threshold, and
    what the detector's latents are of."""
    if not grades.ood[n]:
        return ""
    threshold = f" > {grades.ood_threshold:.3g}" if np.isfinite(grades.ood_threshold) else ""
    unlike = f"those of {grades.ood_fitted_on}" if grades.ood_fitted_on else "the training images'"
    return f"its latent is unlike {unlike} (OOD score {float(grades.ood_score[n]):.3g}{threshold})"


def position_rows(config: BundleConfig, grades: Grades, grade_names: Sequence[str],
                  positions: Sequence[VertebraPosition], warning: str = "") -> list[dict[str, object]]:
    """One row per graded position: its label as id, level, kind, RAS and read-out; a level outside what the
    bundle was trained on flags the row (``BundleConfig.outside``). Shared by the CLI and the Logic's tables."""
    return [{"id": p.label, "level": p.level, "kind": target_kind(p.label), **_ras_columns(p.ras),
             **grade_row(grades, n, grade_names, warning, config.outside(p.level))} for n, p in enumerate(positions)]


def _ras_columns(point) -> dict[str, object]:
    return dict(zip("ras", ("", "", "") if point is None else (float(v) for v in point)))


def iter_volume_rows(explainer: Explainer, volume: Volume, positions: Sequence[VertebraPosition], task: str,
                     batch_size: int = 64) -> Iterator[list[dict[str, object]]]:
    """Rows of one batch of positions at a time (id = the position's label), so callers can write, report progress
    or stop between batches. A point outside the volume (checked for all points first) or in air is an
    InputError; an image unlike the bundle's modality flags every row (``screening``)."""
    if not positions:
        raise InputError(f"{volume.label}: no vertebra positions to score")
    config, names = explainer.config, explainer.bundle.task(task).grade_names
    warning = screen_volume(config, volume)
    check_positions_inside(volume, positions)
    tilts = patch_tilts(config, positions)
    value_range = volume_value_range(config, volume)
    for start in range(0, len(positions), batch_size):
        chunk = positions[start:start + batch_size]
        images = to_model_input(config, [cut_patch(config, volume, p.ras, tilt_deg=tilt)
                                         for p, tilt in zip(chunk, tilts[start:start + batch_size])], value_range)
        yield position_rows(config, explainer.grade(images, task), names, chunk, warning)


def iter_image_rows(explainer: Explainer, images: np.ndarray, ids: Sequence[str], task: str, batch_size: int = 64,
                    source: str = "images") -> Iterator[list[dict[str, object]]]:
    """Rows for 2D images in their original units (e.g. 8-bit photographs), preprocessed per image, one batch at
    a time. ``source`` names the images in errors (their file)."""
    config = explainer.config
    size, channels = config.model.image_size, config.model.in_channels
    if images.ndim != 4 or images.shape[1:] != (channels, size, size):
        raise InputError(f"{source}: bundle {config.name!r} expects images of {channels}×{size}×{size}, got "
                         f"{images.shape[1:]}")
    names = explainer.bundle.task(task).grade_names
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        grades = explainer.grade(np.stack([config.preprocessing.apply(image) for image in chunk]), task)
        yield [{"id": image_id, "level": "", "kind": "", **_ras_columns(None), **grade_row(grades, n, names)}
               for n, image_id in enumerate(ids[start:start + batch_size])]


# ----------------------------------------------------------------------------------------------------------------
# Scores CSV


def _csv_text(rows: Iterable[Mapping[str, object]], header: bool, columns: Sequence[str] = SCORE_COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows({k: int(v) if isinstance(v, bool) else v for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def write_scores_csv(rows: Sequence[Mapping[str, object]], path: str | Path,
                     columns: Sequence[str] = SCORE_COLUMNS) -> Path:
    """One row per vertebra or image with the ``columns``, at full precision; written atomically, so an
    existing file is replaced whole or not at all."""
    path = Path(path)
    atomic_write(path, lambda tmp: Path(tmp).write_text(_csv_text(rows, True, columns), encoding="utf-8"))
    return path


def read_scores_csv(path: str | Path, columns: Sequence[str] = SCORE_COLUMNS) -> list[dict[str, str]]:
    """The complete rows of a scores CSV written by ``ScoresFile`` (a last line cut short is left out)."""
    return [row for row, _end in _parse_scores(Path(path), columns)[1]]


def _parse_scores(path: Path, columns: Sequence[str]) -> tuple[int, list[tuple[dict[str, str], int]]]:
    """(bytes of the header line, [(row, bytes up to the end of the row)]) of the file's complete lines; a file
    that is not a scores CSV with these ``columns`` is an InputError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read this scores file ({error})") from None
    lines = text[:text.rfind("\n") + 1].splitlines(keepends=True)
    reader = csv.reader(lines)
    if next(reader, None) != list(columns):
        raise InputError(f"{path}: not a scores CSV (expected the header {','.join(columns)})")
    offsets = np.cumsum([0] + [len(line.encode("utf-8")) for line in lines])
    rows = [(dict(zip(columns, values)), int(offsets[reader.line_num])) for values in reader]
    return int(offsets[1]), rows


def check_writable(path: Path, folder: bool = False) -> None:
    """Refuse an output file (or ``folder``) that cannot be written, before any work is done: a probe file is
    created and removed in the nearest existing folder (permission bits say nothing for root or read-only mounts)."""
    path = Path(path)
    if path.is_dir() != folder and path.exists():
        raise InputError(f"{path}: is a {'file' if folder else 'folder'}; give a {'folder' if folder else 'file'} "
                         "name for the output")
    folder = path if folder else path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"{path}: cannot write here ({folder} is a file, not a folder)")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".daecf-write-test-")
    except OSError as error:
        raise InputError(f"{path}: cannot write here ({error.strerror or error})") from None
    os.close(fd)
    os.unlink(probe)


class ScoresFile:
    """A scores CSV that grows one batch of rows at a time, each batch flushed to disk, so an interrupted run
    keeps every finished row and ``resume=True`` continues it.

    Resuming reads the rows already there (``done``: the values of the ``key`` columns -> row, in file order). A
    last line cut short by the interruption is dropped, never parsed as a row. With ``group`` (a column), each
    append holds the whole group of rows sharing its value (e.g. every target of one case), and resuming drops
    the file's last group too, since an interruption may have cut it between two rows. A file created by this run
    is removed again if the run fails with an expected error (nothing partial is left behind); rows of an
    interrupted or resumed run stay.
    """

    def __init__(self, path: str | Path, resume: bool = False, columns: Sequence[str] = SCORE_COLUMNS,
                 key: Sequence[str] = ("id",), group: str | None = None):
        self.path = Path(path)
        self.columns, self.key, self.group = tuple(columns), tuple(key), group
        check_writable(self.path)
        self.resumed = resume and self.path.is_file()
        self._keep_bytes = 0  # of the resumed file: up to its last complete line (or group)
        self.done: dict[tuple[str, ...], dict[str, str]] = self._read_done() if self.resumed else {}
        self.written = 0
        self._handle = None
        self._created = False

    def _read_done(self) -> dict[tuple[str, ...], dict[str, str]]:
        """Rows of the file being resumed. Nothing is changed here: a refused file stays as it was, and the cut
        last row or group (if any) is dropped only when the first new rows are appended."""
        try:
            header_bytes, rows = _parse_scores(self.path, self.columns)
        except InputError as error:
            raise InputError(f"{error}; cannot resume from it") from None
        if self.group and rows:
            last = rows[-1][0][self.group]
            while rows and rows[-1][0][self.group] == last:
                rows.pop()
        self._keep_bytes = rows[-1][1] if rows else header_bytes
        return {tuple(row[k] for k in self.key): row for row, _end in rows}

    def check_positions(self, positions: Sequence[VertebraPosition]) -> None:
        """Rows already in the file must be the same vertebrae at the same places: else the CSV belongs to another
        input, and appending would mix two images in one table."""
        for position in positions:
            row = self.done.get((str(position.label),))
            if row is not None and not np.allclose(self._ras(row), position.ras, atol=1e-3):
                raise InputError(f"{self.path}: row {position.label} was scored at RAS "
                                 f"{[row[k] for k in 'ras']}, the input puts it at "
                                 f"{np.round(position.ras, 3).tolist()}; the CSV belongs to another input")

    def _ras(self, row: Mapping[str, str]) -> np.ndarray:
        try:
            return np.array([float(row[k]) for k in "ras"])
        except (TypeError, ValueError):
            raise InputError(f"{self.path}: row {row.get('id')} has no valid r, a, s columns "
                             f"{[row.get(k) for k in 'ras']}; cannot resume from this file") from None

    def append(self, rows: Sequence[Mapping[str, object]]) -> None:
        try:
            if self._handle is None:
                self._open()
            self._handle.write(_csv_text(rows, False, self.columns))
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as error:  # disk full, removed medium
            raise InputError(f"{self.path}: writing the scores failed ({error.strerror or error})") from None
        self.written += len(rows)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.resumed:
            with self.path.open("r+b") as handle:
                handle.truncate(self._keep_bytes)  # a row (or group) cut short by the interruption
            self._handle = self.path.open("a", newline="", encoding="utf-8")
        else:
            self._handle = self.path.open("w", newline="", encoding="utf-8")
            self._created = True
            self._handle.write(_csv_text([], True, self.columns))

    def __enter__(self) -> "ScoresFile":
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if self._handle is not None:
            self._handle.close()
            if exc_type is not None and issubclass(exc_type, DAECFError) and self._created:
                self.path.unlink(missing_ok=True)
        return False
