"""Bad input where it enters the CLI and the library: one clear line, exit status 2, inputs untouched, no partial
output; the resumable scores CSV; no network; bitwise-identical CPU results. (Logic and MRML cases:
test_robustness_logic.py.) Uses the tiny untrained CT bundle: these tests judge error handling, never grades."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import socket

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundle_fixtures import EXTENT_MM, FIELD_OFFSET, GRADIENT, field_model_input
from DAECounterfactualLib.cli.commands import _write_batches, main
from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.inference.scores import ScoresFile, iter_volume_rows
from DAECounterfactualResearch.synthesis import export_phantom, make_spine_phantom
from DAECounterfactualLib.io.volumes import Volume, read_verse_centroids, read_volume, write_volume
from spine_testdata import centred_field_volume, real_data, rotation


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantom")
    export_phantom(make_spine_phantom(seed=3), folder)
    return folder


@pytest.fixture(scope="module")
def ct(phantom_dir) -> Volume:
    return read_volume(phantom_dir / "ct.nii.gz")


def score(bundle, out, *args) -> int:
    return main(["score", "--bundle", str(bundle), "--task", "genant", "--out", str(out), "--no-progress", *args])


def score_error(capsys, bundle, tmp_path, *args) -> str:
    """Run ``daecf score`` expecting an expected error: exit 2, one line on stderr, no traceback, no CSV."""
    code = score(bundle, tmp_path / "x.csv", *args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("daecf: error: ") and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()
    return err


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def centroid_point(phantom_dir, ct, level="L2") -> str:
    ras = {p.level: p.ras for p in read_verse_centroids(phantom_dir / "ctd.json", ct)}[level]
    return ",".join(f"{v:.3f}" for v in ras)


# ---------------------------------------------------------------------------------------------------------------
# images that cannot be graded


def test_single_slice_volume_is_refused(ct_bundle_path, ct, phantom_dir, tmp_path, capsys):
    path = write_volume(Volume(ct.array[:, :, 20:21], ct.ijk_to_ras, name="slice"), tmp_path / "slice.nii.gz")
    before = digest(path)
    err = score_error(capsys, ct_bundle_path, tmp_path, "--point", "0,0,0", str(path))
    assert "slice.nii.gz: the image is a single slice (size [1," in err
    assert digest(path) == before


def test_label_map_given_as_the_image_is_refused(ct_bundle_path, phantom_dir, tmp_path, capsys):
    err = score_error(capsys, ct_bundle_path, tmp_path, "--centroids", str(phantom_dir / "ctd.json"),
                      str(phantom_dir / "vert_msk.nii.gz"))
    assert "vert_msk.nii.gz: looks like a label map, not an image (only 4 distinct integer values, 0..22)" in err


@pytest.mark.parametrize("dtype, value", [(np.int32, 2**31 - 1), (np.uint32, 2**32 - 1), (np.float64, 3e38)])
def test_overflowed_intensities_are_refused(ct_bundle_path, ct, phantom_dir, tmp_path, capsys, dtype, value):
    array = ct.array.astype(dtype)
    array[0, 0, 0] = value
    path = write_volume(Volume(array, ct.ijk_to_ras), tmp_path / "overflow.nrrd")
    err = score_error(capsys, ct_bundle_path, tmp_path, "--centroids", str(phantom_dir / "ctd.json"), str(path))
    assert "overflow.nrrd: voxel values span" in err and "integer overflow or a wrong rescale" in err


def test_point_in_air_is_refused(ct_bundle_path, phantom_dir, ct, tmp_path, capsys):
    corner = ct.ijk_to_ras_points([[3.0, 3.0, 3.0]])[0]  # inside the volume, outside the body
    err = score_error(capsys, ct_bundle_path, tmp_path, "--point", ",".join(f"{v:.2f}" for v in corner),
                      str(phantom_dir / "ct.nii.gz"))
    assert "lies in air or background: the centre of its patch is below the bundle's intensity window" in err


def test_mri_given_to_a_ct_bundle_is_graded_with_a_warning_and_the_ood_flag(ct_bundle_path, ct, phantom_dir,
                                                                           tmp_path, capsys):
    """An MRI (or an unrescaled CT: HU + 1024 stored as uint16) has no voxel below soft tissue in HU."""
    path = write_volume(Volume(np.clip(ct.array + 1024, 0, None).astype(np.uint16), ct.ijk_to_ras),
                        tmp_path / "t2.nii.gz")
    out = tmp_path / "scores.csv"
    assert score(ct_bundle_path, out, "--centroids", str(phantom_dir / "ctd.json"), str(path)) == 0
    err = capsys.readouterr().err
    assert err.count("do not look like CT in Hounsfield units") == 1  # once per image, not per row
    assert "daecf: warning: 3 of 3 rows flagged out of distribution" in err
    assert [row["ood"] for row in rows(out)] == ["1", "1", "1"]
    assert all("do not look like CT in Hounsfield units" in row["ood_reason"] for row in rows(out))


def test_a_ct_given_to_an_mri_bundle_warns(ct, tiny_config):
    """The screening needs only the bundle's config to tell a CT (air at -1000) from an MRI."""
    from DAECounterfactualLib.bundle.spec import BundleConfig
    from DAECounterfactualLib.model.preprocessing import Preprocessing
    from DAECounterfactualLib.inference.screening import screen_volume

    mri = BundleConfig(name="mri", modality="MR", model=tiny_config, preprocessing=Preprocessing("percentile", 1, 99),
                       patch_size_px=16, patch_spacing_mm=3.0)
    warning = screen_volume(mri, ct)
    assert "of voxels are below -500, like air in a CT; bundle 'mri' expects MR" in warning
    assert screen_volume(mri, Volume(np.clip(ct.array + 1024, 0, None), ct.ijk_to_ras)) == ""


