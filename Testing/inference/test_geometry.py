"""Sagittal patch extraction: exact plane geometry, trilinear values, fill, errors and the inverse."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.inference.geometry import (
    along_spine_tilt,
    fill_fraction,
    extract_sagittal_patch,
    extract_sagittal_patches,
    patch_as_volume,
    patch_pixel_to_ras,
    ras_to_patch_pixel,
)
from DAECounterfactualLib.io.volumes import Volume, read_volume, write_volume
from spine_testdata import LPS_OBLIQUE, geometry, linear_field_volume, real_data, rotation

GRADIENT = np.array([2.0, -3.0, 5.0])
OFFSET = 100.0


def pixel_ras(patch) -> np.ndarray:
    height, width = patch.pixels.shape
    rows, columns = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return patch_pixel_to_ras(patch.patch_to_ras, np.stack([columns.ravel(), rows.ravel()], 1)).reshape(height, width, 3)


def volume_centre(volume: Volume) -> np.ndarray:
    return volume.ijk_to_ras_points((np.asarray(volume.shape_ijk) - 1) / 2)


def test_linear_field_is_reproduced_exactly_on_an_oblique_lps_anisotropic_volume():
    volume = linear_field_volume(gradient=GRADIENT, offset=OFFSET)
    point = volume_centre(volume) + [1.0, -2.0, 3.0]
    patch = extract_sagittal_patch(volume, point, (9, 11), (0.8, 0.6))
    expected = pixel_ras(patch) @ GRADIENT + OFFSET
    np.testing.assert_allclose(patch.pixels, expected, atol=2e-3)
    assert patch.pixels.dtype == np.float32


def test_pixel_axes_point_posterior_and_inferior_with_the_point_at_the_centre():
    volume = linear_field_volume()
    point = volume_centre(volume)
    patch = extract_sagittal_patch(volume, point, (8, 10), (0.5, 0.75), lateral_offset_mm=1.5)
    ras = pixel_ras(patch)
    np.testing.assert_allclose(ras[..., 0], point[0] + 1.5)  # one sagittal plane, shifted to the right
    np.testing.assert_allclose(np.diff(ras, axis=1), np.broadcast_to([0, -0.75, 0], (8, 9, 3)), atol=1e-12)
    np.testing.assert_allclose(np.diff(ras, axis=0), np.broadcast_to([0, 0, -0.5], (7, 10, 3)), atol=1e-12)
    centre = patch_pixel_to_ras(patch.patch_to_ras, [[(10 - 1) / 2, (8 - 1) / 2]])[0]
    np.testing.assert_allclose(centre, point + [1.5, 0, 0])
    assert patch.spacing_mm == pytest.approx((0.5, 0.75))


def test_a_tilted_patch_turns_its_rows_down_the_given_spine_and_keeps_its_centre_and_plane():
    volume = linear_field_volume(gradient=GRADIENT, offset=OFFSET)
    point = volume_centre(volume)
    down = np.array([0.0, -np.sin(np.radians(20.0)), -np.cos(np.radians(20.0))])  # down and posterior
    tilt = along_spine_tilt(down * 7.0 + [3.0, 0.0, 0.0])  # length and the left-right part do not matter
    assert tilt == pytest.approx(20.0)
    patch = extract_sagittal_patch(volume, point, (8, 10), (0.5, 0.75), lateral_offset_mm=1.5, tilt_deg=tilt)
    ras = pixel_ras(patch)
    np.testing.assert_allclose(ras[..., 0], point[0] + 1.5)
    np.testing.assert_allclose(np.diff(ras, axis=0), np.broadcast_to(0.5 * down, (7, 10, 3)), atol=1e-12)
    across = np.diff(ras, axis=1)[0, 0] / 0.75
    assert across @ down == pytest.approx(0.0, abs=1e-12) and across[1] < 0  # still anterior -> posterior
    np.testing.assert_allclose(patch_pixel_to_ras(patch.patch_to_ras, [[4.5, 3.5]])[0], point + [1.5, 0, 0])
    np.testing.assert_allclose(patch.pixels, pixel_ras(patch) @ GRADIENT + OFFSET, atol=2e-3)
    back, distance = ras_to_patch_pixel(patch.patch_to_ras, ras.reshape(-1, 3))
    np.testing.assert_allclose(back[-1], [9.0, 7.0], atol=1e-9)
    np.testing.assert_allclose(distance, 0.0, atol=1e-9)
    untilted = extract_sagittal_patch(volume, point, (8, 10), (0.5, 0.75), lateral_offset_mm=1.5)
    np.testing.assert_array_equal(extract_sagittal_patch(volume, point, (8, 10), (0.5, 0.75), 1.5, None, 0.0).pixels,
                                  untilted.pixels)


def test_impossible_tilts_are_errors():
    volume = linear_field_volume()
    with pytest.raises(InputError, match="tilt must lie within"):
        extract_sagittal_patch(volume, volume_centre(volume), 8, 1.0, tilt_deg=90.0)
    with pytest.raises(InputError, match="tilt must lie within"):
        extract_sagittal_patch(volume, volume_centre(volume), 8, 1.0, tilt_deg=float("nan"))
    with pytest.raises(InputError, match="anterior-posterior or superior-inferior part"):
        along_spine_tilt([4.0, 0.0, 0.0])


def test_matches_simpleitk_linear_resampling_of_a_random_volume():
    rng = np.random.default_rng(3)
    matrix = geometry(LPS_OBLIQUE, (0.9, 1.3, 2.7), (12.0, -7.0, 30.0))
    volume = Volume(rng.normal(size=(24, 30, 28)).astype(np.float32), matrix, name="random")
    patch = extract_sagittal_patch(volume, volume_centre(volume), (12, 14), 0.7)
    flip = np.diag([-1.0, -1.0, 1.0])
    image = sitk.GetImageFromArray(volume.array)
    image.SetSpacing(volume.spacing.tolist())
    image.SetDirection((flip @ volume.direction).ravel().tolist())
    image.SetOrigin((flip @ volume.origin).tolist())
    reference = sitk.Image(14, 12, 1, sitk.sitkFloat32)
    reference.SetSpacing((0.7, 0.7, 0.7))
    reference.SetDirection((flip @ (patch.patch_to_ras[:3, :3] / 0.7)).ravel().tolist())
    reference.SetOrigin((flip @ patch.patch_to_ras[:3, 3]).tolist())
    resampled = sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, -99.0)
    np.testing.assert_allclose(patch.pixels, sitk.GetArrayFromImage(resampled)[0], atol=1e-5)


def test_border_point_pads_with_the_minimum_or_the_given_fill_value():
    volume = linear_field_volume()
    corner = volume.ijk_to_ras_points([0.0, 0.0, 0.0])
    patch = extract_sagittal_patch(volume, corner, 15, 1.0)
    outside = ~volume.contains_ijk(volume.ras_to_ijk_points(pixel_ras(patch).reshape(-1, 3))).reshape(15, 15)
    assert 0 < outside.sum() < outside.size
    np.testing.assert_array_equal(patch.pixels[outside], np.float32(volume.array.min()))
    assert np.all(patch.pixels[~outside] > volume.array.min() - 1e-3)
    padded = extract_sagittal_patch(volume, corner, 15, 1.0, fill_value=-1234.0)
    np.testing.assert_array_equal(padded.pixels[outside], -1234.0)
    np.testing.assert_array_equal(padded.pixels[~outside], patch.pixels[~outside])


def test_points_outside_the_volume_are_errors():
    volume = linear_field_volume()
    far = volume.ijk_to_ras_points([-3.0, 5.0, 5.0])
    with pytest.raises(InputError, match="patch centre at RAS .* lies outside the volume linear"):
        extract_sagittal_patch(volume, far, 8, 1.0)
    with pytest.raises(InputError, match="lateral offset 500.0 mm"):
        extract_sagittal_patch(volume, volume_centre(volume), 8, 1.0, lateral_offset_mm=500.0)
    with pytest.raises(InputError, match="3 finite RAS coordinates"):
        extract_sagittal_patch(volume, [0.0, np.nan, 0.0], 8, 1.0)
    with pytest.raises(InputError, match="positive millimetres"):
        extract_sagittal_patch(volume, volume_centre(volume), 8, 0.0)


def test_lateral_offsets_give_parallel_slices():
    volume = linear_field_volume(gradient=GRADIENT, offset=OFFSET)
    point = volume_centre(volume)
    patches = extract_sagittal_patches(volume, point, 6, 0.5, [-2.0, 0.0, 2.0])
    centres = [p.pixels[2:4, 2:4].mean() for p in patches]
    # intensity changes by gradient_x = 2 per mm along x
    np.testing.assert_allclose(np.diff(centres), [4.0, 4.0], atol=1e-3)


def test_inverse_maps_pixels_back_and_measures_distance_to_the_plane():
    volume = linear_field_volume()
    patch = extract_sagittal_patch(volume, volume_centre(volume), (7, 9), (0.4, 0.9), lateral_offset_mm=-1.0)
    pixels = np.array([[0.0, 0.0], [8.0, 6.0], [3.5, 2.25]])
    ras = patch_pixel_to_ras(patch.patch_to_ras, pixels) + [2.5, 0, 0]
    back, distance = ras_to_patch_pixel(patch.patch_to_ras, ras)
    np.testing.assert_allclose(back, pixels, atol=1e-12)
    np.testing.assert_allclose(distance, 2.5)


def test_patch_to_ras_serves_as_ijk_to_ras_of_a_one_slice_volume(tmp_path):
    volume = linear_field_volume()
    patch = extract_sagittal_patch(volume, volume_centre(volume), (5, 6), 0.8)
    saved = read_volume(write_volume(patch_as_volume(patch), tmp_path / "patch.nrrd"))
    assert saved.array.shape == (1, 5, 6)
    np.testing.assert_allclose(saved.ijk_to_ras, patch.patch_to_ras, atol=1e-6)
    assert saved.axis_codes() == ("P", "I", "R")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spacing=st.tuples(*[st.floats(0.3, 4.0)] * 3),
    angles=st.tuples(*[st.floats(-180.0, 180.0)] * 3),
    mirror=st.booleans(),
    fraction=st.tuples(*[st.floats(0.0, 1.0)] * 3),
    patch_spacing=st.floats(0.2, 3.0),
    offset=st.floats(-2.0, 2.0),
)
def test_property_values_plane_and_fill_for_any_geometry(spacing, angles, mirror, fraction, patch_spacing, offset):
    direction = rotation(angles) @ np.diag([1.0, 1.0, -1.0 if mirror else 1.0])
    shape = (9, 10, 11)
    volume = linear_field_volume(shape, spacing, direction, (5.0, -3.0, 2.0), GRADIENT, OFFSET)
    ijk_point = (np.asarray(volume.shape_ijk) - 1) * np.asarray(fraction)
    point = volume.ijk_to_ras_points(ijk_point) - [offset, 0, 0]
    inside_centre = volume.contains_ijk(volume.ras_to_ijk_points(point + [offset, 0, 0]))[0]
    assert inside_centre
    patch = extract_sagittal_patch(volume, point, (7, 8), patch_spacing, lateral_offset_mm=offset, fill_value=-5e3)
    ras = pixel_ras(patch)
    np.testing.assert_allclose(ras[..., 0], point[0] + offset, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(np.diff(ras, axis=1), axis=-1), patch_spacing, rtol=1e-9)
    ijk = volume.ras_to_ijk_points(ras.reshape(-1, 3))
    upper = np.asarray(volume.shape_ijk) - 1
    interior = np.all((ijk >= 1e-6) & (ijk <= upper - 1e-6), axis=1)
    outside = ~volume.contains_ijk(ijk)
    values = patch.pixels.ravel()
    np.testing.assert_allclose(values[interior], (ras.reshape(-1, 3) @ GRADIENT + OFFSET)[interior], atol=5e-3)
    np.testing.assert_array_equal(values[outside], -5e3)
    assert np.all(values[~outside] > -5e3)


@pytest.mark.real_data
def test_real_pir_ct_patch_has_superior_up_and_anterior_left():
    root = real_data()
    case = root / "spine_ct" / "tptbox_sample"  # stored PIR, not RAS
    from DAECounterfactualLib.io.volumes import read_verse_centroids

    ct = read_volume(case / "ct.nii.gz")
    l3 = {p.level: p for p in read_verse_centroids(case / "ctd.json", ct)}["L3"]
    vertebrae = extract_sagittal_patch(read_volume(case / "vert_msk.nii.gz"), l3.ras, 64, 1.0, fill_value=0).pixels
    parts = extract_sagittal_patch(read_volume(case / "subreg_msk.nii.gz"), l3.ras, 64, 1.0, fill_value=0).pixels
    rows, columns = np.mgrid[0:64, 0:64]
    own = np.isclose(vertebrae, 22.0, atol=0.01)
    above = np.isclose(vertebrae, 21.0, atol=0.01)
    body = own & np.isin(np.round(parts), [49, 50])
    spinous = own & np.isclose(parts, 42.0, atol=0.01)
    assert own[31:33, 31:33].all()
    assert rows[above].mean() < rows[own].mean(), "L2 must lie above L3 (rows run superior -> inferior)"
    assert columns[body].mean() < columns[spinous].mean(), "the body must lie anterior (columns run A -> P)"


def test_fill_fraction_counts_the_pixels_beyond_the_scan():
    volume = Volume(np.zeros((40, 40, 40), np.float32), np.eye(4))  # RAS = ijk: 40 mm along y and z
    inside = extract_sagittal_patch(volume, (20.0, 20.0, 20.0), 20, 1.0)
    assert fill_fraction(volume, inside) == 0.0
    near_top = extract_sagittal_patch(volume, (20.0, 20.0, 39.0), 20, 1.0)  # rows 10..19 lie beyond z = 39.5
    assert fill_fraction(volume, near_top) == pytest.approx(0.45, abs=0.05)
