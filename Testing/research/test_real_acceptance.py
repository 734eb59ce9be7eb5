"""Issue 21's acceptance figures: leave-one-patient-out probes and the three real-data figures."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from DAECounterfactualResearch.real_acceptance import (RealPatches, acceptance, figures, fracture_moves,
                                                      leave_one_patient_out, visibility)
from DAECounterfactualResearch.task_fitting import TaskRecipe

RECIPE = TaskRecipe(name="genant", grade_names=("G0", "G1", "G2", "G3"), positive_min_grade=2,
                    exclude_from_probe=(1,), calibration="linear")


def synthetic(cases=4, bodies=6, flip_case=None, seed=0) -> tuple[np.ndarray, RealPatches]:
    """Latents whose first dimension is the grade (plus noise); ``flip_case`` has it reversed."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(cases):
        for b in range(bodies):
            for grade, simulated in ((0, False), (1, True), (2, True), (3, True)):
                sign = -1.0 if c == flip_case else 1.0
                z = rng.normal(0, 0.1, 8)
                z[0] += sign * grade
                rows.append((z, f"case{c}", f"case{c}:b{b}", grade, simulated))
    z = np.stack([r[0] for r in rows])
    patches = RealPatches(images=np.zeros((len(rows), 1, 2, 2), np.float32), case=np.array([r[1] for r in rows]),
                          group=np.array([r[1] for r in rows]),
                          vertebra=np.array([r[2] for r in rows]), grade=np.array([r[3] for r in rows]),
                          simulated=np.array([r[4] for r in rows]), whole=np.ones(len(rows), bool))
    return z, patches


def test_a_latent_that_carries_the_grade_meets_every_target():
    z, patches = synthetic()
    result = acceptance(leave_one_patient_out(z, patches, RECIPE, C=1.0), patches, 2, resamples=50)
    assert result["pooled"]["fracture_auc"] == pytest.approx(1.0)
    assert result["pooled"]["healthy_g0"] >= 0.9 and result["pooled"]["within_one_grade"] >= 0.9
    assert all(result["meets"].values())
    low, high = result["pooled_intervals"]["healthy_g0"]
    assert low <= result["pooled"]["healthy_g0"] <= high


def test_the_held_out_series_is_graded_by_probes_that_never_saw_it(monkeypatch):
    from DAECounterfactualResearch import task_fitting

    z, patches = synthetic(flip_case=1)
    z[:, -1] = np.arange(len(z))  # a row id, to see which rows each probe was fitted on
    seen = []
    fit_probe = task_fitting.fit_probe  # the acceptance fits through task_fitting.fit_recipe
    monkeypatch.setattr(task_fitting, "fit_probe",
                        lambda x, *args, **kwargs: seen.append(set(x[:, -1].astype(int))) or fit_probe(x, *args, **kwargs))
    z_graded = z.copy()
    z_graded[:, -1] = 0.0
    leave_one_patient_out(z, patches, RECIPE, C=1.0)
    for case, rows in zip(np.unique(patches.group), seen):
        assert rows and not rows & set(np.flatnonzero(patches.group == case))
    # and the consequence: a series whose latents run the other way is misgraded out of case
    graded = leave_one_patient_out(z_graded, patches, RECIPE, C=1.0)
    flipped = np.flatnonzero(patches.case == "case1")
    assert figures(graded, patches, flipped, 2)["fracture_auc"] == pytest.approx(0.0)
    others = np.flatnonzero(patches.case != "case1")
    assert figures(graded, patches, others, 2)["fracture_auc"] > 0.7  # the flipped series only blurs their probes


def test_only_whole_real_g0_bodies_count_as_healthy():
    z, patches = synthetic(cases=2)
    patches.whole[patches.case == "case0"] = False
    result = figures(leave_one_patient_out(z, patches, RECIPE, C=1.0), patches, np.arange(len(z)), 2)
    assert result["healthy_n"] == int(((patches.case == "case1") & (patches.grade == 0)).sum())