def test_a_ct_given_to_the_shipped_mri_bundle_is_graded_with_a_warning_and_the_ood_flag(phantom_dir, tmp_path,
                                                                                       capsys):
    out = tmp_path / "scores.csv"
    assert score("vertebra-mri", out, "--centroids", str(phantom_dir / "ctd.json"),
                 str(phantom_dir / "ct.nii.gz")) == 0
    err = capsys.readouterr().err
    assert err.count("like air in a CT; bundle 'vertebra-mri' expects MR") == 1  # once per image, not per row
    assert [row["ood"] for row in rows(out)] == ["1", "1", "1"]
    assert all("like air in a CT" in row["ood_reason"] for row in rows(out))


@pytest.mark.real_data
def test_real_mri_given_to_a_ct_bundle_is_flagged(ct_bundle_path, tmp_path, capsys):
    case = real_data() / "spine_mri" / "vb3"
    image = case / "vb3_01_img.nii.gz"
    out = tmp_path / "scores.csv"
    assert score(ct_bundle_path, out, "--centroids", str(case / "vb3_01_ctd.json"), str(image)) == 0
    assert "do not look like CT in Hounsfield units" in capsys.readouterr().err
    assert {row["ood"] for row in rows(out)} == {"1"}


# ---------------------------------------------------------------------------------------------------------------
# files that cannot be read


def test_truncated_nifti_is_refused_not_read_as_garbage(ct_bundle_path, phantom_dir, tmp_path, capsys):
    whole = (phantom_dir / "ct.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(whole[: len(whole) // 2])
    err = score_error(capsys, ct_bundle_path, tmp_path, "--point", "0,0,0", str(tmp_path / "cut.nii.gz"))
    assert "cut.nii.gz: truncated, corrupt or unreadable file" in err
    raw = gzip.decompress(whole)
    (tmp_path / "cut.nii").write_bytes(raw[: len(raw) - 1000])
    err = score_error(capsys, ct_bundle_path, tmp_path, "--point", "0,0,0", str(tmp_path / "cut.nii"))
    assert f"cut.nii: truncated file ({len(raw) - 1000} bytes of the {len(raw)} its header describes)" in err


def test_truncated_npz_is_refused(ct_bundle_path, tmp_path, capsys):
    np.savez(tmp_path / "whole.npz", val_images=np.zeros((2, 28, 28), np.uint8), val_labels=np.zeros(2))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "whole.npz").read_bytes()[:300])
    err = score_error(capsys, ct_bundle_path, tmp_path, str(tmp_path / "cut.npz"))
    assert "cut.npz: cannot be read as a numpy .npz" in err
    np.savez(tmp_path / "keys.npz", images=np.zeros((2, 28, 28), np.uint8))
    err = score_error(capsys, ct_bundle_path, tmp_path, str(tmp_path / "keys.npz"))
    assert err.startswith(f"daecf: error: {tmp_path / 'keys.npz'}: missing array(s) ['val_images', 'val_labels']")


