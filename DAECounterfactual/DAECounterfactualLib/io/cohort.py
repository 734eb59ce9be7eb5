"""The cases of a study folder: which image goes with which vertebra mask or centroid file.

A BIDS/VerSe folder is searched (all sub-folders) for images named ``sub-*_ct.nii.gz``, ``sub-*_T1w.nii.gz`` or
``sub-*_T2w.nii.gz`` (``.nii`` too; the suffix gives the modality) and for positions: vertebra masks
``sub-*_msk.nii.gz`` with a ``seg-vert`` entity (VerSe ``_seg-vert_msk``, TPTBox ``_seg-vert_label-22_msk``) or VerSe
centroid files ``sub-*_ctd.json`` (e.g. ``_seg-subreg_ctd.json``). An image and a positions file belong together
when their BIDS entities (``sub-``, ``ses-``, ``dir-``, ``label-``, ...) are the same, leaving out the derivative's
``seg-`` and, where it names one, requiring its ``mod-`` to be the image's suffix. A mask is taken before centroids
(it also holds TPTBox disc labels). Layouts these patterns miss are listed in a pairs CSV instead (``read_pairs``).
Nothing here reads an image: finding the cases of a large study is quick.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .volumes import Volume, VertebraPosition, positions_from_mask, read_verse_centroids, read_volume

IMAGE_SUFFIXES = {"ct": "CT", "T1w": "MR", "T2w": "MR"}  # BIDS suffix -> modality
NIFTI = (".nii.gz", ".nii")
MASK_ENDINGS = tuple("_msk" + n for n in NIFTI)
MASK_ENTITY = "seg-vert"
CENTROID_ENDING = "_ctd.json"
PATTERNS = ("images: sub-*_ct.nii[.gz], sub-*_T1w.nii[.gz], sub-*_T2w.nii[.gz]; positions: sub-*_seg-vert[_*]_msk.nii[.gz] "
            "(vertebra mask) or sub-*_ctd.json (VerSe centroids)")
PAIRS_COLUMNS = ("image", "mask", "centroids", "case", "modality")


@dataclass(frozen=True)
class CohortCase:
    """One image with the file of its vertebra (and disc) positions. ``positions`` is None where none was found
    (``missing`` says what was looked for); ``modality`` is None where the file name does not say."""

    case_id: str
    image: Path
    positions: Path | None
    kind: str = "mask"  # or "centroids"
    modality: str | None = None
    missing: str = ""

    def read(self) -> tuple[Volume, list[VertebraPosition]]:
        """The image and its target positions (InputError naming the file if either cannot be read)."""
        if self.positions is None:
            raise InputError(f"{self.image}: {self.missing}")
        volume = read_volume(self.image)
        if self.kind == "mask":
            return volume, positions_from_mask(read_volume(self.positions))
        return volume, read_verse_centroids(self.positions, volume)


def _strip(name: str, endings: tuple[str, ...]) -> str | None:
    for ending in endings:
        if name.endswith(ending):
            return name[: -len(ending)]
    return None


def _entities(stem: str) -> tuple[str, ...] | None:
    """The ``key-value`` parts of a BIDS name (without its suffix), or None if it does not start with ``sub-``."""
    parts = tuple(stem.split("_"))
    return parts if parts[0].startswith("sub-") and all("-" in p for p in parts) else None


def _image(path: Path) -> tuple[tuple[str, ...], str] | None:
    """(entities, suffix) of an image file name, or None."""
    stem = _strip(path.name, NIFTI)
    if stem is None or "_" not in stem:
        return None
    entities, suffix = stem.rsplit("_", 1)
    parts = _entities(entities)
    return (parts, suffix) if parts is not None and suffix in IMAGE_SUFFIXES else None


def _positions(path: Path) -> tuple[tuple[str, ...], str, str | None] | None:
    """(entities without seg-/mod-, kind, the mod- value or None) of a positions file name, or None."""
    if path.name.endswith(CENTROID_ENDING):
        stem, kind = path.name[: -len(CENTROID_ENDING)], "centroids"
    else:
        stem, kind = _strip(path.name, MASK_ENDINGS), "mask"
    parts = _entities(stem) if stem else None
    if parts is None or (kind == "mask" and MASK_ENTITY not in parts):
        return None
    mod = next((p[4:] for p in parts if p.startswith("mod-")), None)
    return tuple(p for p in parts if not p.startswith(("seg-", "mod-"))), kind, mod


def find_cases(folder: str | Path) -> list[CohortCase]:
    """Every image of a BIDS/VerSe study folder with its positions, sorted by case id. An image without a
    positions file is still a case (it fails with the reason when scored); a folder without a single pair is an
    InputError naming the patterns tried."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder (give the study folder, or list the cases with --pairs)")
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    images = [(path, *parsed) for path in files if (parsed := _image(path))]
    positions = [(path, *parsed) for path in files if (parsed := _positions(path))]
    names = {}
    for path, entities, suffix in images:
        names.setdefault(entities, []).append(suffix)
    cases = [_pair(path, entities, suffix, positions, len(set(names[entities])) > 1)
             for path, entities, suffix in images]
    if not any(case.positions for case in cases):
        found = f"{len(images)} image(s), but no positions file for any" if images else "no image matched"
        raise InputError(f"{folder}: no image/positions pairs found ({found}); patterns tried: {PATTERNS}. List "
                         "the cases of other layouts in a CSV with --pairs (columns image and mask or centroids)")
    return sorted(_unique(cases, folder, "the image name without its suffix"), key=lambda c: c.case_id)


