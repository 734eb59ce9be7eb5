"""Morphometry of vertebral bodies, simulated fractures and CT-like spine phantoms.

2D images here follow the patch convention of ``geometry``: columns run anterior -> posterior, rows run
superior -> inferior (``superior_up=False`` in ``morphometry`` flips the row sense for other sources).

Morphometry follows the shared data's ``tools/morphometry.py`` in simplified form: the body mask (largest
component, holes filled) is resampled to a quarter-pixel grid; the four corners are the mask points extreme along
the diagonals of the (depth, height) frame, whose depth axis is re-estimated twice from the endplates;
Ha = |AS - AI|, Hp = |PS - PI|, Hm = the longest mask chord along the height axis through the middle (median over
+-1 mm); height_loss = 1 - min(Ha, Hm) / Hp and Genant grades G0 < 0.20 <= G1 < 0.25 <= G2 < 0.40 <= G3.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.io.volumes import LEVEL_NAMES, Volume, VertebraPosition, centroids_from_mask, write_volume

GENANT_CUTOFFS = (0.20, 0.25, 0.40)
FRACTURE_KINDS = ("wedge", "biconcave", "crush")
MAX_HEIGHT_LOSS = 0.8


def genant_grade(height_loss: float) -> int:
    """Genant semi-quantitative grade from a height loss ratio: G0 < 0.20 <= G1 < 0.25 <= G2 < 0.40 <= G3."""
    return int(np.searchsorted(GENANT_CUTOFFS, height_loss, side="right"))


# ----------------------------------------------------------------------------------------------------------------
# Morphometry


@dataclass
class Heights:
    ha: float  # anterior height, mm
    hm: float  # middle height, mm
    hp: float  # posterior height, mm
    height_loss: float  # 1 - min(ha, hm) / hp
    grade: int  # Genant grade of height_loss
    corners_mm: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


def _pair(value: float | tuple[float, float], what: str) -> tuple[float, float]:
    row, column = (value, value) if np.isscalar(value) else tuple(value)
    if not (np.isfinite(row) and np.isfinite(column) and row > 0 and column > 0):
        raise InputError(f"{what} must be positive millimetres, got {value}")
    return float(row), float(column)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labelled, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(labelled.ravel())
    sizes[0] = 0
    return labelled == np.argmax(sizes)


def _fine_points(mask: np.ndarray, spacing: tuple[float, float], superior_up: bool, step: float):
    """Mask pixels resampled bilinearly onto a ``step`` mm grid, as (N, 2) (depth -> anterior, height -> superior)
    points, plus a function telling whether (depth, height) points lie inside that fine mask."""
    row_mm, column_mm = spacing
    rows, columns = np.nonzero(mask)
    y = np.arange((rows.min() - 2) * row_mm, (rows.max() + 2) * row_mm, step)
    x = np.arange((columns.min() - 2) * column_mm, (columns.max() + 2) * column_mm, step)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    fine = ndimage.map_coordinates(mask.astype(np.float32), [yy / row_mm, xx / column_mm], order=1) >= 0.5
    fine = _largest_component(fine)
    height_sign = -1.0 if superior_up else 1.0  # rows grow downwards when superior is up

    def to_points(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return np.stack([-xs, height_sign * ys], axis=-1)

    def inside(points: np.ndarray) -> np.ndarray:
        ys, xs = height_sign * points[..., 1], -points[..., 0]
        index = [(ys - y[0]) / step, (xs - x[0]) / step]
        return ndimage.map_coordinates(fine.astype(np.float32), index, order=0, cval=0.0) > 0.5

    return to_points(yy[fine], xx[fine]), inside


def _corners(points: np.ndarray, u: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    centred = points - points.mean(axis=0)
    s, t = centred @ u, centred @ v
    s = s / max(np.ptp(s), 1e-9)
    t = t / max(np.ptp(t), 1e-9)
    return {
        "AS": points[np.argmax(s + t)],
        "AI": points[np.argmax(s - t)],
        "PS": points[np.argmax(-s + t)],
        "PI": points[np.argmax(-s - t)],
    }


def _longest_runs(inside: np.ndarray) -> np.ndarray:
    """Length (in samples) of the longest run of True in each row."""
    padded = np.pad(inside.astype(np.int8), ((0, 0), (1, 1)))
    edges = np.diff(padded, axis=1)
    runs = np.zeros(len(inside))
    for n, row in enumerate(edges):
        starts, ends = np.nonzero(row == 1)[0], np.nonzero(row == -1)[0]
        runs[n] = (ends - starts).max() if starts.size else 0
    return runs


def morphometry(
    mask_2d: np.ndarray, spacing_mm: float | tuple[float, float] = 1.0, superior_up: bool = True, band_mm: float = 1.0
) -> Heights:
    """Anterior/middle/posterior heights of the vertebral body in a sagittal mask (rows, columns) -> ``Heights``.

    ``spacing_mm``: pixel size, scalar or (row, column). Columns must run anterior -> posterior.
    """
    spacing = _pair(spacing_mm, "morphometry spacing")
    mask = np.asarray(mask_2d)
    if mask.ndim != 2:
        raise InputError(f"morphometry needs a 2D mask, got shape {mask.shape}")
    mask = _largest_component(ndimage.binary_fill_holes(mask > 0))
    if mask.sum() < 4:
        raise InputError("morphometry: the body mask is empty (or a few pixels only)")
    step = min(spacing) / 4.0
    points, inside = _fine_points(mask, spacing, superior_up, step)
    u, v = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    for _ in range(2):  # the depth axis follows the endplates, so a tilted body is measured along its own axes
        c = _corners(points, u, v)
        direction = (c["AS"] - c["PS"]) + (c["AI"] - c["PI"])
        u = direction / np.linalg.norm(direction)
        v = np.array([-u[1], u[0]]) if u[0] >= 0 else np.array([u[1], -u[0]])
    c = _corners(points, u, v)
    ha, hp = float(np.linalg.norm(c["AS"] - c["AI"])), float(np.linalg.norm(c["PS"] - c["PI"]))
    centre = points.mean(axis=0)
    middle = np.mean([(corner - centre) @ u for corner in c.values()])
    heights_t = (points - centre) @ v
    t = np.arange(heights_t.min() - 2.0, heights_t.max() + 2.0, step)
    offsets = np.arange(-band_mm, band_mm + 1e-9, step)
    lines = centre + (middle + offsets)[:, None, None] * u + t[None, :, None] * v
    hm = float(np.median(_longest_runs(inside(lines)))) * step
    if hp <= 0:
        raise InputError("morphometry: the posterior height is zero (degenerate mask)")
    loss = 1.0 - min(ha, hm) / hp
    return Heights(ha, hm, hp, float(loss), genant_grade(loss), c)


def component_at_centre(image_2d: np.ndarray, threshold: float) -> np.ndarray:
    """The connected region above ``threshold`` that contains (or lies nearest to) the image centre."""
    image = np.asarray(image_2d, dtype=np.float64)
    above = image > threshold
    if not above.any():
        raise InputError(f"no pixel of the image is above the threshold {threshold}")
    labelled, _ = ndimage.label(above)
    centre = tuple(int(round((n - 1) / 2)) for n in image.shape)
    if labelled[centre] == 0:
        _, (rows, columns) = ndimage.distance_transform_edt(labelled == 0, return_indices=True)
        centre = (rows[centre], columns[centre])
    return labelled == labelled[centre]


def morphometry_from_image(
    image_2d: np.ndarray, threshold: float, spacing_mm: float | tuple[float, float] = 1.0, superior_up: bool = True
) -> Heights:
    """Heights of the bright body at the centre of an image (e.g. a counterfactual patch), thresholded."""
    return morphometry(component_at_centre(image_2d, threshold), spacing_mm, superior_up)


# ----------------------------------------------------------------------------------------------------------------
# Fracture simulation


@dataclass
class Fracture:
    image: np.ndarray
    mask: np.ndarray
    heights: Heights  # measured after the deformation
    heights_before: Heights
    source_rows: np.ndarray  # backward map: output pixel (r, c) samples the input at row source_rows[r, c]


def _endplates(mask: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Anterior/posterior column extent and smooth per-column rows of the superior and inferior endplates.

    The profiles are widened (min/max filter) before smoothing so that every body pixel lies between them:
    a body pixel above the superior profile would be stretched with the disc instead of compressed.
    """
    columns = np.nonzero(mask.any(axis=0))[0]
    rows = np.arange(mask.shape[0])[:, None]
    top = np.where(mask[:, columns], rows, np.inf).min(axis=0)
    bottom = np.where(mask[:, columns], rows, -np.inf).max(axis=0)
    all_columns = np.arange(mask.shape[1], dtype=np.float64)
    top = ndimage.gaussian_filter1d(ndimage.minimum_filter1d(np.interp(all_columns, columns, top), 5), 1.5)
    bottom = ndimage.gaussian_filter1d(ndimage.maximum_filter1d(np.interp(all_columns, columns, bottom), 5), 1.5)
    return float(columns[0]), float(columns[-1]), top - 0.5, bottom + 0.5


