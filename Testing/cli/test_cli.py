"""The daecf command line on a phantom CT and a MedMNIST-style file, with the tiny test bundle."""

import csv
import json

import numpy as np
import pytest

from DAECounterfactualLib.cli.commands import main
from DAECounterfactualResearch.synthesis import export_phantom, make_spine_phantom


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantom")
    export_phantom(make_spine_phantom(seed=3), folder)
    return folder


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("source", ["mask", "centroids"])
def test_score_a_volume_from_mask_or_centroids(phantom_dir, blob_bundle, tmp_path, source):
    out = tmp_path / "scores.csv"
    flag = ["--mask", str(phantom_dir / "vert_msk.nii.gz")] if source == "mask" else \
        ["--centroids", str(phantom_dir / "ctd.json")]
    assert main(["score", "--bundle", str(blob_bundle), "--task", "size", "--out", str(out), *flag,
                 str(phantom_dir / "ct.nii.gz")]) == 0
    rows = _rows(out)
    assert [r["level"] for r in rows] == ["L1", "L2", "L3"]
    assert set(rows[0]) >= {"id", "level", "r", "a", "s", "distance", "probability", "score", "grade", "ood"}
    for row in rows:
        assert 0 <= float(row["probability"]) <= 1 and row["grade"] in {"0", "1", "2", "3"}
        assert row["grade_name"] == f"S{row['grade']}"


def test_mask_and_centroid_positions_agree(phantom_dir, blob_bundle, tmp_path):
    for source, flag in (("mask", "--mask"), ("ctd", "--centroids")):
        path = phantom_dir / ("vert_msk.nii.gz" if source == "mask" else "ctd.json")
        main(["score", "--bundle", str(blob_bundle), "--task", "size", "--out", str(tmp_path / f"{source}.csv"),
              flag, str(path), str(phantom_dir / "ct.nii.gz")])
    by_mask, by_ctd = _rows(tmp_path / "mask.csv"), _rows(tmp_path / "ctd.csv")
    for a, b in zip(by_mask, by_ctd):
        np.testing.assert_allclose([float(a[k]) for k in "ras"], [float(b[k]) for k in "ras"], atol=0.1)


def test_score_points_and_npz(phantom_dir, blob_bundle, tmp_path):
    out = tmp_path / "points.csv"
    assert main(["score", "--bundle", str(blob_bundle), "--task", "size", "--out", str(out), "--point", "0,0,0",
                 "--point", "0,0,10", str(phantom_dir / "ct.nii.gz")]) == 0
    assert [r["level"] for r in _rows(out)] == ["rank 1", "rank 2"]
    npz = tmp_path / "set.npz"
    images = np.random.default_rng(0).integers(0, 256, (3, 16, 16), dtype=np.uint8)
    np.savez(npz, val_images=images, val_labels=np.zeros((3, 1)))
    # 16 px is below the MedMNIST minimum of 28 px, which the reader refuses with a clear message
    assert main(["score", "--bundle", str(blob_bundle), "--task", "size", "--out", str(out), str(npz)]) == 2


def test_centred_points_are_scored_and_explained_where_centring_moves_them(phantom_dir, blob_bundle, tmp_path,
                                                                          capsys):
    from DAECounterfactualLib.bundle.store import load_bundle
    from DAECounterfactualLib.inference.centring import centre_on_body
    from DAECounterfactualLib.inference.explainer import Explainer
    from DAECounterfactualLib.io.volumes import read_volume

    volume = read_volume(phantom_dir / "ct.nii.gz")
    clicks = [np.array([0.0, 0.0, 4.0]), np.array([0.0, 0.0, -5.0])]
    expected = [centre_on_body(Explainer(load_bundle(blob_bundle)), volume, c).ras for c in clicks]
    out = tmp_path / "centred.csv"
    points = [arg for c in clicks for arg in ("--point", ",".join(f"{v:g}" for v in c))]
    assert main(["score", "--bundle", str(blob_bundle), "--task", "size", "--out", str(out), *points, "--centre",
                 str(phantom_dir / "ct.nii.gz")]) == 0
    np.testing.assert_allclose([[float(r[k]) for k in "ras"] for r in _rows(out)], expected, atol=1e-4)
    capsys.readouterr()
    assert main(["explain", "--bundle", str(blob_bundle), "--task", "size", "--point", "0,0,4", "--centre",
                 "--preset", "fast", "--out", str(tmp_path / "explain"), str(phantom_dir / "ct.nii.gz")]) == 0
    summary = json.loads((tmp_path / "explain" / "summary.json").read_text())
    np.testing.assert_allclose(summary["patch_centre_ras"], expected[0], atol=1e-6)
    assert summary["point_ras"] == [0.0, 0.0, 4.0]  # what was given, beside where it was cut
    assert summary["centred_mm"] == pytest.approx(expected[0][2] - 4.0, abs=1e-6)
    assert "patch at RAS" in capsys.readouterr().err


