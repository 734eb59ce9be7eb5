"""Volume type, readers/writers (LPS <-> RAS), vertebra positions, grades and 2D datasets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.io.volumes import (
    Volume,
    centroids_from_mask,
    vertebral_bodies,
    join_grades,
    level_name,
    positions_from_mask,
    positions_from_ras,
    read_grade_table,
    read_image_folder,
    read_npz_dataset,
    read_verse_centroids,
    read_volume,
    write_volume,
)
from spine_testdata import LPS_OBLIQUE, geometry, real_data, rotation


def small_volume(direction=np.eye(3), spacing=(1.0, 2.0, 3.0), shape=(5, 6, 7), dtype=np.int16) -> Volume:
    array = np.arange(np.prod(shape)).reshape(shape).astype(dtype)
    return Volume(array, geometry(direction, spacing, (1.0, -2.0, 3.0)), name="small")


# --- Volume validation -------------------------------------------------------------------------------------------


def test_geometry_properties_and_inverse():
    volume = small_volume(direction=LPS_OBLIQUE, spacing=(0.5, 1.0, 4.0))
    np.testing.assert_allclose(volume.spacing, [0.5, 1.0, 4.0])
    np.testing.assert_allclose(volume.direction, LPS_OBLIQUE, atol=1e-12)
    np.testing.assert_allclose(volume.ras_to_ijk @ volume.ijk_to_ras, np.eye(4), atol=1e-12)
    ijk = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(volume.ras_to_ijk_points(volume.ijk_to_ras_points(ijk)), ijk, atol=1e-12)
    assert volume.axis_codes() == ("L", "P", "S")


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((0, 4, 4)), "empty"),
        (np.zeros((4, 4)), "2D"),
        (np.zeros((2, 3, 4, 5)), "4 dimensions"),
        (np.array([[[0.0, np.nan]]]), "NaN"),
        (np.array([[[0.0, np.inf]]]), r"NaN or infinite voxel values \(0 NaN, 1 infinite of 2\)"),
    ],
)
def test_bad_arrays_are_rejected_naming_the_file(array, message):
    with pytest.raises(InputError, match=message) as info:
        Volume(array, np.eye(4), source="scan.nii.gz")
    assert "scan.nii.gz" in str(info.value)


def test_non_orthonormal_direction_is_rejected():
    sheared = np.eye(4)
    sheared[0, 1] = 0.3
    with pytest.raises(InputError, match="scan.nrrd: the direction matrix is not orthonormal"):
        Volume(np.zeros((2, 2, 2)), sheared, source="scan.nrrd")


def test_extreme_anisotropy_and_left_handed_oblique_directions_are_valid():
    left_handed = rotation((30, 40, 50)) @ np.diag([1.0, 1.0, -1.0])
    volume = small_volume(direction=left_handed, spacing=(0.1, 0.1, 20.0))
    assert np.linalg.det(volume.direction) < 0
    np.testing.assert_allclose(volume.spacing, [0.1, 0.1, 20.0])


# --- Reading and writing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_write_read_round_trip_keeps_array_and_oblique_geometry(tmp_path, suffix):
    volume = small_volume(direction=LPS_OBLIQUE, spacing=(0.7, 1.1, 3.3))
    back = read_volume(write_volume(volume, tmp_path / f"v{suffix}"))
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.ijk_to_ras, volume.ijk_to_ras, atol=1e-5)


def test_sitk_lps_geometry_is_converted_to_ras(tmp_path):
    image = sitk.GetImageFromArray(np.zeros((3, 4, 5), np.float32))
    image.SetOrigin((10.0, 20.0, 30.0))  # LPS
    image.SetSpacing((1.0, 2.0, 3.0))
    sitk.WriteImage(image, str(tmp_path / "lps.mha"))
    volume = read_volume(tmp_path / "lps.mha")
    np.testing.assert_allclose(volume.origin, [-10.0, -20.0, 30.0])
    np.testing.assert_allclose(volume.ijk_to_ras[:3, :3], np.diag([-1.0, -2.0, 3.0]))
    assert volume.axis_codes() == ("L", "P", "S")


def test_dicom_series_folder_is_read_with_geometry(tmp_path):
    array = (np.arange(3 * 8 * 9).reshape(3, 8, 9) % 200).astype(np.int16)
    for k in range(3):
        image = sitk.GetImageFromArray(array[k : k + 1])
        image.SetSpacing((0.8, 0.8, 2.5))
        image.SetOrigin((5.0, 6.0, 7.0 + 2.5 * k))
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        for tag, value in {
            "0020|000e": "1.2.826.0.1.3680043.2.1125.1",  # series instance UID
            "0020|000d": "1.2.826.0.1.3680043.2.1125.2",
            "0020|0013": str(k + 1),
            "0020|0032": f"5\\6\\{7.0 + 2.5 * k}",
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0008|0060": "CT",
        }.items():
            image.SetMetaData(tag, value)
        writer.SetFileName(str(tmp_path / f"slice{k}.dcm"))
        writer.Execute(image)
    volume = read_volume(tmp_path)
    np.testing.assert_array_equal(volume.array, array)
    np.testing.assert_allclose(volume.spacing, [0.8, 0.8, 2.5], atol=1e-6)
    np.testing.assert_allclose(volume.origin, [-5.0, -6.0, 7.0], atol=1e-6)


def test_reader_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.nii.gz: no such file"):
        read_volume(tmp_path / "missing.nii.gz")
    (tmp_path / "junk.nii.gz").write_bytes(b"not an image")
    with pytest.raises(InputError, match="junk.nii.gz: cannot be read as an image"):
        read_volume(tmp_path / "junk.nii.gz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no DICOM series"):
        read_volume(tmp_path / "empty")
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((6, 7), np.float32)), str(tmp_path / "flat.nii.gz"))
    with pytest.raises(InputError, match="flat.nii.gz: the image is 2D"):
        read_volume(tmp_path / "flat.nii.gz")
    four_d = sitk.GetImageFromArray(np.zeros((2, 3, 4, 5), np.float32), isVector=False)
    sitk.WriteImage(four_d, str(tmp_path / "four.nii.gz"))
    with pytest.raises(InputError, match="four.nii.gz: the image has 4 dimensions"):
        read_volume(tmp_path / "four.nii.gz")
    rgb = sitk.GetImageFromArray(np.zeros((2, 3, 4, 3), np.uint8), isVector=True)
    sitk.WriteImage(rgb, str(tmp_path / "rgb.mha"))
    with pytest.raises(InputError, match="rgb.mha: the image has 3 components per voxel"):
        read_volume(tmp_path / "rgb.mha")
    with pytest.raises(InputError, match="unsupported output format"):
        write_volume(small_volume(), tmp_path / "v.png")


@pytest.mark.real_data
def test_real_files_match_nibabel_affine_and_array():
    nib = pytest.importorskip("nibabel")
    root = real_data()
    paths = [
        root / "spine_ct/tptbox_sample/ct.nii.gz",  # PIR, not RAS
        root / "spine_ct/totalseg_example/ct.nii.gz",
        root / "spine_mri/vb1/vb1_12_F02_msk.nii.gz",
    ]
    for path in paths:
        volume, reference = read_volume(path), nib.load(path)
        np.testing.assert_allclose(volume.ijk_to_ras, reference.affine, atol=1e-3, err_msg=str(path))
        np.testing.assert_array_equal(volume.array, np.asarray(reference.dataobj).transpose(2, 1, 0))
        assert volume.axis_codes() == nib.aff2axcodes(reference.affine)


# --- Vertebra positions ------------------------------------------------------------------------------------------


def test_level_names_follow_verse_ids():
    assert [level_name(i) for i in (1, 7, 8, 19, 20, 24, 25, 26)] == ["C1", "C7", "T1", "T12", "L1", "L5", "L6", "S1"]
    assert level_name(4, rank_labels=True) == "rank 4"
    with pytest.raises(InputError, match="vertebra label 99 is not a VerSe id"):
        level_name(99)


def test_disc_ids_name_the_two_vertebrae_around_the_disc():
    """TPTBox/VerSe: 100 + id is the disc below vertebra id; L5's and L6's discs sit on S1, T13's on L1."""
    assert [level_name(i) for i in (105, 119, 123, 124, 125, 128)] == \
        ["C5-C6", "T12-L1", "L4-L5", "L5-S1", "L6-S1", "T13-L1"]
    with pytest.raises(InputError, match="label 126 is not a VerSe id"):
        level_name(126)  # S1 has no disc below it in a VerSe mask


