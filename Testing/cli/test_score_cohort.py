"""``daecf score-cohort``: the same CSV from one process, from worker processes and from two torchrun ranks (gloo,
CPU); its bad inputs as one-line errors; Ctrl-C leaves whole cases and a hint to resume."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cohort_testdata import assert_same_scores, rows, write_cohort
from DAECounterfactualLib.cli.commands import main
from DAECounterfactualLib.inference.cohort import CaseScorer


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return write_cohort(tmp_path_factory.mktemp("cohort"))


def score_cohort(bundle, out, *args) -> int:
    return main(["score-cohort", "--bundle", str(bundle), "--task", "genant", "--out", str(out), *args])


@pytest.fixture(scope="module")
def one_process(ct_bundle_path, cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "scores.csv"
    assert score_cohort(ct_bundle_path, out, "--no-progress", str(cohort)) == 0
    return out


def test_one_process_scores_the_cohort_with_a_progress_bar_and_a_summary(ct_bundle_path, cohort, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    assert score_cohort(ct_bundle_path, out, str(cohort)) == 0
    captured = capsys.readouterr()
    assert "scoring cases: 100%" in captured.err and "4/4" in captured.err
    assert captured.out.startswith(f"12 rows of 4 cases written to {out} (task genant)")
    assert captured.out.rstrip().endswith("; 0 of 4 cases not graded")
    assert len(rows(out)) == 12 and rows(tmp_path / "failures.csv") == []


def test_pairs_csv_scores_the_listed_cases_and_reports_the_missing_ones(ct_bundle_path, cohort, one_process, tmp_path,
                                                                         capsys):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("case,image,mask,centroids\n"
                     f"sub-phantom000,{cohort}/rawdata/sub-phantom000/sub-phantom000_ct.nii.gz,"
                     f"{cohort}/derivatives/sub-phantom000/sub-phantom000_seg-vert_msk.nii.gz,\n"
                     f"gone,{cohort}/rawdata/gone_ct.nii.gz,,{cohort}/gone.json\n", encoding="utf-8")
    assert score_cohort(ct_bundle_path, tmp_path / "scores.csv", "--pairs", str(pairs), "--failures",
                        str(tmp_path / "why.csv")) == 0
    assert rows(tmp_path / "scores.csv") == rows(one_process)[:3]
    (failure,) = rows(tmp_path / "why.csv")
    assert failure["case"] == "gone" and failure["reason"] == f"{cohort}/rawdata/gone_ct.nii.gz: no such file or folder"
    assert f"daecf: gone not graded: {cohort}/rawdata/gone_ct.nii.gz: no such file or folder" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    ((), "give the study folder or --pairs PAIRS.csv (one of them)"),
    (("--pairs", "p.csv", "study"), "give the study folder or --pairs PAIRS.csv (one of them)"),
    (("EMPTY",), "EMPTY: no image/positions pairs found (no image matched); patterns tried: images: sub-*_ct.nii[.gz]"),
    (("--failures", "OUT", "STUDY"), "OUT: the scores CSV and the failures CSV would be one file"),
])
def test_bad_arguments_are_one_line_errors_and_write_nothing(ct_bundle_path, cohort, tmp_path, capsys, args, message):
    (tmp_path / "EMPTY").mkdir()
    out = tmp_path / "out" / "scores.csv"
    names = {"EMPTY": str(tmp_path / "EMPTY"), "OUT": str(out), "STUDY": str(cohort)}
    assert score_cohort(ct_bundle_path, out, *[names.get(a, a) for a in args]) == 2
    err = capsys.readouterr().err
    assert f"daecf: error: {message.replace('EMPTY', names['EMPTY']).replace('OUT', str(out))}" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_ctrl_c_keeps_whole_cases_and_says_how_to_resume(ct_bundle_path, cohort, one_process, tmp_path, capsys,
                                                         monkeypatch):
    score = CaseScorer.__call__

    def interrupted_after_two(self, cases):
        for number, outcome in enumerate(score(self, cases)):
            if number == 2:
                raise KeyboardInterrupt
            yield outcome

    out = tmp_path / "scores.csv"
    monkeypatch.setattr(CaseScorer, "__call__", interrupted_after_two)
    assert score_cohort(ct_bundle_path, out, str(cohort)) == 130
    assert "run the same command with --resume to continue" in capsys.readouterr().err
    assert [r["case"] for r in rows(out)] == ["sub-phantom000"] * 3 + ["sub-phantom001"] * 3
    monkeypatch.setattr(CaseScorer, "__call__", score)
    assert score_cohort(ct_bundle_path, out, "--resume", str(cohort)) == 0
    assert "; 1 cases were there already" in capsys.readouterr().out  # the last case in the file is scored again
    assert out.read_text() == one_process.read_text()


def test_two_worker_processes_give_the_one_process_csv(ct_bundle_path, cohort, one_process, tmp_path):
    out = tmp_path / "scores.csv"
    assert score_cohort(ct_bundle_path, out, "--workers", "2", "--no-progress", str(cohort)) == 0
    assert_same_scores(out, one_process)


@pytest.mark.ddp
def test_two_torchrun_ranks_merge_into_the_one_process_csv_and_resume_from_it(ct_bundle_path, cohort, one_process,
                                                                              tmp_path):
    out = tmp_path / "scores.csv"

    def torchrun(*flags):
        daecf = Path(sys.executable).with_name("daecf")
        result = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "--no-python",
             str(daecf), "score-cohort", "--bundle", str(ct_bundle_path), "--task", "genant", "--out", str(out),
             "--no-progress", *flags, str(cohort)],
            capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.count("rows of") == 1  # rank 0 alone reports
        return result.stdout

    assert "12 rows of 4 cases written to" in torchrun()
    assert_same_scores(out, one_process)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["failures.csv", "scores.csv"]  # the parts are gone
    out.write_text("".join(out.read_text().splitlines(keepends=True)[:7]))  # cases 0 and 1 of an earlier run
    assert "9 rows of 3 cases written to" in torchrun("--resume")  # case 1, the file's last, is scored again
    assert_same_scores(out, one_process)
