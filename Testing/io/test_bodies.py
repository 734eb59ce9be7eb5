"""Grading points of vertebra masks: the body's centroid, whether the mask holds whole vertebrae or bodies."""

from __future__ import annotations

import numpy as np
import pytest

from DAECounterfactualLib.io.volumes import (Volume, centroids_from_mask, positions_from_mask, read_volume,
                                             vertebral_bodies)
from spine_testdata import LPS_OBLIQUE, geometry, real_data

SPACING = (1.0, 1.0, 2.0)  # i (left-right), j (anterior-posterior), k (superior-inferior), mm


def _grid(shape_kji):
    k, j, i = np.indices(shape_kji, dtype=np.float64)
    return i * SPACING[0], j * SPACING[1], k * SPACING[2]


def vertebra(shape_kji=(20, 80, 70), body_centre=(35.0, 22.0, 20.0), whole=True) -> tuple[np.ndarray, np.ndarray]:
    """A lumbar-sized vertebra (mm): an elliptic body 40 wide, 30 deep, 24 tall; behind it, when ``whole``, a
    ring of pedicles and laminae 6 mm thick around a 16 mm canal, transverse processes and a spinous process.
    Returns the boolean mask and the body's centroid as a continuous (k, j, i) index."""
    x, y, z = _grid(shape_kji)
    cx, cy, cz = body_centre
    body = (((x - cx) / 20) ** 2 + ((y - cy) / 15) ** 2 <= 1) & (np.abs(z - cz) <= 12)
    mask = body.copy()
    if whole:
        canal_y = cy + 15 + 8
        ring = np.hypot(x - cx, y - canal_y)
        arch = (ring >= 8) & (ring <= 14) & (y > cy + 10) & (np.abs(z - cz) <= 9)
        transverse = (np.abs(y - canal_y) <= 3) & (np.abs(np.abs(x - cx) - 22.5) <= 10.5) & (np.abs(z - cz) <= 4)
        spinous = (np.abs(x - cx) <= 3) & (y > canal_y + 12) & (y <= canal_y + 40) & (np.abs(z - cz) <= 7)
        mask |= arch | transverse | spinous
    kji = np.argwhere(body).mean(axis=0)
    return mask, kji


def _same_points(positions, expected) -> None:
    assert [p.label for p in positions] == [p.label for p in expected]
    np.testing.assert_allclose([p.ras for p in positions], [p.ras for p in expected], rtol=0, atol=1e-6)


def _volume(labels: np.ndarray, direction=np.eye(3)) -> Volume:
    return Volume(labels, geometry(direction, SPACING, (3.0, -4.0, 5.0)), name="vert")


def test_a_whole_vertebra_is_graded_at_its_body_not_at_its_centroid_behind_it():
    mask, body_kji = vertebra()
    volume = _volume(np.where(mask, 22, 0).astype(np.uint8), LPS_OBLIQUE)
    body_ras = volume.ijk_to_ras_points(body_kji[None, ::-1])[0]
    whole = centroids_from_mask(volume)[0].ras
    point = positions_from_mask(volume)[0]
    assert point.level == "L3"
    assert np.linalg.norm(whole - body_ras) > 8.0  # the phantom reproduces the real masks' offset
    assert np.linalg.norm(point.ras - body_ras) < 1.0


def test_a_mask_of_bodies_keeps_its_centroids_exactly():
    """Even a body with a thin anterior osteophyte, which its thick part would leave out."""
    mask, _ = vertebra(whole=False)
    x, y, z = _grid(mask.shape)
    mask |= (y >= 1) & (y < 7) & (np.abs(z - 30) <= 2) & (np.abs(x - 40) <= 10)
    volume = _volume(np.where(mask, 22, 0).astype(np.uint8))
    _same_points(positions_from_mask(volume), centroids_from_mask(volume))


def test_a_body_split_by_a_gap_in_its_mask_keeps_both_halves():
    mask, _ = vertebra(whole=False)
    mask[:, :, 33:36] = False  # a 3 mm gap near the mid-sagittal plane, as in one VB3 mask
    volume = _volume(np.where(mask, 22, 0).astype(np.uint8))
    centroid = centroids_from_mask(volume)[0].ras
    assert np.linalg.norm(positions_from_mask(volume)[0].ras - centroid) < 1.0


def test_discs_and_the_atlas_keep_their_centroids():
    """A disc is graded at its centroid, and C1 has no body to move to."""
    mask, _ = vertebra()
    labels = np.zeros(mask.shape, dtype=np.uint8)
    labels[mask] = 1  # C1
    labels[:2][mask[:2]] = 122  # a disc id (below L3) on the same shape: not a vertebra
    volume = _volume(labels)
    _same_points(positions_from_mask(volume), centroids_from_mask(volume))


@pytest.mark.real_data
def test_real_whole_vertebrae_are_graded_at_their_bodies():
    """A patient's T10-L5 (FX-Grader, healthy): every point within 1.5 mm of the body's centroid from TPTBox's
    subregions, where the whole vertebrae's centroids lie 8 mm or more behind (docs/results/ct-real/
    body_centroids.json)."""
    case = real_data() / "spine_ct" / "fxgrader_ctfu00106_ses-20070122"
    mask = read_volume(case / "vert_msk.nii.gz")
    bodies = vertebral_bodies(mask, read_volume(case / "subreg_msk.nii.gz"))
    truth = {p.label: p.ras for p in centroids_from_mask(bodies)}
    whole = {p.label: p.ras for p in centroids_from_mask(mask) if p.label in truth}
    points = {p.label: p.ras for p in positions_from_mask(mask) if p.label in truth}
    assert len(points) == 8
    assert min(np.linalg.norm(whole[label] - truth[label]) for label in truth) > 8.0
    assert max(np.linalg.norm(points[label] - truth[label]) for label in truth) < 1.5
