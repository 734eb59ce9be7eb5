"""Volume type, volume/point/grade readers and 2D dataset readers.

All geometry is kept in RAS millimetres (Slicer's world frame). Arrays are indexed ``[k, j, i]`` exactly like
SimpleITK's ``GetArrayFromImage`` and Slicer's ``arrayFromVolume``; the 4x4 ``ijk_to_ras`` maps homogeneous
``(i, j, k, 1)`` to RAS, like a volume node's IJKToRAS matrix. SimpleITK works in LPS, so every read and write
converts explicitly (one place: ``_sitk_to_volume`` / ``_volume_to_sitk``).

Every expected bad input raises ``InputError`` naming the file (or input) and the problem.
"""

from __future__ import annotations

import csv
import gzip
import json
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from ..errors import InputError
from .bodies import body_centroids

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
ORTHONORMAL_TOLERANCE = 1e-4
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
WRITABLE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha")

# VerSe vertebra ids (also TotalSegmentator's vertebrae classes). 28 is VerSe's id for a 13th thoracic vertebra.
LEVEL_NAMES: dict[int, str] = {
    **{i: f"C{i}" for i in range(1, 8)},
    **{i + 7: f"T{i}" for i in range(1, 13)},
    **{i + 19: f"L{i}" for i in range(1, 7)},
    26: "S1",
    28: "T13",
}
# TPTBox/VerSe masks also hold the disc below vertebra id as 100 + id and its endplates as 200 + id.
DISC_OFFSET, ENDPLATE_OFFSET = 100, 200
BELOW = {24: 26, 25: 26, 28: 20}  # L5 and L6 sit on S1; a 13th thoracic vertebra on L1; otherwise id + 1
LABELS_BY_LEVEL = {name: label for label, name in LEVEL_NAMES.items()}  # and the discs ('L4-L5' -> 123), below


# ----------------------------------------------------------------------------------------------------------------
# Volume


@dataclass
class Volume:
    """A scalar 3D image with its voxel-to-RAS geometry. Validated on creation, so every reader shares one check."""

    array: np.ndarray
    ijk_to_ras: np.ndarray
    name: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        self.ijk_to_ras = np.asarray(self.ijk_to_ras, dtype=np.float64)
        _validate_volume(self)

    @property
    def label(self) -> str:
        """What error messages call this volume: its file if it has one, else its name."""
        return self.source or self.name or "<volume>"

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size in mm along i, j, k (SimpleITK's GetSpacing order)."""
        return np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0)

    @property
    def direction(self) -> np.ndarray:
        """3x3 RAS direction cosines; column n is the RAS direction of voxel axis n (i, j, k)."""
        return self.ijk_to_ras[:3, :3] / self.spacing

    @property
    def origin(self) -> np.ndarray:
        """RAS position of the centre of voxel (0, 0, 0)."""
        return self.ijk_to_ras[:3, 3].copy()

    @property
    def ras_to_ijk(self) -> np.ndarray:
        return np.linalg.inv(self.ijk_to_ras)

    @property
    def shape_ijk(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.array.shape[::-1])

    def ijk_to_ras_points(self, ijk: np.ndarray) -> np.ndarray:
        """(N, 3) continuous voxel indices (i, j, k) to (N, 3) RAS mm."""
        return _apply_affine(self.ijk_to_ras, ijk)

    def ras_to_ijk_points(self, ras: np.ndarray) -> np.ndarray:
        """(N, 3) RAS mm to (N, 3) continuous voxel indices (i, j, k)."""
        return _apply_affine(self.ras_to_ijk, ras)

    def contains_ijk(self, ijk: np.ndarray) -> np.ndarray:
        """Whether continuous indices lie inside the voxel extent [-0.5, n - 0.5] on every axis."""
        ijk = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
        upper = np.asarray(self.shape_ijk, dtype=np.float64) - 0.5
        return np.all((ijk >= -0.5) & (ijk <= upper), axis=-1)

    def axis_codes(self) -> tuple[str, str, str]:
        """Closest anatomical axis codes of i, j, k, as ``nibabel.aff2axcodes`` gives them (e.g. ('P','I','R'))."""
        return axis_codes(self.direction)


