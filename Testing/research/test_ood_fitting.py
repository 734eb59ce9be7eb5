"""Issue 23's shipped detector: fitted on training latents, its threshold at the stated quantile of held-out scores,
written into a copy of a bundle with its model card section."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.errors import InputError
from DAECounterfactualResearch.ood_fitting import (DETECTOR_SENTENCE, OOD_HEADING, STATS_SENTENCE, fit_detector,
                                                   ood_card_section, with_ood_section)


def test_the_threshold_is_the_quantile_of_held_out_scores_as_stored():
    rng = np.random.default_rng(0)
    z_fit, z_held = rng.normal(size=(400, 6)), rng.normal(size=(1000, 6)) * 1.2
    detector = fit_detector(z_fit, z_held, quantile=0.95)
    scores = detector.ood_score(z_held)
    assert detector.ood_threshold == np.quantile(scores, 0.95) and detector.ood_quantile == 0.95
    assert np.mean(scores > detector.ood_threshold) == pytest.approx(0.05, abs=0.002)
    np.testing.assert_allclose(detector.mean, z_fit.mean(axis=0), atol=1e-6)
    assert detector.precision.dtype == np.float64 and np.array_equal(detector.precision,
                                                                     detector.precision.astype(np.float32))


def test_a_cross_fitted_threshold_is_the_quantile_of_out_of_patient_scores():
    from DAECounterfactualResearch.ood_fitting import fit_detector_cross_fitted

    rng = np.random.default_rng(1)
    groups = np.repeat(["a", "b", "c"], 200)
    z = rng.normal(size=(600, 6)) + np.where(groups == "c", 1.0, 0.0)[:, None]  # patients differ
    detector = fit_detector_cross_fitted(z, groups, quantile=0.95)
    held = np.concatenate([fit_detector(z[groups != g], z[groups != g], 0.95).ood_score(z[groups == g])
                           for g in "abc"])
    assert detector.ood_threshold == pytest.approx(np.quantile(held, 0.95), rel=1e-12)
    np.testing.assert_allclose(detector.mean, z.mean(axis=0), atol=1e-6)
    assert detector.ood_threshold > np.quantile(detector.ood_score(z), 0.95)  # new patients score higher
    with pytest.raises(ValueError, match="at least two patients"):
        fit_detector_cross_fitted(z, np.zeros(600))


CARD = f"# b\n\n## Validation\n- x\n\n## Intended use\nResearch. {STATS_SENTENCE}\n"


def test_the_card_gets_one_section_before_intended_use_and_the_sentence_points_at_it():
    first = with_ood_section(CARD, f"{OOD_HEADING}\n- first\n")
    assert first.index(OOD_HEADING) < first.index("## Intended use") and DETECTOR_SENTENCE in first
    assert STATS_SENTENCE not in first
    second = with_ood_section(first, f"{OOD_HEADING}\n- second\n")
    assert second.count(OOD_HEADING) == 1 and "- second" in second and "- first" not in second
    assert second.endswith(f"Research. {DETECTOR_SENTENCE}\n") and "## Validation\n- x" in second
    assert with_ood_section("# hand-written\n", f"{OOD_HEADING}\n- s\n") == f"# hand-written\n\n{OOD_HEADING}\n- s\n"


def test_the_section_states_threshold_quantile_and_sets():
    detector = fit_detector(np.random.default_rng(1).normal(size=(100, 3)), np.random.default_rng(2).normal(size=(50, 3)))
    text = ood_card_section(detector, "100 training patches", "50 held-out patches", "cmd")
    assert f"{detector.ood_threshold:.4g}" in text and "99.5th percentile of 50 held-out patches" in text
    assert "Its latents are those of" not in text
    named = ood_card_section(replace(detector, fitted_on="the validated exams"), "100 training patches",
                             "50 held-out patches", "cmd")
    assert "- Its latents are those of the validated exams: an image unlike them is flagged" in named


def test_the_script_writes_the_detector_into_a_copy_from_the_measured_latents(tmp_path, ct_bundle_path,
                                                                              script_main, monkeypatch):
    from DAECounterfactualResearch.ood_cache import write_cache

    monkeypatch.setenv("DAECF_MODELS", str(ct_bundle_path.parent))
    z_dim = load_bundle(ct_bundle_path, load_weights=False).config.model.z_dim
    rng = np.random.default_rng(3)
    latents = {"fit": rng.normal(size=(300, z_dim)), "id": rng.normal(size=(200, z_dim))}
    write_cache(tmp_path / "cache" / "tinyct.npz", {"z": latents, "g": {}, "r": {}, "rg": {}, "records": {},
                                                      "skipped": {}, "round_trip": 0})
    config = tmp_path / "tinyct.json"
    config.write_text(json.dumps({"bundle": {"name": "tinyct"}, "data": {"kind": "medmnist", "path": "x.npz"}}))
    before = (ct_bundle_path / "manifest.json").read_bytes()
    assert script_main("fit_ood")([str(config), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]) == 0
    written = load_bundle(tmp_path / "out" / "tinyct", load_weights=False)
    assert written.ood is written.ood_detector
    expected = fit_detector(latents["fit"], latents["id"])
    assert written.ood.ood_threshold == pytest.approx(expected.ood_threshold)
    assert OOD_HEADING in written.model_card and "RetinaMNIST validation split" in written.model_card
    assert (ct_bundle_path / "manifest.json").read_bytes() == before  # the source is never changed
    with pytest.raises(InputError, match="out/tinyct exists and is not the bundle"):  # it would overwrite a copy
        script_main("fit_ood")([str(config), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")])
    named = tmp_path / "named.json"  # the config says what the latents are of: the detector and its card say it
    named.write_text(json.dumps({"bundle": {"name": "tinyct"}, "data": {"kind": "medmnist", "path": "x.npz"},
                                 "ood": {"fitted_on": "the validated photographs"}}))
    written_again = script_main("fit_ood")([str(named), "--cache", str(tmp_path / "cache"), "--out",
                                            str(tmp_path / "out2")])
    assert written_again == 0
    rewritten = load_bundle(tmp_path / "out2" / "tinyct", load_weights=False)
    assert rewritten.ood.fitted_on == "the validated photographs"
    assert "Its latents are those of the validated photographs" in rewritten.model_card
    sources = tmp_path / "sources.json"  # sources are patient groups of vertebra sets: an image bundle has none
    sources.write_text(json.dumps({"bundle": {"name": "tinyct"}, "data": {"kind": "medmnist", "path": "x.npz"},
                                   "ood": {"fit_sources": ["VB3"]}}))
    with pytest.raises(InputError, match="ood.fit_sources"):
        script_main("fit_ood")([str(sources), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out3")])
    assert not (tmp_path / "out3").exists()  # refused before anything was copied


def test_a_cache_cut_for_other_fit_sources_is_not_read(tmp_path):
    from DAECounterfactualResearch.ood_cache import read_cache, write_cache

    data = {"z": {"fit": np.zeros((3, 2))}, "g": {}, "r": {}, "rg": {}, "records": {}, "skipped": {}, "round_trip": 0}
    write_cache(tmp_path / "all.npz", data)
    write_cache(tmp_path / "vb3.npz", data | {"fit_sources": ["VB3"]})
    assert read_cache(tmp_path / "all.npz")["fit_sources"] == []
    assert read_cache(tmp_path / "all.npz", 0, ("VB3",)) is None
    assert read_cache(tmp_path / "vb3.npz") is None and read_cache(tmp_path / "vb3.npz", 0, ("VB3",)) is not None