def test_explain_writes_strip_nrrds_and_summary(phantom_dir, blob_bundle, tmp_path, capsys):
    import SimpleITK as sitk

    from DAECounterfactualLib.io.volumes import read_verse_centroids, read_volume

    volume = read_volume(phantom_dir / "ct.nii.gz")
    l2 = [p for p in read_verse_centroids(phantom_dir / "ctd.json", volume) if p.level == "L2"][0]
    point = ",".join(f"{v:.2f}" for v in l2.ras)
    out = tmp_path / "explain"
    assert main(["explain", "--bundle", str(blob_bundle), "--task", "size", "--point", point, "--preset", "fast",
                 "--out", str(out), str(phantom_dir / "ct.nii.gz")]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"strip.png", "patch.nrrd", "reconstruction.nrrd", "reflection.nrrd", "summary.json"} <= names
    assert {f"counterfactual_S{g}.nrrd" for g in range(4)} <= names
    assert not [n for n in names if n.startswith(".partial")]
    summary = json.loads((out / "summary.json").read_text())
    np.testing.assert_allclose(summary["patch_centre_ras"], l2.ras, atol=1e-6)
    patch = sitk.ReadImage(str(out / "patch.nrrd"))
    assert patch.GetSize() == (16, 16, 1) and patch.GetSpacing() == pytest.approx((6.0, 6.0, 6.0))
    recon = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "reconstruction.nrrd")))
    assert -1000 <= recon.min() and recon.max() <= 1500  # back in HU, inside the bundle's window
    captured = capsys.readouterr()
    assert json.loads(captured.out)["grade_name"] == summary["grades"]["grade_name"]
    # what the model reads each panel as, and a warning naming the panels it reads otherwise
    assert set(summary["panels_read_as"]) == {f"S{g}" for g in range(4)}
    missed = [name for name, read in summary["panels_read_as"].items() if read != name]
    assert bool(summary["panel_note"]) == bool(missed) == ("cannot draw" in captured.err)
    assert all(f"{name} reads as" in summary["panel_note"] for name in missed)


