"""2D slices with point targets: the spacing rule, exact patch sampling, and ``daecf score --table``."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.io.slices import REFERENCE_DISC_PITCH_MM, SliceSpacing, slice_patch, slice_spacing


def test_ok_spacing_is_the_listed_one():
    assert slice_spacing("ok", 0.6, 0.7, 300, 500) == SliceSpacing(0.6, 0.7)


def test_suspect_spacing_undoes_a_vertical_stretch_and_scales_to_the_reference_pitch():
    true_mm, stretch, width = 0.5, 1.25, 400
    pitch_px = REFERENCE_DISC_PITCH_MM / true_mm  # discs one reference pitch apart, straight above each other
    centres = np.array([[200.0, 100 + k * pitch_px * stretch] for k in range(5)])
    spacing = slice_spacing("suspect", 9.0, 9.0, width, int(width * stretch), centres)  # listed spacing ignored
    assert spacing.column_mm == pytest.approx(true_mm)
    assert spacing.row_mm == pytest.approx(true_mm / stretch)


def test_suspect_spacing_needs_centres_and_checks_are_named():
    with pytest.raises(InputError, match="needs its disc centres"):
        slice_spacing("suspect", 1.0, 1.0, 10, 10)
    with pytest.raises(InputError, match="spacing check must be one of"):
        slice_spacing("maybe", 1.0, 1.0, 10, 10)


def test_patch_samples_a_linear_field_exactly_at_the_requested_millimetres():
    """Bilinear sampling reproduces a linear field: each patch pixel reads the image at its mm offset from the
    centre, converted with the row and column spacing (rows down, columns right)."""
    height, width = 120, 100
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float64)
    image = 2.0 * columns + 3.0 * rows
    spacing, centre = SliceSpacing(row_mm=0.5, column_mm=0.8), (50.0, 60.0)
    patch = slice_patch(image, centre, spacing, size_px=8, spacing_mm=1.0)
    offsets = np.arange(8) - 3.5
    expected = 2.0 * (centre[0] + offsets[None, :] / 0.8) + 3.0 * (centre[1] + offsets[:, None] / 0.5)
    np.testing.assert_allclose(patch, expected, atol=1e-3)


def _write_slices(folder):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, size=(80, 60), dtype=np.uint8)).save(folder / name)


def _write_table(path, rows):
    columns = ["image", "x_px", "y_px", "pixel_spacing_row_mm", "pixel_spacing_col_mm", "spacing_check", "grade",
               "note"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)


TABLE_ROWS = [["a.png", 30, 20, 2.0, 2.0, "ok", 3, "first"],
              ["b.png", 25, 40, 2.0, 2.0, "ok", 1, "second"],
              ["a.png", 30, 55, 2.0, 2.0, "ok", 5, "third"]]


def test_table_rows_come_out_in_input_order_with_every_column_carried(ct_bundle_path, tmp_path):
    from DAECounterfactualLib.bundle.store import load_bundle
    from DAECounterfactualLib.inference.explainer import Explainer
    from DAECounterfactualLib.inference.slice_table import TABLE_SCORE_COLUMNS, read_slice_image, score_table

    _write_slices(tmp_path)
    _write_table(tmp_path / "t.csv", TABLE_ROWS)
    explainer = Explainer(load_bundle(ct_bundle_path))
    columns, rows = score_table(explainer, tmp_path / "t.csv", tmp_path, "genant")
    assert columns[:len(TABLE_SCORE_COLUMNS)] == list(TABLE_SCORE_COLUMNS)
    assert "input_grade" in columns and "note" in columns  # an input 'grade' does not overwrite the output's
    assert [r["id"] for r in rows] == ["1", "2", "3"] and [r["note"] for r in rows] == ["first", "second", "third"]
    assert [r["input_grade"] for r in rows] == ["3", "1", "5"]
    # the third row is graded from the patch cut around its own centre, preprocessed over its whole slice
    config = explainer.config
    image = read_slice_image(tmp_path / "a.png")
    patch = slice_patch(image, (30.0, 55.0), SliceSpacing(2.0, 2.0), config.patch_size_px, config.patch_spacing_mm)
    expected = explainer.grade(config.preprocessing.apply(patch, config.preprocessing.intensity_range(image))[None, None],
                               "genant")
    assert rows[2]["distance"] == pytest.approx(float(expected.distance[0]), abs=1e-5)
    assert rows[2]["grade_name"] == explainer.bundle.task("genant").grade_names[rows[2]["grade"]]


@pytest.mark.parametrize("rows, message", [
    ([["c.png", 30, 20, 2.0, 2.0, "ok", 0, ""]], "c.png: no such image"),
    ([["a.png", 300, 20, 2.0, 2.0, "ok", 0, ""]], "line 2: the centre lies outside a.png"),
    ([["a.png", "x", 20, 2.0, 2.0, "ok", 0, ""]], "line 2: x_px 'x' is not a number"),
    ([["a.png", 30, 20, 2.0, 2.0, "suspect", 0, ""]], "estimating the scale of a slice needs at least two disc"),
])
def test_table_errors_name_the_row_and_the_file(ct_bundle_path, tmp_path, rows, message):
    from DAECounterfactualLib.bundle.store import load_bundle
    from DAECounterfactualLib.inference.explainer import Explainer
    from DAECounterfactualLib.inference.slice_table import score_table

    _write_slices(tmp_path)
    _write_table(tmp_path / "t.csv", rows)
    with pytest.raises(InputError, match=message):
        score_table(Explainer(load_bundle(ct_bundle_path)), tmp_path / "t.csv", tmp_path, "genant")


def test_a_table_without_the_required_columns_is_refused(tmp_path):
    from DAECounterfactualLib.inference.slice_table import read_table

    (tmp_path / "t.csv").write_text("image,x_px\na.png,3\n")
    with pytest.raises(InputError, match="missing column.*y_px, pixel_spacing_row_mm, pixel_spacing_col_mm"):
        read_table(tmp_path / "t.csv")


def test_cli_scores_a_table_into_one_csv(ct_bundle_path, tmp_path, capsys):
    from DAECounterfactualLib.cli.commands import main

    _write_slices(tmp_path)
    _write_table(tmp_path / "t.csv", TABLE_ROWS)
    out = tmp_path / "scores.csv"
    assert main(["score", "--bundle", str(ct_bundle_path), "--task", "genant", "--table", str(tmp_path / "t.csv"),
                 "--out", str(out), str(tmp_path)]) == 0
    with out.open() as handle:
        written = list(csv.DictReader(handle))
    assert [r["note"] for r in written] == ["first", "second", "third"]
    assert "3 rows written" in capsys.readouterr().out
    assert main(["score", "--bundle", str(ct_bundle_path), "--task", "genant", "--table", str(tmp_path / "t.csv"),
                 "--out", str(out), str(tmp_path / "a.png")]) == 2