def test_npz_for_a_volume_bundle_names_the_file(ct_bundle_path, tmp_path, capsys):
    np.savez(tmp_path / "retina.npz", val_images=np.zeros((2, 28, 28, 3), np.uint8), val_labels=np.zeros(2))
    err = score_error(capsys, ct_bundle_path, tmp_path, str(tmp_path / "retina.npz"))
    assert "retina.npz: bundle 'tinyct' expects images of 1×16×16, got (3, 28, 28)" in err


@pytest.mark.parametrize("kind, message", [
    ("folder", "centroids.json: cannot be read (Is a directory)"),
    ("binary", "centroids.json: not valid JSON"),
    ("no points", "centroids.json: the centroid file lists no vertebrae (an empty point list)"),
])
def test_bad_centroid_files_are_refused(ct_bundle_path, phantom_dir, ct, tmp_path, capsys, kind, message):
    path = tmp_path / "centroids.json"
    if kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(b"\xff\xfe\x00" if kind == "binary" else
                         json.dumps([{"direction": list(ct.axis_codes())}]).encode())
    err = score_error(capsys, ct_bundle_path, tmp_path, "--centroids", str(path), str(phantom_dir / "ct.nii.gz"))
    assert message in err


# ---------------------------------------------------------------------------------------------------------------
# arguments