def _apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def axis_codes(direction: np.ndarray) -> tuple[str, str, str]:
    """For each column of a direction matrix, the letter of the RAS axis it mostly points along."""
    direction = np.asarray(direction, dtype=np.float64)
    codes = []
    for column in direction.T:
        axis = int(np.argmax(np.abs(column)))
        codes.append(("R", "A", "S")[axis] if column[axis] > 0 else ("L", "P", "I")[axis])
    return tuple(codes)


def _validate_volume(volume: Volume) -> None:
    name, array, matrix = volume.label, volume.array, volume.ijk_to_ras
    if array.size == 0:
        raise InputError(f"{name}: the image is empty (shape {array.shape})")
    if array.ndim == 2:
        raise InputError(f"{name}: the image is 2D (shape {array.shape}); a 3D volume is needed")
    if array.ndim != 3:
        raise InputError(f"{name}: the image has {array.ndim} dimensions (shape {array.shape}); a 3D scalar volume is needed")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_) or np.iscomplexobj(array):
        raise InputError(f"{name}: voxel type {array.dtype} is not a real number type")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        nan, infinite = int(np.isnan(array).sum()), int(np.isinf(array).sum())
        raise InputError(f"{name}: the image contains NaN or infinite voxel values ({nan} NaN, {infinite} "
                         f"infinite of {array.size})")
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise InputError(f"{name}: the IJK-to-RAS matrix must be a finite 4x4 matrix")
    if not np.allclose(matrix[3], [0, 0, 0, 1]):
        raise InputError(f"{name}: the IJK-to-RAS matrix has a projective last row {matrix[3].tolist()}")
    spacing = np.linalg.norm(matrix[:3, :3], axis=0)
    if np.any(spacing <= 0):
        raise InputError(f"{name}: voxel spacing {spacing.tolist()} has a zero axis")
    direction = matrix[:3, :3] / spacing
    error = np.abs(direction.T @ direction - np.eye(3)).max()
    if error > ORTHONORMAL_TOLERANCE:
        raise InputError(f"{name}: the direction matrix is not orthonormal (sheared or skewed axes, error {error:.3g})")


# ----------------------------------------------------------------------------------------------------------------
# Reading and writing volumes (SimpleITK, LPS <-> RAS)


def read_volume(path: str | Path, series_id: str | None = None) -> Volume:
    """Read NIfTI, NRRD, MHA/MHD, or a DICOM series folder into a RAS ``Volume``.

    A folder holding several DICOM series needs ``series_id``; the error lists the ids found.
    """
    import SimpleITK as sitk

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    try:
        if path.is_dir():
            image = _read_dicom_series(path, series_id)
        else:
            _check_nifti_complete(path)
            image = sitk.ReadImage(str(path))
    except RuntimeError as error:  # SimpleITK reports unreadable files as RuntimeError
        first_line = str(error).strip().splitlines()[-1] if str(error).strip() else "unknown reason"
        raise InputError(f"{path}: cannot be read as an image ({first_line})") from error
    return _sitk_to_volume(image, source=str(path), name=_stem(path))


NIFTI_HEADERS = {348: ("h", 40, "h", 72, "f", 108, 70), 540: ("q", 16, "h", 14, "q", 168, 12)}  # NIfTI-1, -2:
# sizeof_hdr -> (dim type, dim offset, bitpix type, bitpix offset, vox_offset type, vox_offset offset, datatype offset)
NIFTI_FLOATS = {16: "f4", 64: "f8"}  # NIfTI datatype codes of float32 and float64 voxels