def _profile(kind: str, columns: np.ndarray, anterior: float, posterior: float) -> np.ndarray:
    """Relative endplate drop per column: 1 = the full depression, 0 = untouched."""
    depth = max(posterior - anterior, 1.0)
    x = (columns - anterior) / depth  # 0 at the anterior wall, 1 at the posterior wall
    if kind == "wedge":
        return np.clip(1.0 - x, 0.0, 1.0)
    if kind == "biconcave":
        return 0.5 * (1.0 - np.cos(2.0 * np.pi * np.clip(x, 0.0, 1.0)))
    outside = np.maximum(-x, x - 1.0).clip(min=0.0) / 0.2  # crush: whole endplate, tapering over 20 % depth
    ramp = np.clip(1.0 - outside, 0.0, 1.0)
    return ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep


def _disc_margin(top: np.ndarray, neighbours: np.ndarray | None, default: float) -> np.ndarray:
    """Per column, how far above the superior endplate the deformation may stretch: ``default``, but never into
    the body above (``neighbours``: the other bodies in the patch), so the height the body loses fills with disc,
    as in a real fracture, instead of with the neighbour's endplate drawn out in streaks."""
    margin = np.full(top.shape, default)
    if neighbours is None or not neighbours.any():
        return margin
    rows = np.arange(neighbours.shape[0], dtype=np.float64)[:, None]
    above = np.where(neighbours & (rows < top[None, :]), rows, -np.inf).max(axis=0)  # lowest neighbour row above
    gap = top - above - 1.0
    return np.where(np.isfinite(gap), np.clip(gap, 1.0, default), margin)