@pytest.mark.parametrize("args, message", [
    (["--preset", "best"], "unknown quality preset 'best'"),
    (["--steps", "0"], "--steps 0: invert steps must be an integer in [1, 1000], got 0"),
    (["--steps", "10,100000"], "--steps 10,100000: decode steps must be an integer in [1, 1000], got 100000"),
    (["--steps", "ten"], "--steps 'ten': expected a step count N or INVERT,DECODE"),
    (["--task", "size"], "has no task 'size'"),
])
def test_bad_explain_arguments_are_one_line_errors(ct_bundle_path, phantom_dir, ct, tmp_path, capsys, args,
                                                   message):
    task = [] if "--task" in args else ["--task", "genant"]
    code = main(["explain", "--bundle", str(ct_bundle_path), *task, "--point", centroid_point(phantom_dir, ct),
                 "--out", str(tmp_path / "out"), *args, str(phantom_dir / "ct.nii.gz")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag, value", [("--repeats", "0"), ("--patches", "1000000"), ("--repeats", "x")])
def test_absurd_bench_counts_are_refused_by_the_parser(ct_bundle_path, capsys, flag, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--bundle", str(ct_bundle_path), "--task", "genant", flag, value])
    assert exit_info.value.code == 2
    assert f"argument {flag}: expected a whole number in" in capsys.readouterr().err


def test_unwritable_output_is_refused_before_any_work_and_leaves_nothing(ct_bundle_path, phantom_dir, ct, tmp_path,
                                                                          capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    code = score(ct_bundle_path, blocker / "scores.csv", "--centroids", str(phantom_dir / "ctd.json"),
                 str(phantom_dir / "ct.nii.gz"))
    err = capsys.readouterr().err
    assert code == 2 and f"{blocker / 'scores.csv'}: cannot write here ({blocker} is a file, not a folder)" in err
    code = main(["explain", "--bundle", str(ct_bundle_path), "--task", "genant", "--point",
                 centroid_point(phantom_dir, ct), "--out", str(blocker / "explain"), str(phantom_dir / "ct.nii.gz")])
    assert code == 2 and f"{blocker / 'explain'}: cannot write here ({blocker} is a file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"] and blocker.read_text() == "a file, not a folder"


# ---------------------------------------------------------------------------------------------------------------
# resumable scores CSV


@pytest.fixture(scope="module")
def reference_scores(ct_bundle_path, phantom_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "scores.csv"
    assert score(ct_bundle_path, out, "--centroids", str(phantom_dir / "ctd.json"), str(phantom_dir / "ct.nii.gz")) == 0
    return out


def _interrupted_run(bundle_path, phantom_dir, out, after_rows: int) -> None:
    """What Ctrl-C does to ``daecf score`` after ``after_rows`` rows: KeyboardInterrupt between two batches."""
    from DAECounterfactualLib.bundle.store import load_bundle
    from DAECounterfactualLib.inference.explainer import Explainer

    volume = read_volume(phantom_dir / "ct.nii.gz")
    positions = read_verse_centroids(phantom_dir / "ctd.json", volume)
    batches = iter_volume_rows(Explainer(load_bundle(bundle_path)), volume, positions, "genant", batch_size=1)

    def until_interrupted():
        for number, batch in enumerate(batches):
            if number == after_rows:
                raise KeyboardInterrupt
            yield batch

    with pytest.raises(KeyboardInterrupt):
        _write_batches(ScoresFile(out), until_interrupted(), len(positions), quiet=True)


SCORE_TOLERANCE = {"distance": 1e-4, "probability": 1e-5, "score": 1e-4, "ood_score": 1e-3}


def assert_same_scores(path, reference) -> None:
    """Same rows and grades; numbers to an absolute tolerance far below what changes a grade (the resumed rows were
    encoded in other batches than the reference, and batch composition changes the last bits of a CPU
    convolution: a probability of 1e-12 can move by 5e-17, which a relative tolerance would call a difference)."""
    got, expected = rows(path), rows(reference)
    assert [(r["id"], r["level"], r["r"], r["a"], r["s"], r["grade"]) for r in got] == \
        [(r["id"], r["level"], r["r"], r["a"], r["s"], r["grade"]) for r in expected]
    for column, tolerance in SCORE_TOLERANCE.items():
        np.testing.assert_allclose([float(r[column]) for r in got], [float(r[column]) for r in expected],
                                   rtol=0, atol=tolerance)


def test_an_interrupted_run_keeps_whole_rows_and_resume_completes_it_exactly(ct_bundle_path, phantom_dir,
                                                                             reference_scores, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    _interrupted_run(ct_bundle_path, phantom_dir, out, after_rows=1)
    assert [row["level"] for row in rows(out)] == ["L1"]  # flushed as written
    with out.open("a", encoding="utf-8") as handle:
        handle.write("21,L2,1.5,-20")  # a row cut short by the kill: must be dropped, never read
    assert score(ct_bundle_path, out, "--resume", "--centroids", str(phantom_dir / "ctd.json"),
                 str(phantom_dir / "ct.nii.gz")) == 0
    assert "2 rows written" in capsys.readouterr().out
    assert_same_scores(out, reference_scores)
    resumed = out.read_bytes()
    assert score(ct_bundle_path, out, "--resume", "--centroids", str(phantom_dir / "ctd.json"),
                 str(phantom_dir / "ct.nii.gz")) == 0
    assert "0 rows written" in capsys.readouterr().out and out.read_bytes() == resumed


def test_resume_refuses_a_csv_of_another_input_or_another_tool(ct_bundle_path, phantom_dir, reference_scores,
                                                               tmp_path, capsys):
    out = tmp_path / "scores.csv"
    lines = reference_scores.read_text().splitlines(keepends=True)
    r = lines[1].split(",")[lines[0].split(",").index("r")]
    for replacement, message in (("99.5", "row 20 was scored at RAS ['99.5'"), ("x", "row 20 has no valid r, a, s")):
        out.write_text(lines[0] + lines[1].replace(f",{r},", f",{replacement},", 1) + "21,L2,")  # + a cut row
        before = out.read_bytes()
        assert score(ct_bundle_path, out, "--resume", "--centroids", str(phantom_dir / "ctd.json"),
                     str(phantom_dir / "ct.nii.gz")) == 2
        assert message in capsys.readouterr().err and out.read_bytes() == before
    out.write_text("case,label,grade\nvb1,20,1")  # no newline at the end: must not be taken for a cut row
    assert score(ct_bundle_path, out, "--resume", "--point", "0,0,0", str(phantom_dir / "ct.nii.gz")) == 2
    assert "not a scores CSV" in capsys.readouterr().err and out.read_text() == "case,label,grade\nvb1,20,1"


def test_progress_bar_goes_to_stderr(ct_bundle_path, phantom_dir, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    assert main(["score", "--bundle", str(ct_bundle_path), "--task", "genant", "--out", str(out), "--centroids",
                 str(phantom_dir / "ctd.json"), str(phantom_dir / "ct.nii.gz")]) == 0
    captured = capsys.readouterr()
    assert "scoring: 100%" in captured.err and "3/3" in captured.err and "scoring" not in captured.out


# ---------------------------------------------------------------------------------------------------------------
# geometry: any orientation, spacing and point (hypothesis)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(spacing=st.tuples(st.floats(0.3, 1.5), st.floats(0.3, 1.5), st.floats(1.0, 6.0)),
       angles=st.tuples(*[st.floats(-180.0, 180.0)] * 3), mirror=st.booleans(),
       fraction=st.tuples(*[st.floats(0.3, 0.7)] * 3))
def test_cli_scores_any_geometry_like_the_field_it_samples(ct_bundle_path, tmp_path_factory, spacing, angles,
                                                           mirror, fraction):
    """Extreme anisotropy (0.3 x 0.3 x 6 mm), oblique and left-handed direction matrices are handled, not refused:
    a volume holding a linear HU field grades exactly like the field sampled on the patch plane directly."""
    from DAECounterfactualLib.bundle.store import load_bundle
    from DAECounterfactualLib.inference.explainer import Explainer

    folder = tmp_path_factory.mktemp("geometry")
    direction = rotation(angles) @ np.diag([1.0, 1.0, -1.0 if mirror else 1.0])
    volume = centred_field_volume(EXTENT_MM, spacing, direction, GRADIENT, FIELD_OFFSET)
    path = write_volume(Volume(volume.array.astype(np.float32), volume.ijk_to_ras), folder / "field.nii")
    point = (np.asarray(fraction) - 0.5) * 10.0  # within 5 mm of the centre: the whole patch lies inside
    out = folder / "scores.csv"
    assert score(ct_bundle_path, out, "--point", ",".join(f"{v:.6f}" for v in point), str(path)) == 0
    cli_row = rows(out)[0]
    expected = Explainer(load_bundle(ct_bundle_path)).grade(field_model_input(point), "genant")
    np.testing.assert_allclose(float(cli_row["distance"]), expected.distance[0], atol=2e-3)


# ---------------------------------------------------------------------------------------------------------------
# supply chain and determinism


def test_nothing_reaches_the_network(ct_bundle_path, phantom_dir, ct, tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    assert main(["verify", str(ct_bundle_path)]) == 0
    assert score(ct_bundle_path, tmp_path / "s.csv", "--centroids", str(phantom_dir / "ctd.json"),
                 str(phantom_dir / "ct.nii.gz")) == 0
    assert main(["explain", "--bundle", str(ct_bundle_path), "--task", "genant", "--preset", "fast", "--point",
                 centroid_point(phantom_dir, ct), "--out", str(tmp_path / "e"), str(phantom_dir / "ct.nii.gz")]) == 0


@pytest.mark.slow
def test_same_input_bundle_and_preset_give_bitwise_identical_files_on_the_cpu(ct_bundle_path, phantom_dir, ct,
                                                                             tmp_path):
    outputs = []
    for run in ("a", "b"):
        folder = tmp_path / run
        assert main(["explain", "--bundle", str(ct_bundle_path), "--task", "genant", "--preset", "standard",
                     "--device", "cpu", "--point", centroid_point(phantom_dir, ct), "--out", str(folder),
                     str(phantom_dir / "ct.nii.gz")]) == 0
        assert score(ct_bundle_path, folder / "scores.csv", "--device", "cpu", "--centroids",
                     str(phantom_dir / "ctd.json"), str(phantom_dir / "ct.nii.gz")) == 0
        outputs.append({p.name: digest(p) for p in sorted(folder.iterdir()) if p.suffix != ".png"})
    assert outputs[0] == outputs[1] and len(outputs[0]) > 10


def test_every_test_named_in_the_robustness_document_exists():
    """docs/ROBUSTNESS.md names the test behind each claim; a renamed or deleted test must not leave it stale."""
    import re
    from pathlib import Path

    testing = Path(__file__).resolve().parents[1]
    doc = (testing.parent / "docs" / "ROBUSTNESS.md").read_text(encoding="utf-8")
    sources = {path.name: path.read_text(encoding="utf-8") for path in testing.rglob("test_*.py")}
    named = re.findall(r"(test_\w+\.py)::(\w+)", doc)
    stale = [f"{file}::{name}" for file, name in named if f"def {name}(" not in sources.get(file, "")]
    stale += [name for name in re.findall(r"(?<![\w.])::(\w+)", doc)
              if not any(f"def {name}(" in source for source in sources.values())]
    assert len(named) > 40 and not stale, f"docs/ROBUSTNESS.md names tests that do not exist: {stale}"