def test_mask_positions_keep_vertebrae_and_discs_and_drop_endplates():
    array = np.zeros((6, 6, 6), np.uint8)
    array[0, 0, 0], array[1, 1, 1], array[2, 2, 2] = 23, 123, 223  # L4, the L4-L5 disc, an endplate of L4
    mask = Volume(array, np.eye(4), name="mask")
    assert [(p.label, p.level) for p in positions_from_mask(mask)] == [(23, "L4"), (123, "L4-L5")]
    array[3, 3, 3] = 150  # an id of no convention: every label becomes a rank, none gets a wrong level
    assert [p.level for p in positions_from_mask(Volume(array, np.eye(4), name="mask"))] == \
        ["rank 23", "rank 123", "rank 150", "rank 223"]


def _stacked_vertebrae(count: int, gap_mm: int) -> Volume:
    """Vertebrae 1..count as 3 mm blocks ``gap_mm`` apart along k (1 mm voxels)."""
    array = np.zeros((count * gap_mm, 3, 3), dtype=np.uint8)
    for label in range(1, count + 1):
        array[(label - 1) * gap_mm:(label - 1) * gap_mm + 3] = label
    return Volume(array, np.eye(4), name="mask")


def test_ids_from_one_as_far_apart_as_lumbar_vertebrae_are_ranks_not_cervical_levels():
    """Lumbar masks that number vertebrae from 1 at the top (VB1's) would read as C1-C5: cervical centroids lie
    13-19 mm apart, thoracolumbar ones 26 mm or more."""
    assert [p.level for p in positions_from_mask(_stacked_vertebrae(5, 35))] == [f"rank {i}" for i in range(1, 6)]
    assert [p.level for p in positions_from_mask(_stacked_vertebrae(7, 16))] == [f"C{i}" for i in range(1, 8)]


