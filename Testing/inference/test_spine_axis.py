"""The spine's local axis from neighbouring vertebrae, and bundles whose patches follow it."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from DAECounterfactualLib.bundle.spec import BundleConfig
from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.inference.patches import cut_patch
from DAECounterfactualLib.inference.spine_axis import tilts_along_spine
from DAECounterfactualLib.io.volumes import VertebraPosition
from spine_testdata import linear_field_volume


def on_a_line(labels, tilt_deg: float, step_mm: float = 35.0, start=(0.0, 10.0, 50.0)) -> list[VertebraPosition]:
    down = np.array([0.0, -np.sin(np.radians(tilt_deg)), -np.cos(np.radians(tilt_deg))])
    return [VertebraPosition(label, f"v{label}", np.asarray(start) + n * step_mm * down) for n, label in enumerate(labels)]


def test_every_vertebra_with_a_neighbour_takes_the_line_through_its_neighbours():
    positions = on_a_line([20, 21, 22, 23], 17.0)
    tilts = tilts_along_spine(positions)
    assert sorted(tilts) == [20, 21, 22, 23]  # the ends take the line to their one neighbour
    np.testing.assert_allclose(list(tilts.values()), 17.0, atol=1e-9)
    bent = positions[:2] + [replace(positions[2], ras=positions[2].ras + [0.0, -10.0, 0.0])] + positions[3:]
    between = tilts_along_spine(bent)[22]  # the bent vertebra itself does not count, its neighbours do
    assert between == pytest.approx(17.0) and tilts_along_spine(bent)[21] != pytest.approx(17.0)


def test_a_vertebra_without_a_labelled_neighbour_close_by_and_discs_get_no_tilt():
    lone = on_a_line([20, 21], 0.0) + on_a_line([24], 0.0, start=(0.0, 10.0, -100.0))
    far = on_a_line([20, 21], 5.0, step_mm=70.0)  # a gap in the labels, not a neighbour
    disc = [VertebraPosition(120, "L1-L2", np.array([0.0, 0.0, 0.0]))]
    assert sorted(tilts_along_spine(lone)) == [20, 21]
    assert tilts_along_spine(far) == {} and tilts_along_spine(disc) == {}


def test_a_bundle_cut_along_the_spine_round_trips_and_the_runtime_refuses_to_cut_it_along_ras(ct_bundle_path):
    data = json.loads((ct_bundle_path / "config.json").read_text())
    config = BundleConfig.from_dict(data)
    assert config.patch_rows == "axial" and "rows" not in config.to_dict()["patch"]  # older bundles unchanged
    data["patch"]["rows"] = "spine"
    spine = BundleConfig.from_dict(data)
    assert spine.patch_rows == "spine" and BundleConfig.from_dict(spine.to_dict()) == spine
    volume = linear_field_volume()
    centre = volume.ijk_to_ras_points((np.asarray(volume.shape_ijk)[None] - 1) / 2)[0]
    with pytest.raises(InputError, match="cuts its patches along the spine"):
        cut_patch(spine, volume, centre)
    with pytest.raises(ValueError, match="patch rows 'oblique'"):
        BundleConfig.from_dict(data | {"patch": data["patch"] | {"rows": "oblique"}})
