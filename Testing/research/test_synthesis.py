"""Morphometry, fracture simulation and the spine phantom."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import ndimage

from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.inference.geometry import extract_sagittal_patch
from DAECounterfactualResearch.synthesis import (
    HU,
    export_phantom,
    genant_grade,
    make_spine_phantom,
    morphometry,
    morphometry_from_image,
    simulate_fracture,
)
from DAECounterfactualLib.io.volumes import read_grade_table, read_verse_centroids, read_volume

ROWS, COLUMNS = np.mgrid[0:64, 0:64]


def trapezoid(anterior_top=20.0, posterior_top=20.0, bottom=46, anterior=15, posterior=49) -> np.ndarray:
    """Body mask (columns anterior -> posterior, rows superior -> inferior) with a straight, possibly sloped top."""
    top = posterior_top + (posterior - COLUMNS) / (posterior - anterior) * (anterior_top - posterior_top)
    return (COLUMNS >= anterior) & (COLUMNS <= posterior) & (ROWS >= top) & (ROWS < bottom)


# --- grades and morphometry --------------------------------------------------------------------------------------


def test_genant_cutoffs():
    losses = [0.0, 0.1999, 0.20, 0.2499, 0.25, 0.3999, 0.40, 0.7]
    assert [genant_grade(x) for x in losses] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_rectangle_has_equal_heights_in_mm():
    heights = morphometry(trapezoid(), 1.0)
    assert (heights.ha, heights.hm, heights.hp) == pytest.approx((26.0, 26.0, 26.0), abs=0.5)
    assert heights.grade == 0
    stretched = morphometry(trapezoid(), (0.5, 2.0))  # rows are 0.5 mm, columns 2 mm
    assert stretched.hp == pytest.approx(13.0, abs=0.3)


def test_anterior_wedge_is_measured_and_graded():
    heights = morphometry(trapezoid(anterior_top=28.0), 1.0)
    assert heights.ha == pytest.approx(18.0, abs=0.6)
    assert heights.hp == pytest.approx(26.0, abs=0.6)
    assert heights.height_loss == pytest.approx(1 - 18 / 26, abs=0.03)
    assert heights.grade == 2


def test_posterior_wedge_is_not_a_loss_so_columns_must_run_anterior_to_posterior():
    heights = morphometry(trapezoid(posterior_top=28.0), 1.0)
    assert heights.ha > heights.hp
    assert heights.height_loss < 0


def test_superior_up_false_reads_rows_inferior_to_superior():
    wedge = trapezoid(anterior_top=28.0)
    flipped = morphometry(wedge[::-1], 1.0, superior_up=False)
    assert flipped.height_loss == pytest.approx(morphometry(wedge, 1.0).height_loss, abs=0.01)


def test_biconcave_middle_height_and_tilted_body():
    concave = trapezoid() & ~((ROWS < 20 + 9 * np.sin(np.pi * (COLUMNS - 15) / 34)) & (COLUMNS > 15) & (COLUMNS < 49))
    heights = morphometry(concave, 1.0)
    assert heights.hm == pytest.approx(17.0, abs=1.0)
    assert heights.ha == pytest.approx(26.0, abs=1.0)
    tilted = ndimage.rotate(trapezoid().astype(float), 15, reshape=False, order=1) > 0.5
    assert morphometry(tilted, 1.0).hp == pytest.approx(26.0, abs=1.0)


def test_morphometry_errors():
    with pytest.raises(InputError, match="body mask is empty"):
        morphometry(np.zeros((10, 10)), 1.0)
    with pytest.raises(InputError, match="needs a 2D mask"):
        morphometry(np.zeros((2, 10, 10)), 1.0)
    with pytest.raises(InputError, match="positive millimetres"):
        morphometry(trapezoid(), 0.0)


def test_morphometry_from_image_takes_the_component_at_the_centre():
    image = np.where(trapezoid(anterior_top=28.0), 250.0, 0.0)
    image[2:10, 2:60] = 300.0  # a brighter, wider neighbour that must be ignored
    heights = morphometry_from_image(image, threshold=100.0)
    assert heights.hp == pytest.approx(26.0, abs=0.6)
    assert heights.grade == 2
    with pytest.raises(InputError, match="above the threshold 400"):
        morphometry_from_image(image, threshold=400.0)


# --- fracture simulation -----------------------------------------------------------------------------------------


def body_image(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, 200.0, 30.0) + ROWS * 0.5  # a gradient so that moved rows are visible


@pytest.mark.parametrize("kind", ["wedge", "biconcave", "crush"])
@pytest.mark.parametrize("loss", [0.22, 0.35])
def test_simulated_fracture_reaches_the_requested_height_loss(kind, loss):
    mask = trapezoid()
    result = simulate_fracture(body_image(mask), mask, loss, kind, spacing_mm=(1.0, 0.8))
    achieved = 1 - result.heights.hp / result.heights_before.hp if kind == "crush" else result.heights.height_loss
    assert achieved == pytest.approx(loss, abs=0.05)
    # image and mask move together: the bright body of the image is the deformed mask
    bright = result.image > 115 + ROWS * 0.5
    assert (bright ^ result.mask).sum() < 0.03 * result.mask.sum()


def test_each_kind_lowers_its_own_part_of_the_endplate():
    mask = trapezoid()
    before = morphometry(mask, 1.0)
    wedge = simulate_fracture(body_image(mask), mask, 0.3, "wedge").heights
    assert wedge.hp == pytest.approx(before.hp, abs=1.0) and wedge.ha < before.ha - 6
    concave = simulate_fracture(body_image(mask), mask, 0.3, "biconcave").heights
    assert concave.ha == pytest.approx(before.ha, abs=1.0) and concave.hm < before.hm - 6
    crush = simulate_fracture(body_image(mask), mask, 0.3, "crush").heights
    assert crush.hp < before.hp - 6 and abs(crush.height_loss) < 0.05


def test_fracture_leaves_far_rows_untouched_and_keeps_the_inferior_endplate():
    mask = trapezoid()
    image = body_image(mask)
    result = simulate_fracture(image, mask, 0.3, "wedge")
    np.testing.assert_array_equal(result.image[50:], image[50:].astype(np.float32))
    np.testing.assert_array_equal(result.image[:8], image[:8].astype(np.float32))
    np.testing.assert_array_equal(result.mask[40:], mask[40:])


def neighbour_above(gap: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(this body, the body above it ``gap`` rows higher): a thin disc, as on real scans."""
    body = trapezoid()
    return body, (COLUMNS >= 15) & (COLUMNS <= 49) & (ROWS >= 20 - gap - 14) & (ROWS < 20 - gap)


