"""Fractures of a vertebra in a volume, simulated in the patch a model sees (cut tall, simulated, cropped)."""

from __future__ import annotations

import numpy as np
import pytest

from DAECounterfactualLib.inference.geometry import extract_sagittal_patch
from DAECounterfactualResearch.patch_fractures import body_masks, fracture_in_patch
from DAECounterfactualResearch.synthesis import make_spine_phantom, simulate_fracture

SIZE, SPACING = 32, 2.0


@pytest.fixture(scope="module")
def spine():
    phantom = make_spine_phantom(seed=1, shape=(64, 40, 40), spacing=(2.0, 2.0, 2.0), noise_hu=0.0)
    position = phantom.positions[1]
    return phantom.volume, *body_masks(phantom.mask, position.label), position.ras


def cut(volume, ras, fill=None):
    return extract_sagittal_patch(volume, ras, SIZE, SPACING, 0.0, fill).pixels


def test_without_the_spine_following_the_crop_is_the_patch_simulated_directly(spine):
    volume, body, others, ras = spine
    tall = fracture_in_patch(volume, body, others, ras, SIZE, SPACING, 0.0, 0.3, "wedge", spine_follows=False)
    direct = simulate_fracture(cut(volume, ras), cut(body, ras, 0.0) >= 0.5, 0.3, "wedge", SPACING,
                               neighbours_2d=cut(others, ras, 0.0) >= 0.5)
    np.testing.assert_allclose(tall.image, direct.image, atol=1e-3)
    np.testing.assert_array_equal(tall.mask, direct.mask)
    assert tall.heights.height_loss == pytest.approx(direct.heights.height_loss, abs=1e-9)


def test_when_the_spine_follows_the_patch_top_comes_from_above_the_patch(spine):
    """No edge row repeated into a band: the rows that move into the patch are the volume's rows above it."""
    from scipy import ndimage

    volume, body, others, ras = spine
    fracture = fracture_in_patch(volume, body, others, ras, SIZE, SPACING, 0.0, 0.3, "crush")
    assert fracture.source_rows[0].min() <= -2  # the top row came from at least two rows above the patch
    pad = 20
    taller = extract_sagittal_patch(volume, ras, (SIZE + 2 * pad, SIZE), SPACING).pixels
    columns = np.broadcast_to(np.arange(SIZE, dtype=np.float64), (4, SIZE))
    expected = ndimage.map_coordinates(taller, [fracture.source_rows[:4] + pad, columns], order=1)
    np.testing.assert_allclose(fracture.image[:4], expected, atol=1e-3)
    assert not np.allclose(fracture.image[:4], cut(volume, ras)[:4], atol=1.0)