def test_the_series_of_one_patient_are_held_out_together(monkeypatch):
    from DAECounterfactualResearch import task_fitting

    z, patches = synthetic(cases=3)
    patches.group[patches.case == "case2"] = "case1"  # two sessions of one patient
    z[:, -1] = np.arange(len(z))
    seen = []
    fit_probe = task_fitting.fit_probe  # the acceptance fits through task_fitting.fit_recipe
    monkeypatch.setattr(task_fitting, "fit_probe",
                        lambda x, *args, **kwargs: seen.append(set(x[:, -1].astype(int))) or fit_probe(x, *args, **kwargs))
    leave_one_patient_out(z, patches, RECIPE, C=1.0)
    probe_rows = (patches.case == "case0") & (patches.grade != 1)  # G1 is left out of the probe
    assert len(seen) == 2 and seen[1] == set(np.flatnonzero(probe_rows))  # case1's probe saw case0 only


def test_a_source_the_model_fails_on_is_reported_apart_from_the_pool():
    z, patches = synthetic(cases=6, flip_case=5)
    patches = replace(patches, group=np.where(patches.case == "case5", "VB1:case5", np.char.add("VB3:", patches.case)))
    result = acceptance(leave_one_patient_out(z, patches, RECIPE, C=1.0), patches, 2, resamples=50)
    assert set(result["per_source"]) == {"VB1", "VB3"}
    failing, fine = result["per_source"]["VB1"], result["per_source"]["VB3"]
    assert failing["pooled"]["fracture_auc"] == pytest.approx(0.0) and not failing["meets"]["fracture_auc"]
    assert fine["pooled"]["fracture_auc"] > 0.9 and result["pooled"]["fracture_auc"] > 0.5  # the pool hides it
    assert failing["pooled"]["healthy_n"] + fine["pooled"]["healthy_n"] == result["pooled"]["healthy_n"]
    low, high = fine["pooled_intervals"]["fracture_auc"]
    assert low <= fine["pooled"]["fracture_auc"] <= high


def test_visibility_tells_a_fracture_the_latent_lost_from_one_the_image_lacks():
    z, patches = synthetic(cases=6)
    rng = np.random.default_rng(1)
    shown = patches.simulated & (patches.grade >= 2)
    images = rng.normal(0, 0.1, (len(z), 1, 2, 2)).astype(np.float32)
    images[shown, 0, 0, 0] += 1.0  # the image shows the fracture
    sources = np.where(np.isin(patches.case, ["case0", "case1", "case2"]), "VB1:", "VB3:")
    patches = replace(patches, images=images, group=np.char.add(sources, patches.case))
    z = np.where(sources[:, None] == "VB1:", rng.normal(0, 1, z.shape), z)  # VB1's latents lost it
    result = visibility(z, patches, 2)
    assert result["VB1"]["pixels"] > 0.95 and 0.2 < result["VB1"]["latent"] < 0.8
    assert result["VB3"]["pixels"] > 0.95 and result["VB3"]["latent"] > 0.95


def test_fracture_moves_tell_a_latent_blind_to_the_fracture_from_one_that_moves_with_it():
    z, patches = synthetic(cases=6)
    sources = np.where(np.isin(patches.case, ["case0", "case1", "case2"]), "VB1:", "VB3:")
    patches = replace(patches, images=z[:, None, :2, None].copy(), group=np.char.add(sources, patches.case))
    z = np.where(sources[:, None] == "VB1:", 0.0, z)  # VB1's latents do not move with the fracture at all
    z[sources == "VB1:"] += np.random.default_rng(2).normal(0, 1, ((sources == "VB1:").sum(), z.shape[1]))
    moves = fracture_moves(z, patches, 2)
    vb3, vb1 = moves["VB3"], moves["VB1"]
    assert vb3["latent"]["twins"] == 3 * 6 * 2  # the G2 and G3 fractures of every body with its healthy twin
    assert vb3["latent"]["shared"] > 0.95 and vb3["pixels"]["shared"] > 0.95  # along dimension 0, as built
    assert 0.9 < vb3["latent"]["move"] < 2.5  # a move of 2.5 on average, against patches 0-3 apart
    assert vb1["pixels"]["shared"] > 0.95 and vb1["latent"]["shared"] < 0.5  # the image moved, the latent did not