def test_the_stretch_never_reaches_the_neighbour_above():
    """Real discs are thinner than the default stretch: the lost height must fill with disc, not with the
    neighbour's endplate drawn out."""
    body, above = neighbour_above(gap=4)
    image = body_image(body | above)
    unlimited = simulate_fracture(image, body, 0.35, "biconcave")
    limited = simulate_fracture(image, body, 0.35, "biconcave", neighbours_2d=above)
    assert not np.allclose(unlimited.image[above], image[above])  # the default stretch reaches into the neighbour
    np.testing.assert_array_equal(limited.image[above], image[above].astype(np.float32))
    assert limited.heights.height_loss == pytest.approx(0.35, abs=0.05)


def test_when_the_spine_follows_everything_above_the_disc_moves_down_by_the_drop():
    body, above = neighbour_above(gap=4)
    image = body_image(body | above)
    crush = simulate_fracture(image, body, 0.3, "crush", neighbours_2d=above, spine_follows=True)
    drop = crush.heights_before.hp - crush.heights.hp  # mm = rows here
    moved = np.flatnonzero(crush.image[:, 32] > 115 + np.arange(64) * 0.5)
    assert moved[0] == pytest.approx(np.flatnonzero(above[:, 32])[0] + drop, abs=1.0)  # the neighbour came down
    assert np.all(np.diff(crush.source_rows, axis=0) >= 0)  # monotonic: nothing folds
    biconcave = simulate_fracture(image, body, 0.3, "biconcave", neighbours_2d=above, spine_follows=True)
    np.testing.assert_array_equal(  # a central depression is filled by the disc: the spine stays
        biconcave.image, simulate_fracture(image, body, 0.3, "biconcave", neighbours_2d=above).image)


