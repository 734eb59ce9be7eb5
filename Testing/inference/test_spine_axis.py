"""The spine's local axis from neighbouring vertebrae, and bundles whose patches follow it."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from DAECounterfactualLib.bundle.spec import BundleConfig
from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.inference.geometry import extract_sagittal_patch
from DAECounterfactualLib.inference.patches import cut_patch
from DAECounterfactualLib.inference.spine_axis import patch_tilts, tilts_along_spine
from DAECounterfactualLib.io.volumes import VertebraPosition
from spine_testdata import linear_field_volume


def on_a_line(labels, tilt_deg: float, step_mm: float = 35.0, start=(0.0, 10.0, 50.0)) -> list[VertebraPosition]:
    down = np.array([0.0, -np.sin(np.radians(tilt_deg)), -np.cos(np.radians(tilt_deg))])
    return [VertebraPosition(label, f"v{label}", np.asarray(start) + n * step_mm * down)
            for n, label in enumerate(labels)]


def test_every_vertebra_with_a_neighbour_takes_the_line_through_its_neighbours_in_any_order():
    positions = on_a_line([20, 21, 22, 23], 17.0)
    tilts = tilts_along_spine(positions[::-1])  # found by place: unnamed clicks in any order
    np.testing.assert_allclose(tilts, 17.0, atol=1e-9)  # the ends take the line to their one neighbour
    bent = positions[:2] + [replace(positions[2], ras=positions[2].ras + [0.0, -10.0, 0.0])] + positions[3:]
    tilts = tilts_along_spine(bent)
    assert tilts[2] == pytest.approx(17.0) and tilts[1] != pytest.approx(17.0)  # its neighbours count, not itself


def test_a_vertebra_without_a_neighbour_10_to_60_mm_away_and_discs_get_no_tilt():
    lone = on_a_line([20, 21], 0.0) + on_a_line([24], 0.0, start=(0.0, 10.0, -100.0))
    far = on_a_line([20, 21], 5.0, step_mm=70.0)  # a gap in the spine, not a neighbour
    twice = on_a_line([20, 20], 5.0, step_mm=3.0)  # the same body clicked twice
    disc = on_a_line([20], 0.0) + [VertebraPosition(120, "T12-L1", np.array([0.0, 10.0, 30.0]))]
    assert tilts_along_spine(lone) == [pytest.approx(0.0), pytest.approx(0.0), None]
    assert tilts_along_spine(far) == [None, None] and tilts_along_spine(twice) == [None, None]
    assert tilts_along_spine(disc) == [None, None]


def test_patch_tilts_are_zero_for_axial_bundles_and_name_every_lonely_point_for_spine_bundles(ct_bundle_path):
    config = BundleConfig.from_dict(json.loads((ct_bundle_path / "config.json").read_text()))
    spine = replace(config, patch_rows="spine")
    positions = on_a_line([20, 21], -12.0) + on_a_line([24], 0.0, start=(0.0, 10.0, -100.0))
    assert patch_tilts(config, positions) == [0.0, 0.0, 0.0]
    with pytest.raises(InputError, match="above or below .* of v24, or give a label map"):
        patch_tilts(spine, positions)
    np.testing.assert_allclose(patch_tilts(spine, positions[:2]), -12.0)


def test_a_bundle_cut_along_the_spine_round_trips_and_needs_a_tilt_for_every_patch(ct_bundle_path):
    data = json.loads((ct_bundle_path / "config.json").read_text())
    config = BundleConfig.from_dict(data)
    assert config.patch_rows == "axial" and "rows" not in config.to_dict()["patch"]  # older bundles unchanged
    data["patch"]["rows"] = "spine"
    spine = BundleConfig.from_dict(data)
    assert spine.patch_rows == "spine" and BundleConfig.from_dict(spine.to_dict()) == spine
    volume = linear_field_volume()
    centre = volume.ijk_to_ras_points((np.asarray(volume.shape_ijk)[None] - 1) / 2)[0]
    with pytest.raises(InputError, match="cuts each patch along the spine, and no tilt was given"):
        cut_patch(spine, volume, centre)
    np.testing.assert_array_equal(cut_patch(spine, volume, centre, tilt_deg=12.0).pixels,
                                  extract_sagittal_patch(volume, centre, config.patch_size_px,
                                                         config.patch_spacing_mm, tilt_deg=12.0).pixels)
    np.testing.assert_array_equal(cut_patch(config, volume, centre).pixels,
                                  cut_patch(config, volume, centre, 0.0, 0.0).pixels)
    with pytest.raises(ValueError, match="patch rows 'oblique'"):
        BundleConfig.from_dict(data | {"patch": data["patch"] | {"rows": "oblique"}})
