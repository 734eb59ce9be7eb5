import numpy as np
import pytest

from DAECounterfactualLib.inference.metrics import grain, mse, psnr, ssim


def test_identical_images_are_perfect():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 1, 32, 32))
    assert mse(x, x) == 0 and psnr(x, x) == float("inf") and ssim(x, x) == pytest.approx(1.0)


def test_psnr_of_a_known_error():
    x = np.zeros((8, 8))
    assert psnr(x, x + 0.2) == pytest.approx(10 * np.log10(4 / 0.04))


def test_ssim_ranks_noise_and_is_insensitive_to_tiny_shifts_of_the_mean():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:48, 0:48]
    image = np.sin(xx / 5.0) * np.cos(yy / 7.0)
    small, large = image + 0.05 * rng.normal(size=image.shape), image + 0.5 * rng.normal(size=image.shape)
    assert 1 > ssim(image, small) > ssim(image, large) > 0
    assert ssim(image, image + 0.01) > 0.98
    assert abs(ssim(image, rng.uniform(-1, 1, image.shape))) < 0.1  # unrelated structure


def test_grain_tells_added_noise_from_a_moved_edge():
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:64, 0:64]
    disc = np.tanh((12 - np.abs(yy - 32)) / 2.0)[None]  # a bright band: a disc between two bodies
    flatter = np.tanh((8 - np.abs(yy - 32)) / 2.0)[None]  # the same band, lower: an anatomical edit
    grainy = disc + 0.1 * rng.normal(size=disc.shape)  # the same band, with grain
    assert grain(disc, disc) == pytest.approx(1.0)
    assert abs(grain(flatter, disc) - 1) < 0.1 and grain(grainy, disc) > 3
    assert np.isnan(grain(disc, np.zeros_like(disc)))