def test_a_source_that_mixes_contrasts_is_also_measured_per_contrast():
    z, patches = synthetic(cases=6)
    sources = np.where(np.isin(patches.case, ["case0", "case1", "case2"]), "VB1:", "VB3:")
    contrast = np.where(sources == "VB3:", "water-fat", np.where(patches.case == "case0", "TIRM", "T1"))
    patches = replace(patches, images=z[:, None, :2, None].copy(), group=np.char.add(sources, patches.case),
                      contrast=contrast)
    z = z.copy()
    z[contrast == "TIRM", 0] = 0.0  # the latent is blind on TIRM alone
    moves, seen = fracture_moves(z, patches, 2), visibility(z, patches, 2)
    assert set(moves) == {"VB1", "VB1 T1", "VB1 TIRM", "VB3"}  # one contrast in VB3: no part of its own
    assert moves["VB1 T1"]["latent"]["shared"] > 0.95 and moves["VB1 TIRM"]["latent"]["shared"] < 0.5
    assert set(seen) == {"VB1", "VB1 T1", "VB3"}  # TIRM's one patient cannot be held out against another
    assert fracture_moves(z, replace(patches, contrast=None), 2).keys() == {"VB1", "VB3"}


def test_the_flagged_share_is_counted_per_source_with_the_bundles_detector():
    from types import SimpleNamespace

    from DAECounterfactualResearch.real_acceptance import flagged

    z, patches = synthetic(cases=4)
    patches = replace(patches, group=np.where(np.isin(patches.case, ["case0", "case1"]), "VB1:a", "VB3:b"),
                      whole=patches.case != "case3")  # case3's bodies are cut by the patch: not healthy
    flags = np.isin(patches.case, ["case0", "case1"]) | ((patches.case == "case3") & (patches.grade == 0))
    detector = SimpleNamespace(is_ood=lambda latents: flags[:len(latents)])
    shares = flagged(z, patches, SimpleNamespace(ood=detector), 2)
    assert shares["VB1"] == {"healthy": 1.0, "fractured": 1.0, "all": 1.0}
    assert shares["VB3"]["healthy"] == 0.0 and shares["VB3"]["fractured"] == 0.0  # case3's G0: not a healthy one
    assert shares["VB3"]["all"] == pytest.approx(0.125)  # 6 of 48 patches


def test_the_record_kept_in_the_task_is_the_shipped_tasks_figures_on_the_source_named():
    from DAECounterfactualLib.errors import InputError
    from DAECounterfactualResearch.real_acceptance import real_data_check

    def part(g0):
        return {"pooled": {"healthy_g0": g0, "fracture_auc": 0.99, "within_one_grade": 0.92, "healthy_n": 10,
                           "fractures_n": 60}}

    record = {"shipped_task": {"pooled": part(0.5)["pooled"], "per_source": {"VB1": part(0.04), "VB3": part(0.95)}},
              "sources": {"VB1": {"series": 11, "patients": 7}, "VB3": {"series": 50, "patients": 50}}}
    vb3 = real_data_check(record, "VB3", "cmd")
    assert vb3.met and vb3.figures["healthy_g0"] == 0.95 and vb3.command == "cmd"
    assert vb3.measured_on == ("10 healthy vertebrae and 60 simulated fractures of them in 50 real series of 50 "
                               "patients (VB3)")
    pooled = real_data_check(record, "pooled", "cmd")
    assert pooled.missed == ("healthy_g0",) and "in 61 real series of 57 patients," in pooled.caution
    with pytest.raises(InputError, match="VB2"):
        real_data_check(record, "VB2", "cmd")
