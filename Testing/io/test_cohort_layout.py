"""Finding the cases of a study folder (BIDS/VerSe names) and reading a pairs CSV; no image is read here."""

from pathlib import Path

import pytest

from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.io.cohort import PATTERNS, find_cases, read_pairs


def touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def summary(cases):
    return [(c.case_id, c.image.name, c.positions.name if c.positions else None, c.kind, c.modality) for c in cases]


def test_verse_and_bids_names_pair_by_their_entities(tmp_path):
    touch(tmp_path,
          "rawdata/sub-verse004/sub-verse004_ct.nii.gz",  # VerSe'19: mask and centroids; the mask is taken
          "derivatives/sub-verse004/sub-verse004_seg-vert_msk.nii.gz",
          "derivatives/sub-verse004/sub-verse004_seg-subreg_ctd.json",
          "rawdata/sub-gl003/sub-gl003_dir-ax_ct.nii.gz",  # VerSe'20: a dir- entity, centroids only
          "derivatives/sub-gl003/sub-gl003_dir-ax_seg-subreg_ctd.json",
          "rawdata/sub-m01/ses-1/anat/sub-m01_ses-1_T2w.nii",  # BIDS MRI, TPTBox derivative naming its mod-
          "derivatives/sub-m01/sub-m01_ses-1_mod-T2w_seg-vert_msk.nii.gz",
          "derivatives/sub-m01/sub-m01_ses-1_mod-T1w_seg-vert_msk.nii.gz",  # another image's mask
          "sample/sub-ct_label-22_ct.nii.gz",  # TPTBox: seg-vert among the entities; a subregion mask is no target
          "sample/sub-ct_seg-vert_label-22_msk.nii.gz", "sample/sub-ct_seg-subreg_label-22_msk.nii.gz",
          "rawdata/sub-verse004/.hidden/sub-x_ct.nii.gz")  # hidden folders are left alone
    assert summary(find_cases(tmp_path)) == [
        ("sub-ct_label-22", "sub-ct_label-22_ct.nii.gz", "sub-ct_seg-vert_label-22_msk.nii.gz", "mask", "CT"),
        ("sub-gl003_dir-ax", "sub-gl003_dir-ax_ct.nii.gz", "sub-gl003_dir-ax_seg-subreg_ctd.json", "centroids", "CT"),
        ("sub-m01_ses-1", "sub-m01_ses-1_T2w.nii", "sub-m01_ses-1_mod-T2w_seg-vert_msk.nii.gz", "mask", "MR"),
        ("sub-verse004", "sub-verse004_ct.nii.gz", "sub-verse004_seg-vert_msk.nii.gz", "mask", "CT"),
    ]


def test_an_image_without_positions_is_a_case_that_says_what_was_looked_for(tmp_path):
    touch(tmp_path, "rawdata/sub-a/sub-a_ct.nii.gz", "derivatives/sub-a/sub-a_seg-vert_msk.nii.gz",
          "rawdata/sub-b/sub-b_ct.nii.gz", "rawdata/sub-b/sub-b_T2w.nii.gz",  # two images of one subject
          "derivatives/sub-c/sub-c_seg-subreg_ctd.json", "derivatives/sub-c/sub-c_seg-vert_ctd.json",
          "rawdata/sub-c/sub-c_ct.nii.gz")
    cases = {c.case_id: c for c in find_cases(tmp_path)}
    assert sorted(cases) == ["sub-a", "sub-b_T2w", "sub-b_ct", "sub-c"]
    assert cases["sub-b_ct"].positions is None
    assert "named by the entities sub-b: *_seg-vert[_*]_msk.nii[.gz] or *_ctd.json" in cases["sub-b_ct"].missing
    assert cases["sub-c"].positions is None and "several centroids files match" in cases["sub-c"].missing
    with pytest.raises(InputError, match="no positions file found"):
        cases["sub-b_T2w"].read()


@pytest.mark.parametrize("names, found", [((), "no image matched"),
                                          (("rawdata/sub-a/sub-a_ct.nii.gz", "masks/a_msk.nii.gz"),
                                           "1 image(s), but no positions file for any"),
                                          (("scan.nii.gz", "scan_seg.nii.gz"), "no image matched")])
def test_a_folder_without_pairs_is_one_error_naming_the_patterns(tmp_path, names, found):
    touch(tmp_path, *names)
    with pytest.raises(InputError) as error:
        find_cases(tmp_path)
    assert f"no image/positions pairs found ({found}); patterns tried: {PATTERNS}" in str(error.value)
    assert "--pairs" in str(error.value)
    with pytest.raises(InputError, match="not a folder"):
        find_cases(tmp_path / "absent")


def test_one_case_id_twice_is_refused(tmp_path):
    touch(tmp_path, "a/sub-a_ct.nii.gz", "b/sub-a_ct.nii.gz", "d/sub-a_seg-vert_msk.nii.gz")
    with pytest.raises(InputError, match="case 'sub-a' twice"):
        find_cases(tmp_path)


def test_pairs_csv_paths_are_relative_to_it_and_keep_its_order(tmp_path):
    table = tmp_path / "lists" / "pairs.csv"
    table.parent.mkdir()
    table.write_text("image,mask,centroids,modality\n"
                     "../img/z.nii.gz,../seg/z.nii.gz,,CT\n"
                     f"{tmp_path}/img/a.nrrd,,../seg/a.json,mri\n", encoding="utf-8")
    cases = read_pairs(table)
    assert [(c.case_id, c.image, c.positions, c.kind, c.modality) for c in cases] == [
        ("z", table.parent / "../img/z.nii.gz", table.parent / "../seg/z.nii.gz", "mask", "CT"),
        ("a.nrrd", tmp_path / "img/a.nrrd", table.parent / "../seg/a.json", "centroids", "MR")]


@pytest.mark.parametrize("text, message", [
    ("image,label\na.nii,1\n", "needs the columns image and mask or centroids (has image, label)"),
    ("image,mask\n", "lists no cases"),
    ("image,mask,centroids\na.nii,m.nii,c.json\n", "line 2: needs an image and exactly one of mask or centroids"),
    ("image,mask\n,m.nii\n", "line 2: needs an image"),
    ("image,mask,modality\na.nii,m.nii,PET\n", "line 2: modality 'PET' is neither CT nor MR"),
    ("image,mask,case\na.nii,m.nii,x\nb.nii,n.nii,x\n", "case 'x' twice"),
])
def test_bad_pairs_csv_is_one_error_naming_the_line(tmp_path, text, message):
    table = tmp_path / "pairs.csv"
    table.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as error:
        read_pairs(table)
    assert message in str(error.value) and str(table) in str(error.value)