def _check_nifti_complete(path: Path) -> None:
    """Refuse a truncated NIfTI file, or one with NaN or infinite voxels. ITK reads a .nii or .nii.gz that ends
    early without complaint and fills the missing voxels with whatever it likes, and it reads NaN and infinite
    float voxels as 0, so the file itself is checked first: its size against the header, its float voxels."""
    name = path.name.lower()
    if not name.endswith((".nii", ".nii.gz")):
        return
    try:
        with path.open("rb") as raw:
            if name.endswith(".gz") and raw.read(2) != b"\x1f\x8b":
                return  # not gzip at all: ITK reports the file as unreadable
            raw.seek(0)
            with gzip.open(raw) if name.endswith(".gz") else raw as handle:
                header = handle.read(540)
                layout = _nifti_layout(header)
                counter = _NonFiniteCounter(header, layout[0], layout[2]) if layout and layout[2] else None
                size = len(header)
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    size += len(chunk)
                    if counter:
                        counter.add(chunk)
    except (OSError, EOFError, zlib.error) as error:  # unreadable, or gzip: truncated stream or bad CRC
        raise InputError(f"{path}: truncated, corrupt or unreadable file ({error})") from None
    if layout is not None and size < layout[1]:
        raise InputError(f"{path}: truncated file ({size} bytes of the {layout[1]} its header describes)")
    if counter and (counter.nan or counter.infinite):
        raise InputError(f"{path}: the image contains NaN or infinite voxel values ({counter.nan} NaN, "
                         f"{counter.infinite} infinite); ITK would read them as 0")


def _nifti_layout(header: bytes) -> tuple[int, int, str | None] | None:
    """(voxel data start, voxel data end, numpy float dtype or None) of a NIfTI-1/2 header; None if it is no
    NIfTI header (ITK then reports the file as unreadable)."""
    if len(header) < 348:
        return None
    for order in "<>":
        sizeof_hdr = struct.unpack_from(order + "i", header)[0]
        if sizeof_hdr not in NIFTI_HEADERS or len(header) < sizeof_hdr:
            continue
        dim_type, dim_at, bitpix_type, bitpix_at, offset_type, offset_at, datatype_at = NIFTI_HEADERS[sizeof_hdr]
        dims = struct.unpack_from(order + dim_type * 8, header, dim_at)
        bitpix = struct.unpack_from(order + bitpix_type, header, bitpix_at)[0]
        vox_offset = int(struct.unpack_from(order + offset_type, header, offset_at)[0])
        if not 1 <= dims[0] <= 7 or bitpix <= 0 or min(dims[1:dims[0] + 1]) < 1:
            return None
        end = vox_offset + int(np.prod(dims[1:dims[0] + 1], dtype=np.int64)) * bitpix // 8
        datatype = struct.unpack_from(order + "h", header, datatype_at)[0]
        return vox_offset, end, order + NIFTI_FLOATS[datatype] if datatype in NIFTI_FLOATS else None
    return None


class _NonFiniteCounter:
    """Counts NaN and infinite values of the float voxel data between ``start`` and the end, fed in chunks."""

    def __init__(self, header: bytes, start: int, dtype: str):
        self.dtype, self.nan, self.infinite = np.dtype(dtype), 0, 0
        self.skip = max(start - len(header), 0)
        self.pending = header[start:]

    def add(self, chunk: bytes) -> None:
        dropped = min(self.skip, len(chunk))
        self.skip -= dropped
        data = self.pending + chunk[dropped:]
        usable = len(data) - len(data) % self.dtype.itemsize
        values = np.frombuffer(data[:usable], self.dtype)
        self.nan += int(np.isnan(values).sum())
        self.infinite += int(np.isinf(values).sum())
        self.pending = data[usable:]


def _read_dicom_series(folder: Path, series_id: str | None):
    import SimpleITK as sitk

    ids = list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)) or ())
    if not ids:
        raise InputError(f"{folder}: the folder holds no DICOM series")
    if series_id is None:
        if len(ids) > 1:
            raise InputError(f"{folder}: the folder holds {len(ids)} DICOM series {ids}; choose one with series_id")
        series_id = ids[0]
    elif series_id not in ids:
        raise InputError(f"{folder}: no DICOM series {series_id!r}; found {ids}")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_id))
    return reader.Execute()


