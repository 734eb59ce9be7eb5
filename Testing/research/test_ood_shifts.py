"""Issue 23's shift sets: each transformation changes what it says and nothing else, and the sets of a shipped
bundle are cut as its training set was."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from DAECounterfactualLib.io.volumes import Volume, VertebraPosition
from DAECounterfactualLib.model.preprocessing import Preprocessing
from DAECounterfactualResearch.dataset_building import Settings, SpineCase
from DAECounterfactualResearch.ood_shifts import (PatchSet, as_model_input, at_discs, blurred, crop_cut_cases,
                                                  cropped, cut_cases, disc_positions, is_crop_cut, masked, noisy,
                                                  photo_cut, photo_gain, rescaled)
from DAECounterfactualResearch.synthesis import make_spine_phantom

CONFIGS = Path(__file__).resolve().parents[2] / "scripts" / "configs"


@pytest.fixture(scope="module")
def phantom_case() -> SpineCase:
    phantom = make_spine_phantom(seed=2, shape=(96, 64, 64), spacing=(1.5, 1.5, 1.5), noise_hu=0.0)
    return SpineCase("phantom", phantom.volume, phantom.positions, dict(phantom.grades), body_mask=phantom.mask)


def position(label: int, ras) -> VertebraPosition:
    return VertebraPosition(label, f"v{label}", np.asarray(ras, dtype=float))


def test_discs_lie_midway_between_adjacent_vertebrae_only():
    discs = disc_positions([position(22, (0, 0, 0)), position(20, (0, 0, 60)), position(21, (0, 0, 30)),
                            position(24, (0, 0, -60))])
    assert [d.label for d in discs] == [120, 121] and [d.level for d in discs] == ["v20-v21", "v21-v22"]
    np.testing.assert_allclose(discs[0].ras, (0, 0, 45))


def test_disc_targets_carry_no_grades_so_nothing_is_simulated_there(phantom_case):
    case = at_discs(phantom_case)
    assert case.body_mask is None and case.grades == {} and len(case.positions) == len(phantom_case.positions) - 1


def volume(values: np.ndarray, spacing=(1.0, 2.0, 3.0)) -> Volume:
    return Volume(values, np.diag([*spacing, 1.0]), name="test")


def test_units_masks_and_noise_change_what_they_say():
    array = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    np.testing.assert_allclose(rescaled(volume(array), 0.5, 10).array, array * 0.5 + 10)
    mask = volume((array > 60).astype(np.uint8))
    out = masked(volume(array), mask).array
    np.testing.assert_array_equal(out[array > 60], array[array > 60])
    assert np.all(out[array <= 60] == array.min())
    big = np.random.default_rng(0).uniform(0, 100, (40, 40, 40)).astype(np.float32)
    difference = noisy(volume(big), seed=1).array - big
    low, high = np.percentile(big, [1, 99])
    assert difference.std() == pytest.approx(0.1 * (high - low), rel=0.02)


def test_blur_is_set_in_millimetres_per_axis():
    array = np.zeros((21, 21, 21), np.float32)
    array[10, 10, 10] = 1.0
    out = blurred(volume(array, spacing=(1.0, 2.0, 4.0)), sigma_mm=4.0).array
    k, j, i = (out.sum(axis=axes) for axes in ((1, 2), (0, 2), (0, 1)))  # profiles along k (4 mm), j (2 mm), i (1 mm)
    spread = [np.sqrt(np.sum(p * (np.arange(21) - 10) ** 2) / p.sum()) for p in (i, j, k)]
    np.testing.assert_allclose(spread, [4.0, 2.0, 1.0], rtol=0.05)
    assert out.sum() == pytest.approx(1.0, rel=1e-4)


def test_a_crop_keeps_every_voxel_where_it_was():
    array = np.random.default_rng(0).normal(size=(30, 20, 10)).astype(np.float32)
    whole = Volume(array, np.array([[0, 0, 2.0, 5], [0, 1.0, 0, -3], [1.5, 0, 0, 7], [0, 0, 0, 1]]))
    centre = whole.ijk_to_ras_points(np.array([[5.0, 10.0, 15.0]]))[0]
    part = cropped(whole, centre, half_mm=6.0)
    assert part.shape_ijk == (9, 13, 7)  # +-4 i at 1.5 mm, +-6 j at 1 mm, +-3 k at 2 mm, each end included
    ras = part.ijk_to_ras_points(np.array([[0.0, 0.0, 0.0], [8.0, 12.0, 6.0]]))
    np.testing.assert_allclose(whole.ras_to_ijk_points(ras), [[1, 4, 12], [9, 16, 18]], atol=1e-9)
    assert part.array[0, 0, 0] == array[12, 4, 1]


def test_crop_cut_patches_lie_largely_beyond_the_scan(phantom_case):
    settings = Settings(32, 2.0, [0.0], Preprocessing("ct_window", -1000, 1500), [], [])
    cases = crop_cut_cases(phantom_case, field_mm=64.0)
    assert [c.positions for c in cases] == [[p] for p in phantom_case.positions]
    samples = cut_cases(cases, settings)
    assert samples and all(s["fill_fraction"] > 0.5 for s in samples)
    assert all(is_crop_cut(s) for s in samples)
    assert not any(is_crop_cut(s) for s in cut_cases([phantom_case], settings))


def test_fractures_beyond_the_range_are_cut_from_intact_bodies_only(phantom_case):
    settings = Settings(32, 2.0, [0.0], Preprocessing("ct_window", -1000, 1500), [0.6], ["crush"])
    fractured = cut_cases([phantom_case], settings, keep=lambda s: s["simulated"])
    assert fractured and all(s["requested"] == 0.6 and abs(s["measured"] - 0.6) <= 0.05 for s in fractured)
    assert not cut_cases([phantom_case], replace(settings, fracture_losses=[]), keep=lambda s: s["simulated"])


def test_other_bundles_images_become_grey_inputs_of_this_one():
    rgb = np.zeros((2, 3, 4, 4), np.float32)
    rgb[:, 1] = 1.0  # pure green at full range, red and blue at mid-grey
    grey = as_model_input(rgb, 8, 1)
    assert grey.shape == (2, 1, 8, 8)
    np.testing.assert_allclose(grey, 0.587, atol=1e-6)
    assert as_model_input(grey, 4, 3).shape == (2, 3, 4, 4)


def test_photograph_gain_and_cut():
    image = np.full((1, 3, 4, 4), 1.0, np.float32)
    np.testing.assert_allclose(photo_gain(image, 0.5), 0.0)
    cut = photo_cut(image, 0.5)
    assert np.all(cut[:, :, :2] == 1.0) and np.all(cut[:, :, 2:] == -1.0)


def test_a_patch_set_needs_a_case_per_image():
    with pytest.raises(ValueError):
        PatchSet("s", "", np.zeros((2, 1, 4, 4)), np.array(["a"]))
    assert PatchSet("s", "d", np.zeros((2, 1, 4, 4)), np.array(["a", "a"])).record()["cases"] == 1


def test_the_training_cut_is_read_from_the_config_build_command():
    from DAECounterfactualLib.bundle.spec import BundleConfig
    from DAECounterfactualResearch.bundle_making import bundle_config
    from DAECounterfactualLib.model.config import DAEConfig
    from DAECounterfactualResearch.experiment import load_experiment
    from DAECounterfactualResearch.ood_sets import target_of, training_cut

    experiment = load_experiment(CONFIGS / "vcf-ct.json")
    config: BundleConfig = bundle_config(experiment, DAEConfig.from_dict(experiment.model))
    cut = training_cut(experiment, config)
    assert cut.settings.lateral_offsets_mm == [-6, -4, -2, 0, 2, 4, 6] and cut.phantoms == 400
    assert cut.phantom_max_fractures == 3 and cut.train_only == ("ct:",) and cut.preset == "ct"
    assert cut.settings.fracture_losses == [0.22, 0.3, 0.45] and cut.settings.size_px == 64
    mri = load_experiment(CONFIGS / "vertebra-mri.json")
    mri_cut = training_cut(mri, bundle_config(mri, DAEConfig.from_dict(mri.model)))
    assert mri_cut.settings.fracture_kinds == ["wedge", "biconcave"] and mri_cut.phantoms == 0
    assert mri_cut.settings.lateral_offsets_mm == [-3, 0, 3]
    assert [target_of(load_experiment(CONFIGS / f"{n}.json")) for n in ("vcf-ct", "disc-mri", "dr-retina")] == \
        ["vertebra", "disc", "image"]


def test_a_detector_fitted_on_some_sources_keeps_their_patients_apart_from_the_others():
    from DAECounterfactualLib.errors import InputError
    from DAECounterfactualResearch.dataset_building import CaseSpec
    from DAECounterfactualResearch.experiment import Experiment, load_experiment
    from DAECounterfactualResearch.ood_sets import descriptions, within_sources

    specs = [CaseSpec(case, group, [], lambda: None) for case, group in
             (("a", "VB1:x"), ("b", "VB3:y"), ("c", "VB3:z"), ("d", "phantom:d"))]
    inside, outside = within_sources(specs, ("VB3",))
    assert [s.case for s in inside] == ["b", "c"] and [s.case for s in outside] == ["a", "d"]
    assert within_sources(specs, ()) == (specs, [])
    mri = load_experiment(CONFIGS / "vertebra-mri.json")
    assert mri.ood_sources == ("VB3",) and "VB3" in mri.ood_fitted_on
    assert all(text.endswith("; data sources VB3 only") for text in descriptions("vertebra", mri.ood_sources))
    assert Experiment.from_dict({"data": {}}).ood_sources == ()
    with pytest.raises(InputError, match="a disc bundle has none"):
        descriptions("disc", ("VB3",))


@pytest.mark.real_data
def test_vcf_ct_holds_out_phantoms_only_split_as_its_builder_split_them():
    from spine_testdata import real_data

    from DAECounterfactualLib.model.config import DAEConfig
    from DAECounterfactualResearch.bundle_making import bundle_config
    from DAECounterfactualResearch.experiment import load_experiment
    from DAECounterfactualResearch.ood_sets import training_cut, vertebra_splits

    experiment = load_experiment(CONFIGS / "vcf-ct.json")
    cut = training_cut(experiment, bundle_config(experiment, DAEConfig.from_dict(experiment.model)))
    train, held = vertebra_splits(cut, real_data(), limit=None)
    assert len(held) == 120 and all(s.group.startswith("phantom:") for s in held)
    assert {s.case for s in train if not s.group.startswith("phantom:")} == {"totalseg_example", "tptbox_sample"}
    assert len(train) == 282


@pytest.mark.real_data
def test_the_script_measures_a_bundle_and_reuses_its_cached_latents(tmp_path, script_main, capsys):
    """dr-retina end to end (RetinaMNIST, one lumbar MRI and the unseen CTs for its spine shifts): the spine patches
    it never saw are told from its photographs, the JSON holds every detector, and a rerun reads the cache."""
    import json

    from spine_testdata import real_data

    from DAECounterfactualLib.errors import DAECFError
    from DAECounterfactualLib.io.sampledata import sample_files

    try:
        sample_files("spine-mri")
    except DAECFError as error:
        pytest.skip(f"sample MRI not fetched (make setup fetches it): {error}")
    main = script_main("ood_shift_sets")
    argv = [str(CONFIGS / "dr-retina.json"), "--data-root", str(real_data()), "--mri-cases", "1",
            "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")]
    assert main(argv) == 0
    record = json.loads((tmp_path / "out" / "ood_dr-retina.json").read_text())
    assert set(record["measured"]) >= {"zscore_shipped", "zscore_refit", "mahalanobis", "mahalanobis_pca32", "knn10"}
    assert record["measured"]["mahalanobis"]["shifts"]["spine_mri"]["auroc"] > 0.95
    assert record["fit_n"] == 1080 and record["measured"]["zscore_shipped"]["id"]["n"] == 120
    first = capsys.readouterr().out
    assert "picked: " in first and (tmp_path / "cache" / "dr-retina.npz").exists()
    assert main(argv) == 0 and capsys.readouterr().out == first