@pytest.mark.real_data
def test_vb1_rank_masks_read_as_ranks_and_the_cervical_ct_as_c1_t1():
    root = real_data()
    vb1 = positions_from_mask(read_volume(root / "spine_mri" / "vb1" / "vb1_10_DzZ_T1_msk.nii.gz"))
    assert [p.level for p in vb1] == [f"rank {i}" for i in range(1, 10)]
    ct = positions_from_mask(read_volume(root / "spine_ct" / "fxgrader_ctfu00001_ses-20140908_split-1" /
                                         "vert_msk.nii.gz"))
    assert [p.level for p in ct] == ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "T1"]


def test_sample_mri_reads_its_cervical_vertebrae_and_discs():
    """The tptbox sample MRI's mask holds C5-C7, their discs (105, 106) and endplates (205-207)."""
    from DAECounterfactualLib.errors import DAECFError
    from DAECounterfactualLib.io.sampledata import sample_files

    try:
        files = sample_files("spine-mri")
    except DAECFError as error:
        pytest.skip(f"sample MRI not fetched (make setup fetches it): {error}")
    positions = positions_from_mask(read_volume(files["vertebra_mask"]))
    assert [(p.label, p.level) for p in positions] == \
        [(5, "C5"), (6, "C6"), (7, "C7"), (105, "C5-C6"), (106, "C6-C7")]
    c5, c6, disc = (next(p.ras for p in positions if p.label == k) for k in (5, 6, 105))
    assert c6[2] < disc[2] < c5[2]  # the C5-C6 disc lies between the two bodies (RAS: superior is +z)


def write_ctd(path, codes, entries):
    path.write_text(json.dumps([{"direction": list(codes)}, *entries]))
    return path