def _sitk_to_volume(image, source: str, name: str) -> Volume:
    import SimpleITK as sitk

    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"{source}: the image has {image.GetNumberOfComponentsPerPixel()} components per voxel; "
            "a scalar volume is needed"
        )
    array = sitk.GetArrayFromImage(image)
    if image.GetDimension() != 3:
        # Let the one validator word the error (2D, 4D, ...) from the array's shape.
        return Volume(array, np.eye(4), name=name, source=source)
    direction_lps = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    matrix = np.eye(4)
    matrix[:3, :3] = LPS_TO_RAS @ direction_lps @ np.diag(image.GetSpacing())
    matrix[:3, 3] = LPS_TO_RAS @ np.asarray(image.GetOrigin(), dtype=np.float64)
    return Volume(array, matrix, name=name, source=source)


def _volume_to_sitk(volume: Volume):
    import SimpleITK as sitk

    array = volume.array.astype(np.uint8) if volume.array.dtype == np.bool_ else volume.array
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing([float(s) for s in volume.spacing])
    image.SetDirection([float(v) for v in (LPS_TO_RAS @ volume.direction).ravel()])
    image.SetOrigin([float(v) for v in LPS_TO_RAS @ volume.origin])
    return image


def write_volume(volume: Volume, path: str | Path) -> Path:
    """Write NIfTI (.nii/.nii.gz), NRRD or MHA, keeping the RAS geometry. Returns the path."""
    import SimpleITK as sitk

    path = Path(path)
    if not path.name.lower().endswith(WRITABLE_SUFFIXES):
        raise InputError(f"{path}: unsupported output format; use one of {WRITABLE_SUFFIXES}")
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(_volume_to_sitk(volume), str(path), useCompression=path.name.lower().endswith((".gz", ".nrrd")))
    return path


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", *VOLUME_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


# ----------------------------------------------------------------------------------------------------------------
# Vertebra positions


@dataclass(frozen=True)
class VertebraPosition:
    label: int
    level: str
    ras: np.ndarray = field(compare=False)


def is_disc_label(label: int) -> bool:
    """A TPTBox/VerSe disc id: 100 + the id of the vertebra above the disc."""
    return int(label) - DISC_OFFSET in LEVEL_NAMES and int(label) - DISC_OFFSET != 26


def is_endplate_label(label: int) -> bool:
    """A TPTBox/VerSe endplate id (200 + vertebra id): part of a vertebra, never a target of its own."""
    return int(label) - ENDPLATE_OFFSET in LEVEL_NAMES


def disc_level_name(label: int) -> str:
    """Disc id -> 'L4-L5' (the vertebra above, then the one below)."""
    above = int(label) - DISC_OFFSET
    return f"{LEVEL_NAMES[above]}-{LEVEL_NAMES[BELOW.get(above, above + 1)]}"


LABELS_BY_LEVEL.update({disc_level_name(label): label
                        for label in (DISC_OFFSET + above for above in LEVEL_NAMES) if is_disc_label(label)})


def target_kind(label: int) -> str:
    """What a position's label points at: 'disc' for a TPTBox/VerSe disc id, else 'vertebra'."""
    return "disc" if is_disc_label(label) else "vertebra"


def level_name(label: int, rank_labels: bool = False) -> str:
    """VerSe id -> level name ('L1'), a disc id (100 + id) -> 'L4-L5'; with ``rank_labels`` the id is a rank
    (1 = most superior): 'rank N'."""
    label = int(label)
    if rank_labels:
        if label < 1:
            raise InputError(f"rank label {label} must be >= 1")
        return f"rank {label}"
    if is_disc_label(label):
        return disc_level_name(label)
    if label not in LEVEL_NAMES:
        raise InputError(
            f"vertebra label {label} is not a VerSe id (1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 26 S1, 28 T13, "
            "100 + id for the disc below it); pass rank_labels=True for rank-labelled masks"
        )
    return LEVEL_NAMES[label]


def _positions(labels: Iterable[int], ras: np.ndarray, rank_labels: bool) -> list[VertebraPosition]:
    return [
        VertebraPosition(int(label), level_name(label, rank_labels), np.asarray(point, dtype=np.float64))
        for label, point in zip(labels, ras)
    ]