@pytest.mark.parametrize("args, message", [
    (["--task", "genant"], "has no task 'genant'"),
    (["--task", "size", "--point", "1,2"], "expected R,A,S"),
    (["--task", "size", "--point", "0,0,0", "--mask", "m.nii.gz"], "exactly one source"),
    (["--task", "size", "--point", "900,0,0"], "outside"),
    (["--task", "size", "--mask", "m.nii.gz", "--centre"], "--centre moves --point positions"),
])
def test_bad_arguments_are_one_line_errors(phantom_dir, blob_bundle, tmp_path, capsys, args, message):
    code = main(["score", "--bundle", str(blob_bundle), "--out", str(tmp_path / "x.csv"), *args,
                 str(phantom_dir / "ct.nii.gz")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()


def test_score_a_rank_labelled_mask_names_ranks_not_levels(phantom_dir, blob_bundle, tmp_path):
    """Masks with non-VerSe ids (e.g. the VB1 MRIs' ranks) are scored with rank names, never guessed levels."""
    from DAECounterfactualLib.io.volumes import Volume, read_volume, write_volume

    mask = read_volume(phantom_dir / "vert_msk.nii.gz")
    ranks = np.where(mask.array > 0, mask.array - 19 + 40, 0).astype(np.uint8)  # ids 41, 42, 43: not VerSe
    write_volume(Volume(ranks, mask.ijk_to_ras), tmp_path / "ranks.nii.gz")
    out = tmp_path / "ranks.csv"
    assert main(["score", "--bundle", str(blob_bundle), "--task", "size", "--out", str(out), "--mask",
                 str(tmp_path / "ranks.nii.gz"), str(phantom_dir / "ct.nii.gz")]) == 0
    assert [r["level"] for r in _rows(out)] == ["rank 41", "rank 42", "rank 43"]


def test_a_bundle_cut_along_the_spine_takes_the_axis_from_the_neighbours_or_from_tilt(phantom_dir, ct_bundle_path,
                                                                                    tmp_path, capsys):
    import shutil

    import SimpleITK as sitk

    from bundle_fixtures import rewrite_bundle_file

    spine = tmp_path / "along-spine"
    shutil.copytree(ct_bundle_path, spine)
    config = json.loads((spine / "config.json").read_text())
    rewrite_bundle_file(spine, "config.json", config | {"patch": config["patch"] | {"rows": "spine"}})
    ct, common = str(phantom_dir / "ct.nii.gz"), ["--task", "genant"]
    out = tmp_path / "spine.csv"
    assert main(["score", "--bundle", str(spine), *common, "--out", str(out), "--centroids",
                 str(phantom_dir / "ctd.json"), ct]) == 0
    assert len(_rows(out)) == 3  # every vertebra has a neighbour
    capsys.readouterr()
    assert main(["score", "--bundle", str(spine), *common, "--out", str(tmp_path / "one.csv"), "--point", "0,0,0",
                 ct]) == 2
    assert "place a point on the vertebra above or below" in capsys.readouterr().err
    explain = ["explain", *common, "--point", "0,0,0", "--preset", "fast"]
    assert main([*explain, "--bundle", str(spine), "--out", str(tmp_path / "no-tilt"), ct]) == 2
    assert "no tilt was given" in capsys.readouterr().err
    assert main([*explain, "--bundle", str(ct_bundle_path), "--tilt", "10", "--out", str(tmp_path / "axial"), ct]) == 2
    assert "cuts its patches superior-inferior" in capsys.readouterr().err
    assert main([*explain, "--bundle", str(spine), "--tilt", "10", "--out", str(tmp_path / "tilted"), ct]) == 0
    rows = np.reshape(sitk.ReadImage(str(tmp_path / "tilted" / "patch.nrrd")).GetDirection(), (3, 3))[:, 1]
    tilt = np.radians(10.0)  # rows (0, -sin, -cos) in RAS are (0, sin, -cos) in LPS
    np.testing.assert_allclose(rows, [0.0, np.sin(tilt), -np.cos(tilt)], atol=1e-6)


def test_a_subregion_mask_moves_each_vertebra_to_its_bodys_centroid(phantom_dir, blob_bundle, tmp_path, capsys):
    from DAECounterfactualLib.io.volumes import Volume, centroids_from_mask, read_volume, write_volume

    mask = read_volume(phantom_dir / "vert_msk.nii.gz")
    parts = np.where(mask.array > 0, 41, 0).astype(np.uint8)  # posterior elements everywhere...
    kji = np.argwhere(mask.array > 0)
    anterior = mask.ijk_to_ras_points(kji[:, ::-1])[:, 1]
    front = kji[anterior > np.median(anterior)]
    parts[tuple(front.T)] = 49  # ...but the anterior half of each vertebra: its body
    write_volume(Volume(parts, mask.ijk_to_ras), tmp_path / "subreg.nii.gz")
    out = tmp_path / "bodies.csv"
    assert main(["score", "--bundle", str(blob_bundle), "--task", "size", "--out", str(out), "--mask",
                 str(phantom_dir / "vert_msk.nii.gz"), "--subregions", str(tmp_path / "subreg.nii.gz"),
                 str(phantom_dir / "ct.nii.gz")]) == 0
    bodies = centroids_from_mask(Volume(np.where(parts == 49, mask.array, 0), mask.ijk_to_ras))
    whole = centroids_from_mask(mask)
    got = [[float(r[k]) for k in "ras"] for r in _rows(out)]
    np.testing.assert_allclose(got, [p.ras for p in bodies], atol=1e-4)
    assert min(abs(g[1] - w.ras[1]) for g, w in zip(got, whole)) > 1.0  # not the whole vertebrae's centroids
    assert main(["score", "--bundle", str(blob_bundle), "--task", "size", "--out", str(tmp_path / "x.csv"),
                 "--point", "0,0,0", "--subregions", str(tmp_path / "subreg.nii.gz"),
                 str(phantom_dir / "ct.nii.gz")]) == 2
    assert "give --mask too" in capsys.readouterr().err