def _source_rows(shape: tuple[int, int], top: np.ndarray, bottom: np.ndarray, drop: np.ndarray,
                 margin: float | np.ndarray, shift: np.ndarray | float = 0.0) -> np.ndarray:
    """Backward row map of a deformation that moves the superior endplate down by ``drop`` (pixels, per column),
    compresses the body linearly between it and the fixed inferior endplate, moves everything above the disc down
    by ``shift`` (<= drop: the spine above follows the collapse) and stretches the disc above, over ``margin``
    pixels, by the rest. Identity below the body; continuous and monotonic in every column."""
    rows = np.arange(shape[0], dtype=np.float64)[:, None]
    start = top - margin
    new_top = top + drop
    disc = start + (rows - start - shift) * margin / (margin + drop - shift)
    body = top + (rows - new_top) * (bottom - top) / np.maximum(bottom - new_top, 1e-6)
    above = rows - shift
    return np.where(rows <= start + shift, above,
                    np.where(rows <= new_top, disc, np.where(rows < bottom, body, rows)))


def _warp_rows(array: np.ndarray, source_rows: np.ndarray, order: int) -> np.ndarray:
    columns = np.broadcast_to(np.arange(array.shape[1], dtype=np.float64), array.shape)
    return ndimage.map_coordinates(array, [source_rows, columns], order=order, mode="nearest")


def achieved_height_loss(kind: str, before: Heights, after: Heights) -> float:
    """Height loss a fracture achieved: the Genant ratio, except for crush, which keeps the body's shape ratios
    and is measured against its own posterior height before."""
    return 1.0 - after.hp / before.hp if kind == "crush" else after.height_loss