def test_verse_centroids_are_voxel_indices_along_i_j_k(tmp_path):
    volume = small_volume(direction=LPS_OBLIQUE, spacing=(0.5, 1.0, 2.0))
    ctd = write_ctd(tmp_path / "ctd.json", volume.axis_codes(), [{"label": 20, "X": 1.5, "Y": 2.0, "Z": 3.0}])
    (position,) = read_verse_centroids(ctd, volume)
    assert (position.label, position.level) == (20, "L1")
    np.testing.assert_allclose(position.ras, volume.ijk_to_ras[:3] @ [1.5, 2.0, 3.0, 1.0])


def test_centroid_file_errors(tmp_path):
    volume = small_volume()
    codes = volume.axis_codes()
    outside = write_ctd(tmp_path / "a.json", codes, [{"label": 21, "X": 1, "Y": 1, "Z": 40}])
    with pytest.raises(InputError, match="a.json: centroid of label 21 .* outside .*centroid file for another image"):
        read_verse_centroids(outside, volume)
    wrong_axes = write_ctd(tmp_path / "b.json", ("P", "I", "R"), [{"label": 21, "X": 1, "Y": 1, "Z": 1}])
    with pytest.raises(InputError, match="b.json: centroid axis codes"):
        read_verse_centroids(wrong_axes, volume)
    unknown = write_ctd(tmp_path / "c.json", codes, [{"label": 27, "X": 1, "Y": 1, "Z": 1}])
    with pytest.raises(InputError, match="label 27 is not a VerSe id"):
        read_verse_centroids(unknown, volume)
    assert read_verse_centroids(unknown, volume, rank_labels=True)[0].level == "rank 27"
    (tmp_path / "d.json").write_text("{not json")
    with pytest.raises(InputError, match="d.json: not valid JSON"):
        read_verse_centroids(tmp_path / "d.json", volume)
    no_header = tmp_path / "e.json"
    no_header.write_text(json.dumps([{"label": 1, "X": 0, "Y": 0, "Z": 0}]))
    with pytest.raises(InputError, match="e.json: not a VerSe centroid file"):
        read_verse_centroids(no_header, volume)


def test_centroids_from_mask_are_centres_of_mass_in_ras():
    array = np.zeros((6, 7, 8), np.uint8)
    array[1:3, 2:4, 3:7] = 20  # k 1..2, j 2..3, i 3..6
    array[4, 5, 0] = 22
    mask = Volume(array, geometry(LPS_OBLIQUE, (0.5, 1.5, 2.0), (3.0, 4.0, 5.0)), name="mask")
    positions = centroids_from_mask(mask)
    assert [p.label for p in positions] == [20, 22]
    np.testing.assert_allclose(positions[0].ras, mask.ijk_to_ras_points([4.5, 2.5, 1.5]))
    np.testing.assert_allclose(positions[1].ras, mask.ijk_to_ras_points([0.0, 5.0, 4.0]))
    with pytest.raises(InputError, match="mask: the mask contains no labelled voxels"):
        centroids_from_mask(Volume(np.zeros((2, 2, 2), np.uint8), np.eye(4), name="mask"))


def test_positions_from_ras_validates_points():
    positions = positions_from_ras({22: (1.0, 2.0, 3.0)})
    assert positions[0].level == "L3"
    with pytest.raises(InputError, match="label 22 must be 3 finite numbers"):
        positions_from_ras([(22, (1.0, np.nan, 3.0))])


@pytest.mark.real_data
def test_real_centroid_files_match_masks():
    root = real_data()
    case = root / "spine_ct" / "tptbox_sample"
    ct, mask = read_volume(case / "ct.nii.gz"), read_volume(case / "vert_msk.nii.gz")
    from_json = read_verse_centroids(case / "ctd.json", ct)
    from_mask = centroids_from_mask(mask)
    assert [p.level for p in from_json] == ["L2", "L3", "L4"]
    for a, b in zip(from_json, from_mask):
        assert np.linalg.norm(a.ras - b.ras) < 0.2  # the JSON is rounded to 0.1 voxel of 1.5 mm
    mri = root / "spine_mri" / "vb1"
    volume = read_volume(mri / "vb1_12_F02_img.nii.gz")
    ranks = read_verse_centroids(mri / "vb1_12_F02_ctd.json", volume, rank_labels=True)
    assert [p.level for p in ranks][:2] == ["rank 1", "rank 2"]
    assert all(a.ras[2] > b.ras[2] for a, b in zip(ranks, ranks[1:]))  # rank 1 = most superior
    with pytest.raises(InputError, match="centroid file for another image"):
        read_verse_centroids(case / "ctd.json", volume)