def read_verse_centroids(json_path: str | Path, volume: Volume, rank_labels: bool = False) -> list[VertebraPosition]:
    """Read a VerSe ``*_ctd.json``: X/Y/Z are voxel indices along the NIfTI array axes 0/1/2 (= i, j, k)."""
    json_path = Path(json_path)
    entries = _load_json(json_path)
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict) or "direction" not in entries[0]:
        raise InputError(f"{json_path}: not a VerSe centroid file (expected a list starting with {{'direction': ...}})")
    codes = tuple(str(c) for c in entries[0]["direction"])
    if codes != volume.axis_codes():
        raise InputError(
            f"{json_path}: centroid axis codes {codes} differ from the image's {volume.axis_codes()} "
            f"({volume.label}); centroid file for another image?"
        )
    if len(entries) == 1:
        raise InputError(f"{json_path}: the centroid file lists no vertebrae (an empty point list)")
    labels, ijk = [], []
    for number, entry in enumerate(entries[1:], start=1):
        try:
            labels.append(int(entry["label"]))
            ijk.append([float(entry[key]) for key in ("X", "Y", "Z")])
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(f"{json_path}: entry {number} needs numeric 'label', 'X', 'Y', 'Z' ({error})") from error
    if len(set(labels)) != len(labels):
        raise InputError(f"{json_path}: a vertebra label occurs twice in {labels}")
    ijk = np.asarray(ijk, dtype=np.float64).reshape(-1, 3)
    if not np.all(np.isfinite(ijk)):
        raise InputError(f"{json_path}: a centroid coordinate is not finite")
    outside = ~volume.contains_ijk(ijk)
    if np.any(outside):
        first = int(np.argmax(outside))
        raise InputError(
            f"{json_path}: centroid of label {labels[first]} at voxel {ijk[first].tolist()} lies outside the image "
            f"{volume.label} (size {list(volume.shape_ijk)}); centroid file for another image?"
        )
    return _positions(labels, volume.ijk_to_ras_points(ijk), rank_labels)


def _label_ids(mask: Volume) -> np.ndarray:
    """The mask's array as integer ids (a label map saved as floats is read as its ids)."""
    values = np.asarray(mask.array)
    if values.dtype == np.bool_:
        return values.astype(np.uint8)
    if not np.issubdtype(values.dtype, np.integer):
        if not np.array_equal(values, np.round(values)):
            raise InputError(f"{mask.label}: a label mask must hold integer ids, found fractional values")
        values = values.astype(np.int64)
    return values


def centroids_from_mask(mask: Volume, rank_labels: bool = False, skip=lambda label: False) -> list[VertebraPosition]:
    """Centre of mass of every non-zero label of an instance mask (but those ``skip`` names), in RAS."""
    from scipy import ndimage

    values = _label_ids(mask)
    labels = [int(v) for v in np.unique(values) if v != 0 and not skip(int(v))]
    if not labels:
        raise InputError(f"{mask.label}: the mask contains no labelled voxels")
    kji = np.asarray(ndimage.center_of_mass(np.ones(values.shape), values, labels), dtype=np.float64).reshape(-1, 3)
    return _positions(labels, mask.ijk_to_ras_points(kji[:, ::-1]), rank_labels)


BODY_SUBREGIONS = (49, 50)  # TPTBox/VerSe subregion ids of the vertebral body (cortex, interior)


def vertebral_bodies(vertebra_mask: Volume, subregion_mask: Volume) -> Volume:
    """The vertebra ids of ``vertebra_mask`` kept where a TPTBox subregion mask marks the body: its centroids are
    the bodies', where a radiologist clicks, not the whole vertebrae's (about 10 mm posterior, towards the canal)."""
    if vertebra_mask.array.shape != subregion_mask.array.shape or not np.allclose(
            vertebra_mask.ijk_to_ras, subregion_mask.ijk_to_ras, atol=1e-3):
        raise InputError(f"{subregion_mask.label}: the subregion mask does not share the grid of "
                         f"{vertebra_mask.label}")
    bodies = np.where(np.isin(subregion_mask.array, BODY_SUBREGIONS), vertebra_mask.array, 0)
    return Volume(bodies, vertebra_mask.ijk_to_ras, name=f"{vertebra_mask.name} bodies")