def simulate_fracture(
    image_2d: np.ndarray,
    body_mask_2d: np.ndarray,
    height_loss: float,
    kind: str = "wedge",
    spacing_mm: float | tuple[float, float] = 1.0,
    iterations: int = 4,
    neighbours_2d: np.ndarray | None = None,
    spine_follows: bool = False,
) -> Fracture:
    """Deform a sagittal patch so the body loses ``height_loss`` of its height.

    wedge lowers the anterior superior endplate, biconcave its middle, crush all of it; the body's interior is
    compressed consistently and the disc above stretched, by one smooth row-wise deformation applied to image
    and mask. For wedge and biconcave the target is the morphometric height_loss = 1 - min(Ha, Hm) / Hp; for
    crush it is the loss of posterior height against the body before. A few measure-and-correct iterations make
    the measured loss match the request. ``neighbours_2d``: a mask of the other bodies in the patch (real scans,
    where the disc above is thinner than the default stretch): the stretch stops short of them.
    ``spine_follows``: in wedge and crush fractures everything above the disc moves down with the collapsing
    endplate (the segment shortens and tilts, as in a real collapse) instead of the disc stretching to fill the
    lost height; rows above the patch are needed for that, so give an image taller than the region of interest.
    Biconcave depressions are always filled by the disc.
    """
    if kind not in FRACTURE_KINDS:
        raise InputError(f"unknown fracture kind {kind!r}; expected one of {FRACTURE_KINDS}")
    if not 0.0 < height_loss < MAX_HEIGHT_LOSS:
        raise InputError(f"height_loss must lie in (0, {MAX_HEIGHT_LOSS}), got {height_loss}")
    image = np.asarray(image_2d, dtype=np.float32)
    mask = _largest_component(ndimage.binary_fill_holes(np.asarray(body_mask_2d) > 0))
    if image.shape != mask.shape:
        raise InputError(f"image {image.shape} and body mask {mask.shape} differ in shape")
    row_mm, _ = spacing = _pair(spacing_mm, "fracture spacing")
    before = morphometry(mask, spacing)
    anterior, posterior, top, bottom = _endplates(mask)
    weights = _profile(kind, np.arange(mask.shape[1], dtype=np.float64), anterior, posterior)
    start = {"wedge": before.ha, "biconcave": before.hm, "crush": before.hp}[kind]
    drop_mm = before.hp * height_loss if kind == "crush" else start - (1.0 - height_loss) * before.hp
    if drop_mm <= 0:
        raise InputError(f"the body already has height loss {before.height_loss:.2f} >= the requested {height_loss}")
    neighbours = None if neighbours_2d is None else np.asarray(neighbours_2d) > 0
    if neighbours is not None and neighbours.shape != mask.shape:
        raise InputError(f"neighbour mask {neighbours.shape} and body mask {mask.shape} differ in shape")
    margin = _disc_margin(top, neighbours, 0.35 * float(np.median(bottom - top)))
    follows = spine_follows and kind != "biconcave"
    best = None
    for _ in range(iterations):
        drop = weights * drop_mm / row_mm
        rows = _source_rows(mask.shape, top, bottom, drop, margin, drop if follows else 0.0)
        warped_mask = _warp_rows(mask.astype(np.float32), rows, order=1) >= 0.5
        after = morphometry(warped_mask, spacing)
        error = height_loss - achieved_height_loss(kind, before, after)
        if best is None or abs(error) < abs(best[0]):
            best = (error, rows, warped_mask, after)
        if abs(error) < 0.005:
            break
        drop_mm += error * before.hp
    _, rows, warped_mask, after = best
    return Fracture(_warp_rows(image, rows, order=1), warped_mask, after, before, rows)


# ----------------------------------------------------------------------------------------------------------------
# Spine phantom

HU = {"air": -1000.0, "fat": -100.0, "soft": 30.0, "disc": 80.0, "cancellous": 200.0, "cortical": 700.0,
      "posterior_bone": 450.0, "canal": 15.0, "muscle": 50.0}
CORTEX_MM = 1.5


@dataclass
class Phantom:
    volume: Volume  # HU, float32, RAS-aligned (i -> R, j -> A, k -> S)
    mask: Volume  # vertebral-body instance mask with VerSe ids, uint8
    positions: list[VertebraPosition]
    grades: dict[int, int]  # Genant grade per label (0 for an intact body)
    height_loss: dict[int, float]  # requested loss per fractured label, 0 otherwise
    kinds: dict[int, str]  # fracture kind per label, '' when intact
    case: str


def _phantom_layout(rng: np.random.Generator, labels: tuple[int, ...], extent_z: float) -> dict[str, np.ndarray]:
    """Per-vertebra centre heights (mm, superior first), body heights and radii, varying by seed and level."""
    n = len(labels)
    pitch = 0.92 * extent_z / n
    centres = (n * pitch) / 2 - pitch / 2 - pitch * np.arange(n)
    level_scale = np.where(np.asarray(labels) >= 20, 1.0, 0.86)  # thoracic bodies are smaller than lumbar
    return {
        "z": centres,
        "height": pitch * 0.76 * rng.uniform(0.94, 1.06, n),
        "rx": 21.0 * level_scale * rng.uniform(0.92, 1.08, n),
        "ry": 15.5 * level_scale * rng.uniform(0.92, 1.08, n),
    }