# --- Grades ------------------------------------------------------------------------------------------------------


def test_grade_table_reads_labels_or_level_names_and_joins(tmp_path):
    table = tmp_path / "grades.csv"
    table.write_text("case,vertebra,grade\nA,L1,0\nA,21,2\nA,L3,\nB,L1,3\n")
    grades = read_grade_table(table)
    assert grades == {("A", 20): 0, ("A", 21): 2, ("A", 22): None, ("B", 20): 3}
    positions = positions_from_ras({20: (0, 0, 0), 21: (0, 0, -30), 23: (0, 0, -90)})
    pairs = join_grades(positions, grades, "A")
    assert [(p.label, g) for p, g in pairs] == [(20, 0), (21, 2), (23, None)]
    with pytest.raises(InputError, match="case B grades vertebrae \\[20\\] that have no position"):
        join_grades(positions[1:], grades, "B")


@pytest.mark.parametrize(
    "text, message",
    [
        ("case,label,grade\nA,20,5\n", "line 2: grade '5' is not a Genant grade"),
        ("case,label,grade\nA,20,x\n", "line 2: grade 'x' is not a number"),
        ("case,label,grade\nA,20,1\nA,20,2\n", "line 3: case A vertebra 20 is listed twice"),
        ("case,label,severity\nA,20,1\n", "needs one of the columns \\['grade'"),
        ("case,label,grade\nA,Z9,1\n", "vertebra 'Z9' is neither"),
    ],
)
def test_grade_table_errors(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_grade_table(path)


@pytest.mark.real_data
def test_real_morphometry_table_reads_with_mask_labels():
    root = real_data()
    grades = read_grade_table(root / "spine_mri" / "vertebrae_morphometry.csv")
    assert len(grades) == 345
    assert set(g for g in grades.values() if g is not None) <= {0, 1, 2}
    assert grades[("vb3_01", 20)] in (0, 1, 2)


# --- 2D datasets -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw"])
def test_npz_layouts_become_nchw_float32(tmp_path, layout):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(4, 3, 32, 30), dtype=np.uint8)
    images = {"nhw": base[:, 0], "nhwc": base.transpose(0, 2, 3, 1), "nchw": base}[layout]
    np.savez(tmp_path / "d.npz", train_images=images, train_labels=np.arange(4, dtype=np.uint8)[:, None])
    data = read_npz_dataset(tmp_path / "d.npz", "train")
    expected = base[:, :1] if layout == "nhw" else base
    assert data.images.dtype == np.float32
    np.testing.assert_array_equal(data.images, expected)
    np.testing.assert_array_equal(data.labels, [0, 1, 2, 3])


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"val_images": np.zeros((2, 28, 28)), "val_labels": np.zeros(2)}, "missing array\\(s\\) \\['train_images'"),
        ({"train_images": np.zeros((2, 5, 28, 28)), "train_labels": np.zeros(2)}, "not N x H x W"),
        ({"train_images": np.zeros((2, 16, 16)), "train_labels": np.zeros(2)}, "16 x 16 px"),
        ({"train_images": np.zeros((2, 28, 28)), "train_labels": np.zeros(3)}, "3 labels for 2 images"),
        ({"train_images": np.zeros((2, 28, 28)), "train_labels": np.zeros((2, 2))}, "not one label per image"),
        ({"train_images": np.zeros((2, 28, 28)), "train_labels": np.array([0.5, 1])}, "whole numbers"),
        ({"train_images": np.full((2, 28, 28), np.nan), "train_labels": np.zeros(2)}, "NaN"),
        ({"train_images": np.zeros((2, 28, 28), bool), "train_labels": np.zeros(2)}, "not an integer or float"),
        ({"train_images": np.array([None, None]), "train_labels": np.zeros(2)}, "without pickle"),
    ],
)
def test_npz_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match=message) as info:
        read_npz_dataset(tmp_path / "bad.npz", "train")
    assert "bad.npz" in str(info.value)


