"""Cohort scoring in one process: one row per target with its case, failures listed with their reason, whole cases
kept across an interruption and resumed, nothing partial when the output cannot be written."""

import shutil

import pytest

from cohort_testdata import rows, write_cohort
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.inference.cohort import COHORT_COLUMNS, FAILURE_COLUMNS, CaseScorer, score_cohort
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualLib.inference.scores import ScoresFile, iter_volume_rows
from DAECounterfactualLib.io.cohort import find_cases
from DAECounterfactualLib.io.volumes import positions_from_mask, read_volume


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return write_cohort(tmp_path_factory.mktemp("cohort"))


@pytest.fixture(scope="module")
def scorer(ct_bundle_path):
    return CaseScorer(Explainer(load_bundle(ct_bundle_path)), "genant")


@pytest.fixture(scope="module")
def reference(cohort, scorer, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "scores.csv"
    summary = score_cohort(find_cases(cohort), out, scorer)
    assert (summary.cases, summary.scored, summary.rows, summary.failures) == (4, 4, 12, [])
    return out


class Counting:
    """A scorer that counts the cases it is given and raises KeyboardInterrupt (Ctrl-C) after ``stop_after``."""

    def __init__(self, scorer, stop_after=None):
        self.scorer, self.stop_after, self.cases = scorer, stop_after, []

    def __call__(self, cases):
        for case, outcome in zip(cases, self.scorer(cases)):
            if len(self.cases) == self.stop_after:
                raise KeyboardInterrupt
            self.cases.append(case.case_id)
            yield outcome


def test_every_target_of_every_case_is_one_row_with_its_case_as_score_gives_it(cohort, scorer, reference):
    got = rows(reference)
    assert list(got[0]) == list(COHORT_COLUMNS)
    assert [(r["case"], r["level"]) for r in got] == [(f"sub-phantom{n:03d}", level) for n in range(4)
                                                      for level in ("L1", "L2", "L3")]
    case = find_cases(cohort)[2]
    volume = read_volume(case.image)
    (direct,) = iter_volume_rows(scorer.explainer, volume, positions_from_mask(read_volume(case.positions)), "genant")
    assert [r for r in got if r["case"] == case.case_id] == [
        {"case": case.case_id, **{k: str(int(v) if isinstance(v, bool) else v) for k, v in row.items()
                                  if k in COHORT_COLUMNS}} for row in direct]
    assert (reference.parent / "failures.csv").read_text() == ",".join(FAILURE_COLUMNS) + "\n"


def test_cases_that_cannot_be_graded_are_listed_with_their_reason_and_the_run_goes_on(cohort, scorer, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(cohort, study)
    ct = study / "rawdata/sub-phantom001/sub-phantom001_ct.nii.gz"
    ct.write_bytes(ct.read_bytes()[:2000])  # cut short
    (study / "derivatives/sub-phantom002/sub-phantom002_seg-vert_msk.nii.gz").unlink()  # centroids remain
    (study / "derivatives/sub-phantom002/sub-phantom002_seg-vert_ctd.json").unlink()  # ... no longer
    mri = study / "rawdata/sub-phantom003/sub-phantom003_T2w.nii.gz"  # a mixed folder: an MRI beside the CTs
    (study / "rawdata/sub-phantom003/sub-phantom003_ct.nii.gz").rename(mri)
    summary = score_cohort(find_cases(study), tmp_path / "scores.csv", scorer, failures=tmp_path / "why.csv")
    assert summary.scored == 1 and [r["case"] for r in rows(tmp_path / "scores.csv")] == ["sub-phantom000"] * 3
    failures = rows(tmp_path / "why.csv")
    assert [(f["case"], f["image"]) for f in failures] == [
        ("sub-phantom001", str(ct)), ("sub-phantom002", str(study / "rawdata/sub-phantom002/sub-phantom002_ct.nii.gz")),
        ("sub-phantom003", str(mri))]
    reasons = [f["reason"] for f in failures]
    assert reasons[0].startswith(f"{ct}: truncated, corrupt or unreadable file")
    assert "no positions file found (looked for a vertebra mask or centroid file named by the entities " \
        "sub-phantom002" in reasons[1]
    assert reasons[2] == f"{mri}: modality MR (by its file name), but the bundle grades CT; not graded"
    assert failures[2]["positions"].endswith("sub-phantom003_seg-vert_msk.nii.gz")


def test_an_interrupted_run_keeps_whole_cases_and_resume_scores_only_the_rest(cohort, scorer, reference, tmp_path):
    out = tmp_path / "scores.csv"
    first = Counting(scorer, stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        score_cohort(find_cases(cohort), out, first)
    assert [r["case"] for r in rows(out)] == ["sub-phantom000"] * 3 + ["sub-phantom001"] * 3  # flushed as written
    assert not (tmp_path / "failures.csv").exists()
    text = reference.read_text().splitlines(keepends=True)
    with out.open("a", encoding="utf-8") as handle:  # a kill in the middle of case 2: one row and a cut one
        handle.write(text[7] + text[8][:20])
    second = Counting(scorer)
    summary = score_cohort(find_cases(cohort), out, second, resume=True)
    assert second.cases == ["sub-phantom002", "sub-phantom003"] and summary.skipped == 2
    assert out.read_text() == reference.read_text()  # one process, the same batches: the same bytes
    third = Counting(scorer)
    score_cohort(find_cases(cohort), out, third, resume=True)
    assert third.cases == ["sub-phantom003"]  # the file's last case may have been cut: it is scored again
    assert out.read_text() == reference.read_text()


def test_resume_groups_by_case_even_when_the_cut_falls_between_two_of_its_rows(tmp_path):
    out = tmp_path / "s.csv"
    header = ",".join(COHORT_COLUMNS) + "\n"
    out.write_text(header + "a,1,L1\n" + "b,1,L1\n" + "b,2,L2\n", encoding="utf-8")
    sink = ScoresFile(out, resume=True, columns=COHORT_COLUMNS, key=("case", "id"), group="case")
    assert list(sink.done) == [("a", "1")]
    with sink:
        sink.append([{"case": "b", "id": 1, "level": "L1"}])
    assert out.read_text() == header + "a,1,L1\n" + "b,1,L1" + "," * (len(COHORT_COLUMNS) - 3) + "\n"


def test_unwritable_outputs_are_refused_before_any_case_and_leave_nothing(cohort, scorer, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    counting = Counting(scorer)
    for out, failures in ((blocker / "scores.csv", None), (tmp_path / "scores.csv", blocker / "failures.csv")):
        with pytest.raises(InputError, match="cannot write here"):
            score_cohort(find_cases(cohort), out, counting, failures=failures)
    assert counting.cases == [] and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_write_that_fails_midway_leaves_no_partial_csv(cohort, scorer, tmp_path, monkeypatch):
    append, appended = ScoresFile.append, []

    def disk_full_on_the_second_case(self, rows):
        if appended:
            raise InputError(f"{self.path}: writing the scores failed (No space left on device)")
        appended.append(rows)
        append(self, rows)

    monkeypatch.setattr(ScoresFile, "append", disk_full_on_the_second_case)
    with pytest.raises(InputError, match="No space left"):
        score_cohort(find_cases(cohort), tmp_path / "scores.csv", scorer)
    assert appended and list(tmp_path.iterdir()) == []


def test_targets_choose_the_vertebrae_or_the_discs_of_a_tptbox_mask(cohort, scorer, tmp_path):
    import numpy as np

    from DAECounterfactualLib.io.volumes import Volume, write_volume

    study = tmp_path / "study"
    shutil.copytree(cohort / "rawdata/sub-phantom000", study / "rawdata/sub-phantom000")
    mask_path = cohort / "derivatives/sub-phantom000/sub-phantom000_seg-vert_msk.nii.gz"
    mask = read_volume(mask_path)
    labels = np.array(mask.array)
    top = np.nonzero((labels == 21).any(axis=(1, 2)))[0].max()  # the most superior slice of L2 (k runs to S)
    labels[top - 2:top + 1][labels[top - 2:top + 1] == 21] = 120  # becomes the L1-L2 disc (TPTBox: 100 + L1)
    write_volume(Volume(labels, mask.ijk_to_ras), study / "derivatives/sub-phantom000_seg-vert_msk.nii.gz")
    levels = {}
    for targets in ("all", "vertebrae", "discs"):
        out = tmp_path / f"{targets}.csv"
        score_cohort(find_cases(study), out, CaseScorer(scorer.explainer, "genant", targets))
        levels[targets] = [r["level"] for r in rows(out)]
    assert levels == {"all": ["L1", "L2", "L3", "L1-L2"], "vertebrae": ["L1", "L2", "L3"], "discs": ["L1-L2"]}
    summary = score_cohort(find_cases(cohort)[:1], tmp_path / "none.csv", CaseScorer(scorer.explainer, "genant",
                                                                                      "discs"))
    assert summary.failures[0]["reason"] == f"{mask_path}: no discs among its targets (L1, L2, L3)"