def _phantom_hu(x, y, z, layout, curve_y, curve_x, extent_xy) -> tuple[np.ndarray, np.ndarray]:
    """HU image and body index map (-1 outside bodies) of the clean phantom on broadcast grids x, y, z (mm)."""
    n = len(layout["z"])
    pitch = layout["z"][0] - layout["z"][1] if n > 1 else layout["height"][0] / 0.76
    index = np.clip(np.round((layout["z"][0] - z) / pitch), 0, n - 1).astype(int)  # nearest vertebra
    dz = z - layout["z"][index]
    half = layout["height"][index] / 2
    rx, ry = layout["rx"][index], layout["ry"][index]
    yc, xc = curve_y(z), curve_x(z)
    rho = np.sqrt(((x - xc) / rx) ** 2 + ((y - yc) / ry) ** 2)
    body = (np.abs(dz) <= half) & (rho <= 1.0)
    cortex = body & (((1.0 - rho) * np.minimum(rx, ry) < CORTEX_MM) | (half - np.abs(dz) < CORTEX_MM))
    canal_y = yc - ry - 9.5
    canal_r = np.hypot(x - xc, y - canal_y)
    arch_z = np.abs(dz) <= 0.35 * 2 * half
    arch = arch_z & (canal_r >= 8.0) & (canal_r < 12.0) & (y < yc - ry * 0.8)
    spinous = (np.abs(x - xc) < 3.0) & (y < canal_y - 11.0) & (y > canal_y - 34.0) & (np.abs(dz + 0.1 * half) < 0.5 * half)
    ax, ay = extent_xy
    outline = (x / (0.58 * ax)) ** 2 + ((y + 0.02 * ay) / (0.62 * ay)) ** 2
    psoas = (((np.abs(x) - 0.27 * ax) / 9.0) ** 2 + ((y - yc + 4.0) / 12.0) ** 2) <= 1.0
    hu = np.select(
        [outline > 1.0, outline > 0.8, cortex, body, rho <= 1.0, arch | spinous, canal_r < 8.0, psoas],
        [HU["air"], HU["fat"], HU["cortical"], HU["cancellous"], HU["disc"], HU["posterior_bone"], HU["canal"], HU["muscle"]],
        default=HU["soft"],
    ).astype(np.float32)
    return hu, np.where(body, index, -1)


def make_spine_phantom(
    seed: int = 0,
    shape: tuple[int, int, int] = (128, 96, 96),
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    fractures: dict[int, tuple[float, str]] | None = None,
    labels: tuple[int, ...] = (20, 21, 22),
    noise_hu: float = 20.0,
    case: str | None = None,
) -> Phantom:
    """A CT-like spine phantom (HU) with its vertebral-body mask (VerSe ids) and optional simulated fractures.

    ``shape`` is the array shape (superior-inferior, anterior-posterior, left-right) and ``spacing`` the voxel
    size in mm along the same axes; array axes k, j, i run towards S, A, R. ``labels`` (VerSe ids, superior
    first) are stacked to fill the height; ``fractures`` maps a label to (height_loss, kind). Each fracture's
    deformation is computed on the body's mid-sagittal slice and applied to every sagittal slice.
    """
    fractures = dict(fractures or {})
    unknown = sorted(set(fractures) - set(labels))
    if unknown:
        raise InputError(f"fractures name vertebrae {unknown} that the phantom does not have (labels {list(labels)})")
    if any(label not in LEVEL_NAMES for label in labels) or list(labels) != sorted(labels):
        raise InputError(f"phantom labels must be ascending VerSe ids (superior first), got {list(labels)}")
    rng = np.random.default_rng(seed)
    nk, nj, ni = shape
    sk, sj, si = spacing
    ijk_to_ras = np.diag([si, sj, sk, 1.0])
    ijk_to_ras[:3, 3] = -(np.array([ni, nj, nk]) - 1) / 2 * np.array([si, sj, sk])
    z = (np.arange(nk) * sk + ijk_to_ras[2, 3])[:, None, None]
    y = (np.arange(nj) * sj + ijk_to_ras[1, 3])[None, :, None]
    x = (np.arange(ni) * si + ijk_to_ras[0, 3])[None, None, :]
    extent_z = nk * sk
    layout = _phantom_layout(rng, tuple(labels), extent_z)
    lordosis, shift, lateral = rng.uniform(2.0, 5.0), 0.16 * nj * sj, rng.uniform(-2.5, 2.5)

    def curve_y(zz):
        return shift - lordosis * np.cos(np.pi * zz / extent_z)

    def curve_x(zz):
        return lateral * np.sin(np.pi * zz / extent_z)

    hu, index = _phantom_hu(x, y, z, layout, curve_y, curve_x, (ni * si, nj * sj))
    mask = np.where(index >= 0, np.asarray(labels, dtype=np.uint8)[np.maximum(index, 0)], 0).astype(np.uint8)
    for label, (loss, kind) in sorted(fractures.items()):
        hu, mask = _fracture_3d(hu, mask, label, loss, kind, (sk, sj))
    hu = hu + rng.normal(0.0, noise_hu, size=hu.shape).astype(np.float32) if noise_hu > 0 else hu
    name = case or f"phantom_{seed:04d}"
    volume = Volume(hu.astype(np.float32), ijk_to_ras, name=name)
    mask_volume = Volume(mask, ijk_to_ras, name=f"{name}_mask")
    return Phantom(
        volume=volume,
        mask=mask_volume,
        positions=centroids_from_mask(mask_volume),
        grades={label: genant_grade(fractures[label][0]) if label in fractures else 0 for label in labels},
        height_loss={label: float(fractures[label][0]) if label in fractures else 0.0 for label in labels},
        kinds={label: fractures[label][1] if label in fractures else "" for label in labels},
        case=name,
    )