def positions_from_mask(mask: Volume) -> list[VertebraPosition]:
    """Where to grade each vertebra and disc label: the vertebral body's centroid (``bodies``: a whole vertebra's
    centroid lies behind it), the disc's centroid. Levels from VerSe ids (discs 100 + id, endplates 200 + id left
    out), or ranks of every label when the mask holds other ids or its "cervical" ids lie as far apart as lumbar
    vertebrae (never a wrong level)."""
    ids = [int(v) for v in np.unique(np.asarray(mask.array)) if v != 0]
    verse = all(v in LEVEL_NAMES or is_disc_label(v) or is_endplate_label(v) for v in ids)
    positions = centroids_from_mask(mask, rank_labels=not verse,
                                    skip=is_endplate_label if verse else lambda label: False)
    if verse and max(ids) < DISC_OFFSET and _ranks_posing_as_cervical(positions):
        verse = False
        positions = [VertebraPosition(p.label, level_name(p.label, rank_labels=True), p.ras) for p in positions]
    bodies = body_centroids(_label_ids(mask), [p.label for p in positions if _has_body(p.label, verse)],
                            mask.spacing[::-1])
    return [VertebraPosition(p.label, p.level, mask.ijk_to_ras_points(bodies[p.label][None, ::-1])[0])
            if p.label in bodies else p for p in positions]


CERVICAL_GAP_MM = 22.0  # consecutive centroids of C1-T1 lie 13-19 mm apart, of thoracolumbar vertebrae 26 mm or more


def _ranks_posing_as_cervical(positions: list[VertebraPosition]) -> bool:
    """Whether ids 1-8 are ranks (1 = most superior, as in VB1's lumbar masks), not C1-T1: their consecutive
    centroids lie as far apart as thoracolumbar vertebrae do (docs/RESULTS.md)."""
    ras = {p.label: p.ras for p in positions if p.label <= 8}
    gaps = [float(np.linalg.norm(ras[label + 1] - ras[label])) for label in ras if label + 1 in ras]
    return bool(gaps) and float(np.median(gaps)) > CERVICAL_GAP_MM


def _has_body(label: int, verse: bool) -> bool:
    """Whether a mask label may hold a vertebral body: not a disc, not the atlas (C1 has none)."""
    return not verse or (not is_disc_label(label) and label != 1)


def positions_from_ras(
    points: Mapping[int, Iterable[float]] | Iterable[tuple[int, Iterable[float]]], rank_labels: bool = False
) -> list[VertebraPosition]:
    """Positions typed in (or from markups): {label: (x, y, z)} or [(label, (x, y, z)), ...] in RAS mm."""
    items = list(points.items()) if isinstance(points, Mapping) else list(points)
    labels, ras = [], []
    for label, point in items:
        point = np.asarray(point, dtype=np.float64)
        if point.shape != (3,) or not np.all(np.isfinite(point)):
            raise InputError(f"RAS point of label {label} must be 3 finite numbers, got {point.tolist()}")
        labels.append(int(label))
        ras.append(point)
    if len(set(labels)) != len(labels):
        raise InputError(f"RAS points: a vertebra label occurs twice in {labels}")
    return _positions(labels, np.asarray(ras).reshape(-1, 3), rank_labels)


def _load_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise InputError(f"{path}: no such file") from error
    except OSError as error:  # a folder, no permission, an I/O error
        raise InputError(f"{path}: cannot be read ({error.strerror or error})") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not valid JSON ({error})") from error


# ----------------------------------------------------------------------------------------------------------------
# Grades


GRADE_LABEL_COLUMNS = ("label", "vertebra", "mask_label")
GRADE_COLUMNS = ("grade", "morph_grade")


