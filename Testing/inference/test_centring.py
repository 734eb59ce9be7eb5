"""Centring a click along the spine: the crop the bundle finds most centred, in the right direction and distance."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from DAECounterfactualLib.inference.centring import centre_on_body, centred_row
from DAECounterfactualLib.inference.geometry import extract_sagittal_patch
from DAECounterfactualLib.model.preprocessing import Preprocessing
from spine_testdata import LPS_OBLIQUE, centred_field_volume

SIZE, SPACING = 8, 1.5


class MeanEncoder:
    """A stand-in explainer: the latent of a patch is its mean value, and a latent is typical the nearer it lies to
    ``typical``, so the most typical crop is the one centred where the image's mean equals it."""

    def __init__(self, typical: float):
        config = SimpleNamespace(patch_size_px=SIZE, patch_spacing_mm=SPACING,
                                 preprocessing=Preprocessing("fixed_range", -200.0, 200.0))
        ood = SimpleNamespace(ood_score=lambda z: np.abs(z[:, 0] - typical))
        self.bundle = SimpleNamespace(config=config, ood=ood, centring_detector=None)
        self.encoded = 0

    def encode(self, images: np.ndarray) -> np.ndarray:
        self.encoded += len(images)
        return images.reshape(len(images), -1).mean(axis=1, keepdims=True)


def superior_field():
    """Intensity = 4 x the superior coordinate (mm) on an oblique LPS volume: a patch's mean says how high it sits."""
    return centred_field_volume(80.0, (1.1, 0.9, 1.3), LPS_OBLIQUE, gradient=(0.0, 0.0, 4.0), offset=0.0)


def model_mean(volume, ras, explainer) -> float:
    config = explainer.bundle.config
    patch = extract_sagittal_patch(volume, ras, SIZE, SPACING)
    return float(config.preprocessing.apply(patch.pixels, config.preprocessing.volume_range(volume.array)).mean())


@pytest.mark.parametrize("rows_above", [4, -3, 0])
def test_a_click_off_the_typical_height_moves_there_by_whole_pixels(rows_above):
    volume = superior_field()
    target = np.array([1.0, -2.0, 3.0])
    click = target - rows_above * SPACING * np.array([0.0, 0.0, 1.0])  # rows_above > 0: the click lies below
    explainer = MeanEncoder(model_mean(volume, target, MeanEncoder(0.0)))
    centring = centre_on_body(explainer, volume, click, reach_mm=9.0)
    np.testing.assert_allclose(centring.ras, target, atol=1e-4)  # mm; the means are float32
    assert centring.moved_mm == pytest.approx(rows_above * SPACING, abs=1e-4)
    assert explainer.encoded == 13  # one crop per row within 9 mm at 1.5 mm
    assert ("superior" in centring.describe()) == (rows_above > 0)
    assert ("inferior" in centring.describe()) == (rows_above < 0)
    assert (centring.describe() == "") == (rows_above == 0)


def test_beyond_the_reach_the_point_moves_as_far_as_the_reach():
    volume = superior_field()
    target = np.array([0.0, 0.0, 20.0])
    explainer = MeanEncoder(model_mean(volume, target, MeanEncoder(0.0)))
    centring = centre_on_body(explainer, volume, target - [0.0, 0.0, 15.0], reach_mm=6.0)
    assert centring.moved_mm == pytest.approx(6.0, abs=1e-4)


def test_ties_go_to_the_crop_nearest_the_click_and_a_crop_needs_a_middle():
    flat = np.zeros((SIZE + 6, SIZE), dtype=np.float32)
    assert centred_row(MeanEncoder(0.0), flat, SIZE) == 0
    with pytest.raises(ValueError, match="no middle crop"):
        centred_row(MeanEncoder(0.0), np.zeros((SIZE + 3, SIZE), dtype=np.float32), SIZE)


def test_no_reach_leaves_the_point_without_encoding_anything():
    explainer = MeanEncoder(0.0)
    centring = centre_on_body(explainer, superior_field(), [1.0, 2.0, 3.0], reach_mm=0.5)
    np.testing.assert_array_equal(centring.ras, [1.0, 2.0, 3.0])
    assert centring.moved_mm == 0.0 and explainer.encoded == 0


def test_crops_run_top_to_bottom_and_ties_go_to_the_middle():
    from DAECounterfactualLib.inference.centring import best_row, crops_along_rows

    tall = np.arange(12, dtype=np.float32)[:, None].repeat(3, axis=1)  # row index as the value
    crops = crops_along_rows(tall, 8)
    assert crops.shape == (5, 1, 8, 3)
    np.testing.assert_array_equal(crops[:, 0, 0, 0], [0, 1, 2, 3, 4])
    with pytest.raises(ValueError, match="no middle crop of 8 rows"):
        crops_along_rows(tall[:11], 8)
    assert best_row(np.array([3.0, 1.0, 1.0, 1.0, 2.0])) == 0  # three tie: the middle one
    assert best_row(np.array([1.0, 2.0, 2.0, 2.0, 0.5])) == 2  # the lowest, two rows below the middle
