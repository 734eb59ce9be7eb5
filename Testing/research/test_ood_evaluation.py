"""Issue 23's measurement of OOD scores: AUROC, cross-fitted false flags, thresholds at the stated quantile, the
summary over bundles and the pick."""

from __future__ import annotations

import numpy as np
import pytest

from DAECounterfactualResearch.ood_evaluation import (ScoredSets, auroc, case_folds, cross_fitted_flags,
                                                      markdown_table, measure, pick, summary)


def test_auroc_matches_the_rank_definition():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    inside, outside = rng.normal(size=80), rng.normal(0.7, size=50).round(1)
    expected = roc_auc_score(np.r_[np.zeros(80), np.ones(50)], np.r_[inside, outside])
    assert auroc(inside, outside) == pytest.approx(expected)
    assert auroc([0, 1], [2, 3]) == 1.0 and auroc([2, 3], [0, 1]) == 0.0 and auroc([1, 1], [1]) == 0.5
    assert np.isnan(auroc([], [1.0]))


def test_a_case_lies_in_one_fold_and_cases_alternate():
    groups = np.array(["b", "a", "b", "c", "a", "d"])
    folds = case_folds(groups)
    for case in set(groups):
        assert len(set(folds[groups == case])) == 1
    assert folds[groups == "a"][0] != folds[groups == "b"][0] and sorted(set(folds)) == [0, 1]


def test_cross_fitted_flags_judge_each_fold_by_the_other():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(200).astype(str), 5)
    scores = rng.normal(size=1000)
    assert cross_fitted_flags(scores, groups, 0.95) == pytest.approx(0.05, abs=0.02)
    shifted = scores + np.where(case_folds(groups) == 1, 10.0, 0.0)  # one fold's cases all score higher
    assert cross_fitted_flags(shifted, groups, 0.95) == pytest.approx(0.5, abs=0.03)
    assert np.isnan(cross_fitted_flags(scores[:5], groups[:5], 0.95))


def scored_sets() -> ScoredSets:
    held = np.arange(200, dtype=float)
    return ScoredSets(
        scores={"id": held, "far": np.full(10, 1000.0), "near": np.array([100.0, 196.0, 198.0, 250.0]),
                "base": np.zeros(4), "made": np.ones(4)},
        groups={"id": np.arange(200).astype(str)},
        records={"far": {"source": "id", "counted": True, "n": 10}, "near": {"source": "id", "counted": True, "n": 4},
                 "base": {"source": "id", "counted": False, "n": 4},
                 "made": {"source": "base", "counted": True, "n": 4}})


def test_thresholds_lie_at_the_stated_quantiles_of_held_out_scores():
    record = measure(scored_sets(), shipped_threshold=150.0)
    assert record["thresholds"]["0.95"] == pytest.approx(np.quantile(np.arange(200), 0.95))
    assert record["thresholds"]["0.995"] == pytest.approx(np.quantile(np.arange(200), 0.995))
    near = record["shifts"]["near"]
    assert near["flagged"]["0.95"] == 0.75 and near["flagged"]["0.995"] == 0.25 and near["flagged"]["shipped"] == 0.75
    assert record["id"]["false_flags"]["shipped"] == pytest.approx(49 / 200)
    assert record["shifts"]["far"]["auroc"] == 1.0


def test_a_derived_set_is_also_compared_with_its_source():
    shifts = measure(scored_sets())["shifts"]
    assert shifts["made"]["auroc_vs_source"] == 1.0 and shifts["made"]["auroc"] < 0.01
    assert "auroc_vs_source" not in shifts["far"]
    assert "shipped" not in shifts["far"]["flagged"]


def detector_record(aurocs: list[float], false_flags: float) -> dict:
    return {"id": {"false_flags": {"0.95": false_flags}},
            "shifts": {f"s{k}": {"auroc": a, "counted": True, "flagged": {"0.95": a}} for k, a in enumerate(aurocs)}}


def test_the_pick_is_the_best_mean_auroc_among_detectors_with_few_false_flags():
    measured = {"b1": {"sharp": detector_record([1.0, 1.0], 0.30), "good": detector_record([0.9, 0.95], 0.05),
                       "weak": detector_record([0.6, 0.7], 0.04)}}
    table = summary(measured)
    assert table["good"]["mean_auroc"] == pytest.approx(0.925) and table["good"]["min_auroc"] == 0.9
    assert table["good"]["shifts_auroc_0.95"] == 1
    assert pick(table) == "good"
    measured["b1"]["good"]["id"]["false_flags"]["0.95"] = 0.2
    measured["b1"]["weak"]["id"]["false_flags"]["0.95"] = 0.2
    assert pick(summary(measured)) == "sharp"  # none within 5 %: the best AUROC
    measured["b1"]["detector_shipped"] = detector_record([1.0, 1.0], 0.0)
    assert pick(summary(measured)) == "sharp"  # a bundle's own detector is not a candidate


def test_the_table_has_a_row_per_set_and_marks_the_uncounted():
    measured = {"zscore_shipped": measure(scored_sets(), 150.0), "other": measure(scored_sets())}
    text = markdown_table("bundle", measured, ["zscore_shipped", "other"])
    assert "| far (10) | 1.00 · 100 % (100 % at shipped) | 1.00 · 100 % |" in text
    assert "base, not counted (4)" in text and "(1.00)" in text


def test_before_and_after_are_read_at_their_own_thresholds():
    from DAECounterfactualResearch.ood_evaluation import before_after_table

    measured = {"zscore_shipped": measure(scored_sets(), 150.0), "other": measure(scored_sets())}
    text = before_after_table("bundle", measured, "other")
    assert "| near (4) | 0.87 | 75 % | 0.87 | 25 % |" in text  # shipped threshold 150; 99.5 % of held out
    assert "| held out, in distribution (200): false flags | | 24 % | | 0 % |" in text
    assert "| made (4) | 0.01 (1.00) |" in text