def read_grade_table(
    csv_path: str | Path, label_column: str | None = None, grade_column: str | None = None
) -> dict[tuple[str, int], int | None]:
    """Read (case, vertebra) -> grade from a CSV with columns case, label or vertebra, grade.

    The vertebra column may hold VerSe ids or level names ('L1'). An empty grade means "not graded" (None),
    as in the morphometry CSVs of the shared data; other columns are ignored.
    """
    csv_path = Path(csv_path)
    try:
        with csv_path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
            columns = rows[0].keys() if rows else []
    except FileNotFoundError as error:
        raise InputError(f"{csv_path}: no such file") from error
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{csv_path}: cannot be read as a CSV table ({error})") from error
    if not rows:
        raise InputError(f"{csv_path}: the grade table has no rows")
    label_column = label_column or _first_present(csv_path, columns, GRADE_LABEL_COLUMNS)
    grade_column = grade_column or _first_present(csv_path, columns, GRADE_COLUMNS)
    for column in ("case", label_column, grade_column):
        if column not in columns:
            raise InputError(f"{csv_path}: missing column {column!r} (columns: {list(columns)})")
    table: dict[tuple[str, int], int | None] = {}
    for line, row in enumerate(rows, start=2):
        key = (row["case"].strip(), _parse_vertebra(csv_path, line, row[label_column]))
        if key in table:
            raise InputError(f"{csv_path}: line {line}: case {key[0]} vertebra {key[1]} is listed twice")
        table[key] = _parse_grade(csv_path, line, row[grade_column])
    return table


def _first_present(path: Path, columns: Iterable[str], candidates: tuple[str, ...]) -> str:
    present = [c for c in candidates if c in columns]
    if not present:
        raise InputError(f"{path}: needs one of the columns {list(candidates)} (columns: {list(columns)})")
    return present[0]


def _parse_vertebra(path: Path, line: int, text: str) -> int:
    text = text.strip()
    if text.upper() in LABELS_BY_LEVEL:
        return LABELS_BY_LEVEL[text.upper()]
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{path}: line {line}: vertebra {text!r} is neither a label id nor a level name") from None