def _fracture_3d(hu: np.ndarray, mask: np.ndarray, label: int, loss: float, kind: str, spacing_kj) -> tuple[np.ndarray, np.ndarray]:
    """Apply one sagittal-plane fracture deformation, found on the body's mid-sagittal slice, to every slice.

    Sagittal slices of the RAS-aligned phantom are ``array[:, :, i]`` with rows S <- I and columns P -> A; the
    patch convention needs them flipped (rows S -> I, columns A -> P).
    """
    body = mask == label
    mid = int(round(ndimage.center_of_mass(body)[2]))
    slice_mask = body[::-1, ::-1, mid]
    fracture = simulate_fracture(hu[::-1, ::-1, mid], slice_mask, loss, kind, spacing_kj)
    nk = hu.shape[0]
    source_k = (nk - 1) - fracture.source_rows[::-1, ::-1]  # back to array orientation
    moved = np.nonzero(np.any(np.abs(source_k - np.arange(nk)[:, None]) > 1e-9, axis=1))[0]
    if moved.size == 0:
        return hu, mask
    k0, k1 = moved[0], moved[-1] + 1
    nj, ni = hu.shape[1:]
    kk = np.broadcast_to(source_k[k0:k1, :, None], (k1 - k0, nj, ni))
    jj, ii = np.meshgrid(np.arange(nj), np.arange(ni), indexing="ij")
    coords = [kk, np.broadcast_to(jj, kk.shape), np.broadcast_to(ii, kk.shape)]
    hu, mask = hu.copy(), mask.copy()
    hu[k0:k1] = ndimage.map_coordinates(hu, coords, order=1, mode="nearest")
    mask[k0:k1] = ndimage.map_coordinates(mask, coords, order=0, mode="nearest")
    return hu, mask


def export_phantom(phantom: Phantom, folder: str | Path) -> dict[str, Path]:
    """Write the phantom like the shared real CT cases: ct.nii.gz (int16 HU), vert_msk.nii.gz, ctd.json (VerSe
    voxel centroids) and grades.csv (case, label, level, grade, height_loss, kind)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ct = Volume(np.round(phantom.volume.array).astype(np.int16), phantom.volume.ijk_to_ras, name=phantom.case)
    paths = {
        "ct": write_volume(ct, folder / "ct.nii.gz"),
        "mask": write_volume(phantom.mask, folder / "vert_msk.nii.gz"),
        "ctd": folder / "ctd.json",
        "grades": folder / "grades.csv",
    }
    ijk = phantom.mask.ras_to_ijk_points(np.array([p.ras for p in phantom.positions]))
    entries = [{"direction": list(phantom.mask.axis_codes())}] + [
        {"label": p.label, "X": round(float(v[0]), 1), "Y": round(float(v[1]), 1), "Z": round(float(v[2]), 1)}
        for p, v in zip(phantom.positions, ijk)
    ]
    paths["ctd"].write_text(json.dumps(entries))
    with paths["grades"].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case", "label", "level", "grade", "height_loss", "kind"])
        for label in sorted(phantom.grades):
            writer.writerow([phantom.case, label, LEVEL_NAMES[label], phantom.grades[label],
                             f"{phantom.height_loss[label]:.3f}", phantom.kinds[label]])
    return paths