def _pair(image: Path, entities, suffix: str, positions, keep_suffix: bool) -> CohortCase:
    matches = [(path, kind) for path, parts, kind, mod in positions
               if parts == entities and (mod is None or mod == suffix)]
    case_id = "_".join(entities + ((suffix,) if keep_suffix else ()))
    modality = IMAGE_SUFFIXES[suffix]
    for kind in ("mask", "centroids"):
        found = [path for path, k in matches if k == kind]
        if len(found) == 1:
            return CohortCase(case_id, image, found[0], kind, modality)
        if len(found) > 1:
            return CohortCase(case_id, image, None, modality=modality,
                              missing=f"several {kind} files match: {', '.join(map(str, found))}; list the one to "
                                      "use with --pairs")
    return CohortCase(case_id, image, None, modality=modality,
                      missing=f"no positions file found (looked for a vertebra mask or centroid file named by the "
                              f"entities {'_'.join(entities)}: *_seg-vert[_*]_msk.nii[.gz] or *_ctd.json)")


def _unique(cases: list[CohortCase], source: Path, case_id: str) -> list[CohortCase]:
    seen: dict[str, Path] = {}
    for case in cases:
        if case.case_id in seen:
            raise InputError(f"{source}: case {case.case_id!r} twice ({seen[case.case_id]} and {case.image}); "
                             f"each case id ({case_id}) must be unique")
        seen[case.case_id] = case.image
    return cases


def read_pairs(path: str | Path) -> list[CohortCase]:
    """Cases listed in a CSV: ``image`` and either ``mask`` or ``centroids`` per row (paths absolute or relative
    to the CSV's folder), optionally ``case`` (default: the image name without extension) and ``modality``
    (CT or MR: a case whose modality differs from the bundle's is not graded). Kept in the CSV's order."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows, columns = list(reader), reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{path}: cannot be read as a CSV table ({error})") from None
    if "image" not in columns or not {"mask", "centroids"} & set(columns):
        raise InputError(f"{path}: a pairs CSV needs the columns image and mask or centroids (has "
                         f"{', '.join(columns) or 'none'})")
    if not rows:
        raise InputError(f"{path}: the pairs CSV lists no cases")
    return _unique([_listed_case(path, line, row) for line, row in enumerate(rows, start=2)], path,
                   "the case column, else the image name")


def _listed_case(table: Path, line: int, row: dict[str, str | None]) -> CohortCase:
    def cell(name: str) -> str:
        return (row.get(name) or "").strip()

    given = [kind for kind in ("mask", "centroids") if cell(kind)]
    if not cell("image") or len(given) != 1:
        raise InputError(f"{table}, line {line}: needs an image and exactly one of mask or centroids")
    modality = cell("modality").upper().replace("MRI", "MR") or None
    if modality not in (None, "CT", "MR"):
        raise InputError(f"{table}, line {line}: modality {cell('modality')!r} is neither CT nor MR")
    image = table.parent / cell("image")
    case_id = cell("case") or (_strip(image.name, NIFTI) or image.name)
    return CohortCase(case_id, image, table.parent / cell(given[0]), given[0], modality)