def _parse_grade(path: Path, line: int, text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        grade = float(text)
    except ValueError:
        raise InputError(f"{path}: line {line}: grade {text!r} is not a number") from None
    if grade != int(grade) or not 0 <= grade <= 3:
        raise InputError(f"{path}: line {line}: grade {text!r} is not a Genant grade 0-3")
    return int(grade)


def join_grades(
    positions: Iterable[VertebraPosition], grades: Mapping[tuple[str, int], int | None], case: str
) -> list[tuple[VertebraPosition, int | None]]:
    """Pair each position of ``case`` with its grade (None when the table has no grade for it).

    A graded vertebra of this case without a position means the table and the points disagree: error.
    """
    positions = list(positions)
    pairs = [(p, grades.get((case, p.label))) for p in positions]
    known = {p.label for p in positions}
    orphans = sorted(label for (c, label), g in grades.items() if c == case and g is not None and label not in known)
    if orphans:
        raise InputError(f"grade table: case {case} grades vertebrae {orphans} that have no position")
    return pairs


# ----------------------------------------------------------------------------------------------------------------
# 2D datasets


@dataclass
class ImageSet:
    """2D images as float32 N x C x H x W (original intensities) with integer labels (None when unlabelled)."""

    images: np.ndarray
    labels: np.ndarray | None
    names: list[str]
    source: str


MIN_SIDE, MAX_SIDE = 28, 224
CHANNEL_COUNTS = (1, 3, 4)


def read_npz_dataset(path: str | Path, split: str) -> ImageSet:
    """Read one split of a MedMNIST-style ``.npz`` (``{split}_images``, ``{split}_labels``) without pickle."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = sorted(archive.files)
            image_key, label_key = f"{split}_images", f"{split}_labels"
            missing = [k for k in (image_key, label_key) if k not in keys]
            if missing:
                raise InputError(f"{path}: missing array(s) {missing} for split {split!r}; the file has {keys}")
            images, labels = archive[image_key], archive[label_key]
    except InputError:
        raise
    except FileNotFoundError as error:
        raise InputError(f"{path}: no such file") from error
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        # object arrays (would need pickle), not an npz at all, or a truncated one
        raise InputError(f"{path}: cannot be read as a numpy .npz without pickle ({error})") from error
    images = _images_to_nchw(f"{path} [{image_key}]", images)
    labels = _integer_labels(f"{path} [{label_key}]", labels, len(images))
    names = [f"{split}_{n:05d}" for n in range(len(images))]
    return ImageSet(images, labels, names, str(path))


def _images_to_nchw(name: str, images: np.ndarray) -> np.ndarray:
    if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise InputError(f"{name}: image type {images.dtype} is not an integer or float type")
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[1] in CHANNEL_COUNTS:
        pass
    elif images.ndim == 4 and images.shape[3] in CHANNEL_COUNTS:
        images = images.transpose(0, 3, 1, 2)
    else:
        raise InputError(f"{name}: images of shape {images.shape} are not N x H x W, N x H x W x C or N x C x H x W")
    if images.shape[0] == 0:
        raise InputError(f"{name}: the split holds no images")
    height, width = images.shape[2:]
    if not (MIN_SIDE <= height <= MAX_SIDE and MIN_SIDE <= width <= MAX_SIDE):
        raise InputError(f"{name}: images are {height} x {width} px; {MIN_SIDE}-{MAX_SIDE} px per side are supported")
    images = images.astype(np.float32)
    if not np.all(np.isfinite(images)):
        raise InputError(f"{name}: images contain NaN or infinite values")
    return images


def _integer_labels(name: str, labels: np.ndarray, count: int) -> np.ndarray:
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise InputError(f"{name}: labels of shape {labels.shape} are not one label per image (N or N x 1)")
    if len(labels) != count:
        raise InputError(f"{name}: {len(labels)} labels for {count} images")
    if not (np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)):
        raise InputError(f"{name}: label type {labels.dtype} is not numeric")
    if not np.all(np.isfinite(labels)) or not np.array_equal(labels, np.round(labels)):
        raise InputError(f"{name}: labels must be whole numbers")
    return labels.astype(np.int64)


IMAGE_FILE_SUFFIXES = (".png", ".nii", ".nii.gz")


def read_image_folder(path: str | Path) -> ImageSet:
    """Read a folder of PNG or 2D NIfTI images (all the same size), sorted by name.

    Images in sub-folders named by an integer (``0/``, ``1/``, ...) get that integer as label, like an
    image-folder dataset; images directly in the folder are unlabelled.
    """
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: not a folder")
    files = sorted(f for f in path.rglob("*") if f.is_file() and f.name.lower().endswith(IMAGE_FILE_SUFFIXES))
    if not files:
        raise InputError(f"{path}: the folder holds no PNG or NIfTI images")
    labels = [_folder_label(path, f) for f in files]
    if any(label is None for label in labels) and any(label is not None for label in labels):
        raise InputError(f"{path}: mixes labelled (integer sub-folder) and unlabelled images")
    arrays = [read_2d_image(f) for f in files]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise InputError(f"{path}: images differ in size or channels {sorted(shapes)}")
    images = _images_to_nchw(str(path), np.stack(arrays))
    names = [str(f.relative_to(path)) for f in files]
    return ImageSet(images, None if labels[0] is None else np.asarray(labels, dtype=np.int64), names, str(path))


def _folder_label(root: Path, file: Path) -> int | None:
    parent = file.parent
    if parent == root:
        return None
    try:
        return int(parent.relative_to(root).parts[0])
    except ValueError:
        raise InputError(f"{file}: sub-folder {parent.name!r} is not an integer label") from None


def read_2d_image(file: Path) -> np.ndarray:
    """H x W (grey) or H x W x C array of one image file."""
    if file.name.lower().endswith(".png"):
        from PIL import Image

        try:
            with Image.open(file) as image:
                array = np.asarray(image.convert("RGB") if image.mode in ("P", "CMYK", "YCbCr") else image)
        except OSError as error:
            raise InputError(f"{file}: cannot be read as PNG ({error})") from error
        return array
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(file))
    except RuntimeError as error:
        raise InputError(f"{file}: cannot be read as NIfTI") from error
    array = sitk.GetArrayFromImage(image)
    squeezed = np.squeeze(array) if image.GetNumberOfComponentsPerPixel() == 1 else array.reshape(array.shape[-3:])
    if squeezed.ndim != 2 and not (squeezed.ndim == 3 and squeezed.shape[-1] in CHANNEL_COUNTS):
        raise InputError(f"{file}: not a 2D slice (shape {array.shape})")
    return squeezed
