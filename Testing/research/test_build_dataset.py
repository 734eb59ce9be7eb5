"""scripts/build_dataset.py on phantom data laid out like ../shared/data, and on the real data when present."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.inference.geometry import patch_pixel_to_ras
from DAECounterfactualResearch.synthesis import export_phantom, genant_grade, make_spine_phantom
from spine_testdata import real_data

SMALL = {"shape": (96, 80, 72), "labels": (20, 21, 22)}
SEQUENCES = ("T1 TSE", "TIRM", "per repo table: T1 FFE (chemical-shift water-fat); contrast not documented")


@pytest.fixture(scope="module")
def build():
    import DAECounterfactualResearch.dataset_building as build

    return build


@pytest.fixture(scope="module")
def build_main(script_main):
    return script_main("build_dataset")


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    """A data root whose spine_ct/ and spine_mri/ hold phantoms in the layout of the shared real data."""
    root = tmp_path_factory.mktemp("data")
    ct_rows, mri_rows, case_rows = [], [], []
    for n in range(3):
        phantom = make_spine_phantom(seed=10 + n, **SMALL)
        export_phantom(phantom, root / "spine_ct" / f"ct_case{n}")
        ct_rows += [[f"ct_case{n}", label, 0 if label != 22 else ""] for label in SMALL["labels"]]
        case = f"vb3_{n:02d}"
        folder = root / "spine_mri" / "vb3"
        paths = export_phantom(phantom, folder / "tmp")
        shutil.move(paths["ct"], folder / f"{case}_img.nii.gz")
        shutil.move(paths["ctd"], folder / f"{case}_ctd.json")
        shutil.move(paths["mask"], folder / f"{case}_msk.nii.gz")
        shutil.rmtree(folder / "tmp")
        mri_rows += [[case, label, 1 if label == 21 else 0] for label in SMALL["labels"]]
        case_rows.append([case, "VB3", "same" if n < 2 else "other", "", SEQUENCES[n]])
    case_rows.append(["vb3_99", "VB3", "", "vb3_00", ""])  # a duplicate the builder must skip
    write_csv(root / "spine_ct" / "vertebrae.csv", ["case", "label", "morph_grade"], ct_rows)
    write_csv(root / "spine_mri" / "vertebrae_morphometry.csv", ["case", "mask_label", "morph_grade"], mri_rows)
    write_csv(root / "spine_mri" / "cases.csv", ["case", "dataset", "subject_group", "duplicate_of", "sequence"],
              case_rows)
    return root


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def test_ct_preset_builds_a_consistent_patient_split_dataset(fake_root, tmp_path, build_main):
    out = tmp_path / "ct"
    argv = ["--preset", "ct", "--data-root", str(fake_root), "--out", str(out), "--size-px", "48",
            "--lateral-offsets=-3,0,3", "--fracture-losses", "0.3", "--fracture-kinds", "wedge,crush",
            "--phantoms", "2", "--split-fractions", "0.5,0.25,0.25"]
    assert build_main(argv) == 0
    data = load_npz(out / "dataset.npz")
    n = len(data["images"])
    assert data["images"].dtype == np.float16 and data["images"].shape[1:] == (1, 48, 48)
    assert np.abs(data["images"].astype(np.float32)).max() <= 1.0
    assert all(len(values) == n for values in data.values())
    # patient-level split: a case never spans two splits
    for case in set(data["case_id"]):
        assert len(set(data["split"][data["case_id"] == case])) == 1
    assert set(data["split"]) <= {"train", "val", "test"}
    assert set(data["contrast"]) == {"CT"}  # phantoms and real CTs alike
    # 3 real cases x 3 vertebrae x 3 offsets unsimulated, + 2 kinds simulated on the intact (grade 0) ones
    real = data["origin"] == "real"
    assert (real & ~data["simulated"]).sum() == 27
    assert set(data["grades"][real & ~data["simulated"]]) == {0, -1}  # the empty grade of L3 is -1
    simulated = real & data["simulated"]
    assert simulated.sum() > 0 and (simulated.sum() <= 2 * 2 * 3 * 3)
    np.testing.assert_allclose(data["measured_height_loss"][simulated], 0.3, atol=0.05)
    expected = [genant_grade(x) for x in data["measured_height_loss"][simulated]]
    assert data["grades"][simulated].tolist() == expected
    assert (data["origin"] == "phantom").sum() == 2 * 3 * 3
    # patch_to_ras puts the centre pixel on the vertebra's centroid + lateral offset
    manifest = json.loads((out / "manifest.json").read_text())
    first = int(np.nonzero(real & (data["lateral_offset_mm"] == 3.0))[0][0])
    centre = patch_pixel_to_ras(data["patch_to_ras"][first].astype(np.float64), [[23.5, 23.5]])[0]
    ctd = json.loads((fake_root / "spine_ct" / data["case_id"][first] / "ctd.json").read_text())
    assert ctd[0]["direction"] == ["R", "A", "S"]
    # the phantom's ijk->RAS is a pure scaling about the centre, so RAS x of voxel X is (X - (ni-1)/2) * si
    entry = next(e for e in ctd[1:] if e["label"] == data["label"][first])
    assert centre[0] == pytest.approx((entry["X"] - 35.5) * 1.0 + 3.0, abs=0.06)
    # manifest: inputs hashed, counts per split/grade match the arrays
    for record in manifest["inputs"]:
        digest = hashlib.sha256((fake_root / record["path"]).read_bytes()).hexdigest()
        assert digest == record["sha256"]
    assert any(r["path"] == "spine_ct/ct_case0/ct.nii.gz" for r in manifest["inputs"])
    for split, table in manifest["counts"].items():
        chosen = data["split"] == split
        assert sum(v for k, v in table.items() if k != "cases") == chosen.sum()
        assert table["cases"] == len(set(data["case_id"][chosen]))
    assert manifest["output"]["samples"] == n
    assert manifest["settings"]["preprocessing"] == {"kind": "ct_window", "low": -1000.0, "high": 1500.0}


def test_mri_preset_keeps_subject_groups_together_and_skips_duplicates(fake_root, tmp_path, build_main):
    out = tmp_path / "mri"
    for seed in range(4):  # whatever the shuffle, the two cases of one subject share a split
        argv = ["--preset", "mri", "--data-root", str(fake_root), "--out", str(out), "--size-px", "32",
                "--lateral-offsets", "0", "--fracture-losses=", "--seed", str(seed)]
        assert build_main(argv) == 0
        data = load_npz(out / "dataset.npz")
        assert sorted(set(data["case_id"])) == ["vb3_00", "vb3_01", "vb3_02"]
        splits = {case: set(data["split"][data["case_id"] == case]) for case in ("vb3_00", "vb3_01")}
        assert splits["vb3_00"] == splits["vb3_01"] and len(splits["vb3_00"]) == 1
    assert sorted(data["grades"].tolist()) == [0] * 6 + [1] * 3
    contrast = {case: set(data["contrast"][data["case_id"] == case]) for case in ("vb3_00", "vb3_01", "vb3_02")}
    assert contrast == {"vb3_00": {"T1"}, "vb3_01": {"TIRM"}, "vb3_02": {"water-fat"}}  # cases.csv's sequence
    assert json.loads((out / "manifest.json").read_text())["settings"]["preprocessing"]["kind"] == "percentile"


def test_mri_preset_simulates_fractures_on_intact_bodies_from_their_masks(fake_root, tmp_path, build_main):
    out = tmp_path / "mri-fractures"
    argv = ["--preset", "mri", "--data-root", str(fake_root), "--out", str(out), "--size-px", "32",
            "--lateral-offsets", "0", "--fracture-losses", "0.45", "--fracture-kinds", "wedge"]
    assert build_main(argv) == 0
    data = load_npz(out / "dataset.npz")
    simulated = data["simulated"]
    assert simulated.sum() > 0 and set(data["grades"][simulated].tolist()) == {3}
    assert set(data["label"][simulated].tolist()) <= {20, 22}  # only the intact (grade 0) bodies are fractured


def test_superior_offsets_cut_every_body_and_its_fractures_again_higher_and_lower(fake_root, tmp_path, build_main):
    """--superior-offsets: each point moved up or down the spine (as a click off the centre), its fractures simulated
    again there, every copy its own pair and marked with its offset; the centred patches are those of a plain build."""
    common = ["--preset", "mri", "--data-root", str(fake_root), "--size-px", "32", "--lateral-offsets", "0",
              "--fracture-losses", "0.45", "--fracture-kinds", "wedge"]
    assert build_main(common + ["--out", str(tmp_path / "plain")]) == 0
    assert build_main(common + ["--out", str(tmp_path / "moved"), "--superior-offsets=-3,0,3"]) == 0
    plain, moved = load_npz(tmp_path / "plain" / "dataset.npz"), load_npz(tmp_path / "moved" / "dataset.npz")
    offsets = moved["superior_offset_mm"]
    assert sorted(set(offsets.tolist())) == [-3.0, 0.0, 3.0] and set(plain["superior_offset_mm"].tolist()) == {0.0}
    for offset in (-3.0, 3.0):  # every body and fracture at every offset (the phantoms lie well inside the scan)
        assert (offsets == offset).sum() == len(plain["images"])
        assert moved["simulated"][offsets == offset].sum() == plain["simulated"].sum()
    np.testing.assert_array_equal(moved["images"][offsets == 0], plain["images"])
    assert len(set(moved["pair"])) == 3 * len(set(plain["pair"]))
    up = int(np.flatnonzero(offsets == 3.0)[0])
    same = int(np.flatnonzero((offsets == 0) & (moved["pair"] == moved["pair"][up].replace(":3:", ":")))[0])
    shift = (moved["patch_to_ras"][up] - moved["patch_to_ras"][same]).astype(np.float64)
    np.testing.assert_allclose(shift[:3, 3], [0.0, 0.0, 3.0], atol=1e-4)  # the patch's origin moved 3 mm up
    assert json.loads((tmp_path / "moved" / "manifest.json").read_text())["settings"]["superior_offsets_mm"] == \
        [-3.0, 0.0, 3.0]


def test_simulations_per_body_keeps_one_fracture_per_intact_body_and_repeats_its_draw(fake_root, tmp_path, build_main):
    argv = ["--preset", "ct", "--data-root", str(fake_root), "--size-px", "48", "--lateral-offsets=-3,0,3",
            "--fracture-losses", "0.22,0.45", "--fracture-kinds", "wedge,crush", "--phantoms", "0",
            "--simulations-per-body", "1"]
    built = []
    for name in ("a", "b"):
        assert build_main(argv + ["--out", str(tmp_path / name)]) == 0
        built.append(load_npz(tmp_path / name / "dataset.npz"))
    data = built[0]
    intact = ~data["simulated"] & (data["grades"] == 0)
    bodies = lambda mask: sorted(zip(data["case_id"][mask], data["label"][mask], data["lateral_offset_mm"][mask]))
    assert bodies(data["simulated"]) == bodies(intact)  # exactly one simulated fracture for each intact body
    pairs = set(zip(data["requested_height_loss"][data["simulated"]].round(2), data["fracture_kind"][data["simulated"]]))
    assert len(pairs) > 1  # the pair is drawn per body, not always the first
    for key in ("images", "fracture_kind", "requested_height_loss"):
        np.testing.assert_array_equal(built[1][key], data[key])


def test_augmentations_are_shared_within_a_pair_and_border_patches_are_left_out(fake_root, tmp_path, build_main):
    """Issue 21: a body's intact patch and its simulated fractures get the same scanner augmentation (one pair),
    so the fracture is their only difference; a patch mostly beyond the scan is left out with its fractures."""
    base = ["--preset", "ct", "--data-root", str(fake_root), "--size-px", "48", "--lateral-offsets", "0",
            "--fracture-losses", "0.3", "--fracture-kinds", "wedge", "--phantoms", "0"]
    assert build_main(base + ["--out", str(tmp_path / "plain")]) == 0
    assert build_main(base + ["--out", str(tmp_path / "aug"), "--augmentations", "2"]) == 0
    plain, data = load_npz(tmp_path / "plain" / "dataset.npz"), load_npz(tmp_path / "aug" / "dataset.npz")
    assert len(data["images"]) == 3 * len(plain["images"])
    identity = data["augmentation"] == 0
    np.testing.assert_array_equal(data["images"][identity], plain["images"])  # augmentation 0 is the patch as is
    assert not np.array_equal(data["images"][data["augmentation"] == 1], plain["images"])
    for pair in set(data["pair"][data["simulated"]]):
        members = np.flatnonzero(data["pair"] == pair)
        assert sorted(data["simulated"][members].tolist()) == [False, True]
        intact, fractured = (data["images"][m, 0].astype(np.float32) for m in sorted(members, key=lambda m: data["simulated"][m]))
        far = slice(42, 48)  # rows below the body, which the fracture leaves: the same augmentation, the same pixels
        np.testing.assert_allclose(intact[far], fractured[far], atol=2e-3)
    bordered = plain["fill_fraction"] > 0.05  # the end vertebrae of the small phantoms reach past the scan
    assert bordered.any() and not bordered.all()
    assert build_main(base + ["--out", str(tmp_path / "border"), "--max-fill", "0.05"]) == 0
    kept = load_npz(tmp_path / "border" / "dataset.npz")
    np.testing.assert_array_equal(kept["images"], plain["images"][~bordered])  # with their fractures
    skipped = json.loads((tmp_path / "border" / "manifest.json").read_text())["skipped"]
    assert len(skipped) == len(set(plain["pair"][bordered])) and "beyond the scan" in skipped[0]


def test_phantom_max_fractures_sets_the_share_of_fractured_phantom_bodies(build):
    def fractured_share(max_fractures: int) -> float:
        rng = np.random.default_rng(0)
        draws = [build.draw_phantom_fractures(rng, (20, 21, 22), [0.3], ["wedge"], max_fractures) for _ in range(600)]
        return np.mean([len(d) for d in draws]) / 3

    assert fractured_share(0) == 0
    assert fractured_share(2) == pytest.approx(1 / 3, abs=0.04)
    assert fractured_share(3) == pytest.approx(1 / 2, abs=0.04)
    with pytest.raises(InputError, match="three vertebrae|3 vertebrae"):
        build.phantom_case_specs(1, 0, [0.3], ["wedge"], 4)


def test_assign_splits_is_deterministic_by_group(build):
    groups = [f"g{n}" for n in range(20)]
    first = build.assign_splits(groups, (0.7, 0.15, 0.15), seed=1)
    assert first == build.assign_splits(list(reversed(groups)), (0.7, 0.15, 0.15), seed=1)
    counts = {s: list(first.values()).count(s) for s in ("train", "val", "test")}
    assert counts == {"train": 14, "val": 3, "test": 3}
    assert build.assign_splits(groups, (0.7, 0.15, 0.15), seed=2) != first


def test_intensity_range_rewindows_the_same_patches(fake_root, tmp_path, build_main):
    """A bone window (-200..800 HU) gives the same patches as the default window, only rescaled and clipped."""
    common = ["--preset", "ct", "--data-root", str(fake_root), "--size-px", "32", "--lateral-offsets=0",
              "--fracture-losses", "0.3", "--fracture-kinds", "wedge", "--phantoms", "1", "--limit-cases", "1"]
    assert build_main(common + ["--out", str(tmp_path / "wide")]) == 0
    assert build_main(common + ["--out", str(tmp_path / "bone"), "--intensity-range=-200,800"]) == 0
    wide, bone = load_npz(tmp_path / "wide" / "dataset.npz"), load_npz(tmp_path / "bone" / "dataset.npz")
    assert json.loads((tmp_path / "bone" / "manifest.json").read_text())["settings"]["preprocessing"] == {
        "kind": "ct_window", "low": -200.0, "high": 800.0}
    hu_wide = (wide["images"].astype(np.float32) + 1) / 2 * 2500 - 1000
    hu_bone = (bone["images"].astype(np.float32) + 1) / 2 * 1000 - 200
    inside = (hu_wide > -150) & (hu_wide < 750)  # within both windows, away from the bone window's clipping
    assert inside.mean() > 0.3
    np.testing.assert_allclose(hu_bone[inside], hu_wide[inside], atol=6.0)  # float16 steps of the wide window
    assert bone["images"].astype(np.float32).std() > 2 * wide["images"].astype(np.float32).std()  # 2.5x the contrast


@pytest.mark.parametrize("text", ["800,-200", "100", "a,b"])
def test_intensity_range_must_be_an_increasing_pair(fake_root, tmp_path, text, build_main):
    with pytest.raises(InputError, match="--intensity-range needs LOW,HIGH"):
        build_main(["--preset", "ct", "--data-root", str(fake_root), "--out", str(tmp_path / "o"),
                    f"--intensity-range={text}"])


def test_excluded_cases_are_left_out_and_an_unknown_one_is_refused(fake_root, tmp_path, build_main):
    argv = ["--preset", "ct", "--data-root", str(fake_root), "--phantoms", "0", "--lateral-offsets", "0",
            "--fracture-losses", "0.3", "--fracture-kinds", "wedge"]
    assert build_main([*argv, "--out", str(tmp_path / "all")]) == 0
    assert build_main([*argv, "--out", str(tmp_path / "less"), "--exclude-cases", "ct_case0"]) == 0
    everything, rest = (set(load_npz(tmp_path / name / "dataset.npz")["case_id"]) for name in ("all", "less"))
    assert "ct_case0" in everything and rest == everything - {"ct_case0"}
    assert json.loads((tmp_path / "less" / "manifest.json").read_text())["settings"]["exclude_cases"] == "ct_case0"
    with pytest.raises(InputError, match=r"--exclude-cases: no such case\(s\) \['ct_case9'\]; cases: ct_case0"):
        build_main([*argv, "--out", str(tmp_path / "o"), "--exclude-cases", "ct_case9"])


def test_missing_data_root_is_a_clear_error(tmp_path, build_main):
    with pytest.raises(InputError, match="vertebrae.csv: no such file \\(is --data-root right\\?\\)"):
        build_main(["--preset", "ct", "--data-root", str(tmp_path), "--out", str(tmp_path / "o")])


@pytest.mark.real_data
def test_retina_preset_on_the_real_data(tmp_path, build_main):
    root = real_data()
    assert build_main(["--preset", "retina", "--data-root", str(root), "--out", str(tmp_path)]) == 0
    data = load_npz(tmp_path / "dataset.npz")
    assert data["images"].shape == (1200, 3, 28, 28)
    val = data["split"] == "val"
    assert np.bincount(data["grades"][val]).tolist() == [54, 12, 28, 20, 6]
    assert np.bincount(data["grades"][~val]).tolist() == [486, 128, 206, 194, 66]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["inputs"][0]["path"] == "retinamnist/retinamnist.npz"


@pytest.mark.real_data
def test_ct_preset_on_the_real_data(tmp_path, build_main):
    root = real_data()
    argv = ["--preset", "ct", "--data-root", str(root), "--out", str(tmp_path), "--phantoms", "0",
            "--lateral-offsets", "0", "--fracture-losses", "0.3", "--fracture-kinds", "wedge"]
    assert build_main(argv) == 0
    data = load_npz(tmp_path / "dataset.npz")
    cases = {d.name: d for d in (root / "spine_ct").iterdir() if (d / "ct.nii.gz").exists()}
    assert set(data["case_id"]) == set(cases)  # every real CT folder (two at first, five since the FX-Grader cases)
    plain = ~data["simulated"]
    for case, folder in cases.items():  # one plain patch per vertebra of the centroid file, at the one offset
        listed = len(json.loads((folder / "ctd.json").read_text())) - 1
        assert (plain & (data["case_id"] == case)).sum() == listed, case
    assert sorted(data["level"][plain & (data["case_id"] == "tptbox_sample")].tolist()) == ["L2", "L3", "L4"]
    assert (data["simulated"] & (data["grades"] == 2)).sum() >= 4  # most intact bodies take a 30 % wedge


def test_centred_on_the_body_and_along_the_spine_a_tilted_spine_gives_the_upright_spines_patches(build):
    """The same phantom, its scan and points rotated 15 degrees about the left-right axis: cut along the spine, every
    patch and simulated fracture equals the upright one's; and points displaced from the bodies (a whole vertebra's
    centroid) are moved back onto them."""
    from DAECounterfactualLib.io.volumes import Volume
    from DAECounterfactualLib.model.preprocessing import Preprocessing

    phantom = make_spine_phantom(seed=3, **SMALL)
    upright = build.SpineCase("p", phantom.volume, phantom.positions, {p.label: 0 for p in phantom.positions},
                              body_mask=phantom.mask)
    angle = np.radians(15.0)
    turn = np.eye(4)
    turn[1:3, 1:3] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]

    def turned(volume):
        return Volume(volume.array, turn @ volume.ijk_to_ras)

    displaced = [replace(p, ras=turn[:3, :3] @ p.ras + [0.0, -9.0, 2.0]) for p in phantom.positions]
    tilted = build.SpineCase("p", turned(phantom.volume), displaced, upright.grades, body_mask=turned(phantom.mask))
    settings = build.Settings(32, 1.0, [0.0], Preprocessing("ct_window", -1000.0, 1500.0), [0.32], ["wedge"],
                              centre_on_body=True, along_spine=True)
    first, second = (list(build.case_samples(case, settings, [])) for case in (upright, tilted))
    assert len(first) == len(second) > len(phantom.positions)  # every body and its fracture
    for a, b in zip(first, second):
        assert (a["label"], a["simulated"]) == (b["label"], b["simulated"])
        assert b["tilt_deg"] == pytest.approx(a["tilt_deg"] - 15.0, abs=1e-6)
        np.testing.assert_allclose(b["image"], a["image"], atol=1e-3)
    plain = build.Settings(32, 1.0, [0.0], settings.preprocessing, [], [])
    off = list(build.case_samples(tilted, plain, []))
    assert max(np.abs(a["image"] - b["image"]).max() for a, b in zip(first, off)) > 0.5  # as placed, they differ