def test_fracture_errors():
    mask = trapezoid()
    with pytest.raises(InputError, match="unknown fracture kind 'burst'"):
        simulate_fracture(body_image(mask), mask, 0.3, "burst")
    with pytest.raises(InputError, match="height_loss must lie in"):
        simulate_fracture(body_image(mask), mask, 0.9)
    wedged = trapezoid(anterior_top=30.0)
    with pytest.raises(InputError, match="already has height loss 0.38"):
        simulate_fracture(body_image(wedged), wedged, 0.25)
    with pytest.raises(InputError, match="differ in shape"):
        simulate_fracture(np.zeros((10, 10)), mask, 0.3)


# --- phantom -----------------------------------------------------------------------------------------------------


def test_phantom_is_fast_ct_like_and_reproducible():
    start = time.perf_counter()
    phantom = make_spine_phantom(seed=3)
    elapsed = time.perf_counter() - start
    assert elapsed < 3.0, f"phantom generation took {elapsed:.2f} s"
    array, mask = phantom.volume.array, phantom.mask.array
    assert array.shape == (128, 96, 96) and mask.dtype == np.uint8
    assert sorted(np.unique(mask)[1:]) == [20, 21, 22]
    interior = ndimage.binary_erosion(mask > 0, iterations=3)
    assert np.median(array[interior]) == pytest.approx(HU["cancellous"], abs=15)
    shell = (mask > 0) & ~ndimage.binary_erosion(mask > 0)
    assert np.median(array[shell]) > 450
    assert array.min() < -800  # air outside the body outline
    levels = [p.level for p in phantom.positions]
    assert levels == ["L1", "L2", "L3"]
    assert all(a.ras[2] > b.ras[2] for a, b in zip(phantom.positions, phantom.positions[1:]))
    np.testing.assert_array_equal(make_spine_phantom(seed=3).volume.array, array)
    assert not np.array_equal(make_spine_phantom(seed=4).mask.array, mask)


def test_phantom_fractures_are_measured_on_every_sagittal_slice():
    phantom = make_spine_phantom(seed=5, fractures={21: (0.3, "wedge")}, noise_hu=0.0)
    assert phantom.grades == {20: 0, 21: 2, 22: 0}
    l2 = {p.label: p for p in phantom.positions}[21]
    for offset in (-6.0, 0.0, 6.0):
        labels = extract_sagittal_patch(phantom.mask, l2.ras, 64, 1.0, lateral_offset_mm=offset, fill_value=0).pixels
        heights = morphometry(np.isclose(labels, 21, atol=0.01), 1.0)
        assert heights.height_loss == pytest.approx(0.3, abs=0.06), offset
    l1 = {p.label: p for p in phantom.positions}[20]
    labels = extract_sagittal_patch(phantom.mask, l1.ras, 64, 1.0, fill_value=0).pixels
    assert abs(morphometry(np.isclose(labels, 20, atol=0.01), 1.0).height_loss) < 0.08
    image = extract_sagittal_patch(phantom.volume, l2.ras, 64, 1.0).pixels
    assert morphometry_from_image(image, threshold=140.0).grade == 2


def test_phantom_rejects_unknown_fracture_labels():
    with pytest.raises(InputError, match="fractures name vertebrae \\[24\\]"):
        make_spine_phantom(fractures={24: (0.3, "wedge")})


def test_exported_phantom_reads_back_like_the_real_data(tmp_path):
    phantom = make_spine_phantom(seed=2, shape=(96, 80, 64), spacing=(1.2, 1.0, 1.5), labels=(18, 19, 20),
                                 fractures={19: (0.45, "crush")})
    paths = export_phantom(phantom, tmp_path / "case")
    ct = read_volume(paths["ct"])
    assert ct.array.dtype == np.int16
    np.testing.assert_allclose(ct.ijk_to_ras, phantom.volume.ijk_to_ras, atol=1e-5)
    np.testing.assert_allclose(ct.array, phantom.volume.array, atol=0.51)
    positions = read_verse_centroids(paths["ctd"], ct)
    assert [p.level for p in positions] == ["T11", "T12", "L1"]
    for read, made in zip(positions, phantom.positions):
        assert np.linalg.norm(read.ras - made.ras) < 0.1
    grades = read_grade_table(paths["grades"])
    assert grades == {(phantom.case, 18): 0, (phantom.case, 19): 3, (phantom.case, 20): 0}
    nib = pytest.importorskip("nibabel")
    np.testing.assert_allclose(nib.load(paths["mask"]).affine, phantom.mask.ijk_to_ras, atol=1e-5)