@pytest.mark.real_data
def test_real_retinamnist():
    root = real_data()
    data = read_npz_dataset(root / "retinamnist" / "retinamnist.npz", "val")
    assert data.images.shape == (120, 3, 28, 28)
    assert np.bincount(data.labels).tolist() == [54, 12, 28, 20, 6]


def test_image_folder_reads_png_and_nifti_with_folder_labels(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    pictures = rng.integers(0, 255, size=(3, 32, 32), dtype=np.uint8)
    for n, label in enumerate((0, 1, 1)):
        (tmp_path / "png" / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pictures[n]).save(tmp_path / "png" / str(label) / f"img{n}.png")
    data = read_image_folder(tmp_path / "png")
    assert data.images.shape == (3, 1, 32, 32)
    np.testing.assert_array_equal(data.images[:, 0], pictures)
    np.testing.assert_array_equal(data.labels, [0, 1, 1])
    (tmp_path / "nii").mkdir()
    sitk.WriteImage(sitk.GetImageFromArray(pictures[0].astype(np.float32)), str(tmp_path / "nii" / "s.nii.gz"))
    sliced = read_image_folder(tmp_path / "nii")
    assert sliced.labels is None
    np.testing.assert_array_equal(sliced.images[0, 0], pictures[0])
    Image.fromarray(pictures[0, :30]).save(tmp_path / "png" / "1" / "odd.png")
    with pytest.raises(InputError, match="differ in size"):
        read_image_folder(tmp_path / "png")
    (tmp_path / "none").mkdir()
    with pytest.raises(InputError, match="none: the folder holds no PNG or NIfTI images"):
        read_image_folder(tmp_path / "none")
    with pytest.raises(InputError, match="absent: not a folder"):
        read_image_folder(tmp_path / "absent")


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_with_infinite_or_nan_voxels_is_refused_with_the_count(tmp_path, suffix):
    """ITK reads non-finite float voxels of a NIfTI file as 0: a slab of +Inf would be graded as tissue."""
    array = np.zeros((6, 7, 8), np.float32)
    array[2:4] = np.inf
    array[0, 0, 0] = np.nan
    path = tmp_path / f"slab{suffix}"
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    with pytest.raises(InputError, match=r"slab.* \(1 NaN, 112 infinite\); ITK would read them as 0"):
        read_volume(path)
    array[~np.isfinite(array)] = 0.0
    sitk.WriteImage(sitk.GetImageFromArray(array.astype(np.float64)), str(path))
    assert read_volume(path).array.shape == (6, 7, 8)


def test_vertebral_bodies_keep_each_vertebras_id_on_its_body_subregions_only():
    ids = np.zeros((4, 6, 5), dtype=np.uint8)
    ids[:2], ids[2:] = 20, 21
    parts = np.zeros_like(ids)
    parts[:, :3] = 49  # the anterior half is body (cortex, interior), the rest posterior elements
    parts[:, 1, 0] = 50
    parts[:, 4] = 41
    matrix = geometry(LPS_OBLIQUE, (1.0, 2.0, 3.0), (4.0, 5.0, 6.0))
    bodies = vertebral_bodies(Volume(ids, matrix, name="vert"), Volume(parts, matrix, name="subreg"))
    np.testing.assert_array_equal(bodies.array, np.where(parts > 45, ids, 0))
    np.testing.assert_array_equal(bodies.ijk_to_ras, matrix)
    whole, body = (centroids_from_mask(v) for v in (Volume(ids, matrix), bodies))
    assert [p.label for p in body] == [20, 21] and not np.allclose(body[0].ras, whole[0].ras)
    with pytest.raises(InputError, match="subreg: the subregion mask does not share the grid of vert"):
        vertebral_bodies(Volume(ids, matrix, name="vert"), Volume(parts[:, :, :4], matrix, name="subreg"))
