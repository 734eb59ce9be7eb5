"""Fitting the centring detector: the crops along the rows of each patch, Gaussians of the centred and off-centre
crops' latents, and scripts/fit_centring.py writing one into a copy of the shipped vertebra-mri (real data)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from DAECounterfactualResearch.centring import crop_latents, crop_offsets_mm, fit_centring_detector
from spine_testdata import real_data


class RowReader:
    """A stand-in explainer: a crop's latent is its first row's value and its mean."""

    def encode(self, images: np.ndarray) -> np.ndarray:
        return np.stack([images[:, 0, 0, 0], images.mean(axis=(1, 2, 3))], axis=1).astype(np.float64)


def test_the_middle_crop_is_the_patch_as_cut_and_the_others_run_top_to_bottom():
    margin, size = 2, 4
    rows = np.arange(size + 2 * margin, dtype=np.float32)
    wide = np.stack([np.broadcast_to((rows + 100 * n)[:, None], (size + 2 * margin,) * 2)[None] for n in range(3)])
    z = crop_latents(RowReader(), wide, margin)
    assert z.shape == (3, 2 * margin + 1, 2)
    np.testing.assert_array_equal(z[1, :, 0], 100 + np.arange(2 * margin + 1))
    assert z[0, margin, 1] == pytest.approx(rows[margin:margin + size].mean())
    np.testing.assert_array_equal(crop_offsets_mm(5, 1.5), [-3.0, -1.5, 0.0, 1.5, 3.0])


def synthetic_crops(patches: int, rng) -> np.ndarray:
    """Latents whose first dimension grows with the crop's distance from the centroid (5 crops, 1.5 mm apart)."""
    distance = np.abs(crop_offsets_mm(5, 1.5))
    z = rng.normal(scale=0.3, size=(patches, 5, 6))
    z[:, :, 0] += distance ** 2
    return z


def test_the_fitted_detector_finds_the_centred_crop_of_new_patches():
    rng = np.random.default_rng(0)
    detector = fit_centring_detector(synthetic_crops(200, rng), spacing_mm=1.5, off_mm=3.0, components=4,
                                     fitted_on="synthetic")
    assert detector.off_mm == 3.0 and detector.fitted_on == "synthetic" and detector.basis.shape == (4, 6)
    np.testing.assert_allclose(detector.basis @ detector.basis.T, np.eye(4), atol=1e-6)  # held as float32
    new = synthetic_crops(50, rng)
    picked = np.argmin(detector.score(new.reshape(-1, 6)).reshape(50, 5), axis=1)
    assert np.mean(picked == 2) > 0.9
    with pytest.raises(ValueError, match="no crop lies 4.5 mm from the middle"):
        fit_centring_detector(new, spacing_mm=1.5, off_mm=4.5)


@pytest.mark.real_data
def test_the_script_writes_the_detector_and_its_card_section(tmp_path, script_main):
    from DAECounterfactualLib.bundle.store import load_bundle

    root = real_data()
    config = "scripts/configs/vertebra-mri.json"
    assert script_main("fit_centring")([config, "--data-root", str(root), "--out", str(tmp_path),
                                        "--limit-cases", "2"]) == 0  # one of them VB3's
    bundle = load_bundle(tmp_path / "vertebra-mri", load_weights=False)
    assert bundle.centring_detector.off_mm == 3.0 and bundle.centring_detector.basis.shape == (128, 512)
    assert "## Centring a click" in bundle.model_card
    assert "of its 1 training patient; data sources VB3 only" in bundle.model_card
    assert json.loads((tmp_path / "vertebra-mri" / "centring.json").read_text())["fitted_on"].startswith("the lumbar")


def test_a_study_compares_the_bundles_centring_with_the_ood_score_it_replaced():
    from DAECounterfactualResearch.centring import centring_ways, chosen_latents

    z = np.zeros((2, 5, 1))
    z[0, :, 0] = [4, 3, 9, 1, 5]  # the detector wants the lowest value, the OOD score the value nearest 5
    z[1, :, 0] = [9, 9, 0, 9, 5]
    detector = SimpleNamespace(score=lambda latents: latents[:, 0])
    ood = SimpleNamespace(ood_score=lambda latents: np.abs(latents[:, 0] - 5))
    ways = centring_ways(SimpleNamespace(centring_detector=detector, ood=ood), z)
    assert {k: v.tolist() for k, v in ways.items()} == {"as clicked": [0, 0], "centred": [1, 0],
                                                          "centred by the OOD score": [2, 2]}
    np.testing.assert_array_equal(chosen_latents(z, ways["centred"])[:, 0], [1, 0])
    assert list(centring_ways(SimpleNamespace(centring_detector=None, ood=ood), z)) == ["as clicked", "centred"]
