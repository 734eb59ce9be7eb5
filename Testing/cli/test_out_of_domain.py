"""Targets outside what a bundle was trained on are flagged with the reason in the scores, the summary line and
stderr, and the grades are still written: the tptbox sample MRI (cervical: C5-C7 and the discs C5-C6, C6-C7)
given to the lumbar bundles, which do not flag its discs by their latents alone."""

from __future__ import annotations

import csv
import shutil

import pytest

from DAECounterfactualLib.cli.commands import main
from DAECounterfactualLib.errors import DAECFError

VERTEBRA_MRI = {"C5": "level C5 lies outside the trained levels T10–L5",
                "C6": "level C6 lies outside the trained levels T10–L5",
                "C7": "level C7 lies outside the trained levels T10–L5",
                "C5-C6": "C5-C6 is a disc; this model grades vertebrae",
                "C6-C7": "C6-C7 is a disc; this model grades vertebrae"}
DISC_MRI = {"C5": "C5 is a vertebra; this model grades discs", "C6": "C6 is a vertebra; this model grades discs",
            "C7": "C7 is a vertebra; this model grades discs",
            "C5-C6": "level C5-C6 lies outside the trained levels T10-T11 to L5-S1",
            "C6-C7": "level C6-C7 lies outside the trained levels T10-T11 to L5-S1"}


@pytest.fixture(scope="module")
def cervical_mri():
    from DAECounterfactualLib.io.sampledata import sample_files

    try:
        return sample_files("spine-mri")
    except DAECFError as error:
        pytest.skip(f"sample MRI not fetched (make setup fetches it): {error}")


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("bundle, task, reasons", [("vertebra-mri", "genant", VERTEBRA_MRI),
                                                   ("disc-mri", "pfirrmann", DISC_MRI)])
def test_every_cervical_target_is_flagged_by_a_lumbar_bundle_with_its_reason(cervical_mri, tmp_path, capsys, bundle,
                                                                             task, reasons):
    out = tmp_path / "scores.csv"
    assert main(["score", "--bundle", bundle, "--task", task, "--mask", str(cervical_mri["vertebra_mask"]),
                 "--out", str(out), "--no-progress", str(cervical_mri["image"])]) == 0
    rows = read_rows(out)
    assert {row["level"]: row["ood"] for row in rows} == {level: "1" for level in reasons}
    for row in rows:
        assert row["ood_reason"].startswith(reasons[row["level"]]), row
        assert row["grade_name"]  # graded all the same: the flag says not to trust it, nothing is withheld
    assert "daecf: warning: 5 of 5 rows flagged out of distribution" in capsys.readouterr().err


def test_a_cohort_grades_the_targets_its_bundle_was_trained_on_by_default(cervical_mri, tmp_path, capsys):
    study = tmp_path / "study"
    study.mkdir()
    for name in ("image", "vertebra_mask"):
        shutil.copy(cervical_mri[name], study / cervical_mri[name].name)
    out = tmp_path / "scores.csv"
    assert main(["score-cohort", "--bundle", "disc-mri", "--task", "pfirrmann", "--out", str(out), "--no-progress",
                 str(study)]) == 0
    rows = read_rows(out)
    assert [(row["level"], row["kind"], row["ood"]) for row in rows] == [("C5-C6", "disc", "1"), ("C6-C7", "disc", "1")]
    assert all(row["ood_reason"].startswith(DISC_MRI[row["level"]]) for row in rows)
    assert "2 of 2 rows flagged out of distribution" in capsys.readouterr().err
    assert main(["score-cohort", "--bundle", "disc-mri", "--task", "pfirrmann", "--targets", "all",
                 "--out", str(tmp_path / "all.csv"), "--no-progress", str(study)]) == 0
    assert len(read_rows(tmp_path / "all.csv")) == 5
