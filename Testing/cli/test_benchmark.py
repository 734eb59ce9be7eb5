import json

import numpy as np
import pytest

from DAECounterfactualLib.cli.bench import format_table, preset_label, run_benchmark
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.inference.explainer import Explainer


@pytest.fixture(scope="module")
def report(blob_bundle, overfit_dae):
    explainer = Explainer(load_bundle(blob_bundle))
    patches = np.concatenate([overfit_dae[1].numpy()] * 4)
    return run_benchmark(explainer, "size", patches, repeats=1, quality_patches=2)


@pytest.mark.slow
def test_report_has_the_documented_fields(report):
    assert set(report["presets"]) == {"fast", "standard", "reference"}
    for r in report["presets"].values():
        assert {"seconds_median", "seconds_min", "seconds_max", "unet_calls", "peak_rss_mb", "recon_mse",
                "recon_ssim", "speedup_vs_reference"} <= set(r)
        assert r["seconds_min"] <= r["seconds_median"] <= r["seconds_max"]
        assert r["peak_rss_mb"] > 50
    assert report["encoder"]["vertebrae_per_s"] > 0 and report["machine"]["torch_threads"] >= 1
    json.dumps(report)  # serialisable as written by --out


@pytest.mark.slow
def test_unet_calls_follow_the_presets(report):
    # 4 grades + reconstruction + reflection = 6 latents; batched presets decode them in one pass
    fast, reference = report["presets"]["fast"], report["presets"]["reference"]
    assert fast["unet_calls"] == 5 + 5 and fast["unet_images"] == 5 + 5 * 6
    assert reference["unet_calls"] == 50 + 50 * 6 and reference["unet_images"] == 50 + 50 * 6
    assert reference["speedup_vs_reference"] == pytest.approx(1.0)
    assert fast["speedup_vs_reference"] > 3


@pytest.mark.slow
def test_fast_paths_keep_the_reference_grades(report):
    """Grades come from the encoder alone, so every preset must agree exactly; reconstructions stay close."""
    presets = report["presets"]
    assert presets["fast"]["grades"] == presets["standard"]["grades"] == presets["reference"]["grades"]
    assert presets["standard"]["recon_mse"] <= 1.2 * presets["reference"]["recon_mse"] + 1e-3


@pytest.mark.slow
def test_table_lists_every_preset(report):
    table = format_table(report)
    for name in ("fast", "standard", "reference", "vertebrae/s", "GFLOP"):
        assert name in table


@pytest.mark.slow
def test_tune_presets_counts_inversion_calls_and_parses_candidates(blob_bundle, overfit_dae):
    from DAECounterfactualResearch.preset_tuning import measure, parse_candidate

    from DAECounterfactualLib.bundle.spec import StepPreset

    assert parse_candidate("10,10,12,0.002,quadratic") == StepPreset(10, 10, 12, 0.002, "quadratic")
    assert parse_candidate("250,100,0") == StepPreset(250, 100)
    assert parse_candidate("6,6,12,0.002,quadratic,2") == StepPreset(6, 6, 12, 0.002, "quadratic", anderson=2)
    assert preset_label(vars(parse_candidate("6,6,12,0.002,quadratic,2"))) == "6×≤13/6 quadratic tol 0.002 AA2"
    explainer = Explainer(load_bundle(blob_bundle))
    images = overfit_dae[1].numpy()[:2]
    fixed = measure(explainer, images, StepPreset(5, 5, 3))
    early = measure(explainer, images, StepPreset(5, 5, 3, refine_tol=0.5))  # every step stops after one iteration
    assert fixed["inversion_calls"] == 5 * 4 and early["inversion_calls"] == 5 * 2
    import torch

    from DAECounterfactualResearch.training import reconstruct

    x = torch.from_numpy(images)
    expected = np.mean([float((reconstruct(explainer.model, x[i:i + 1], explainer.schedule, 5, 3).clamp(-1, 1)
                               - x[i:i + 1]).pow(2).mean()) for i in range(len(x))])
    assert fixed["recon_mse"] == pytest.approx(expected, rel=1e-5)


def test_the_layout_study_times_both_layouts_and_finds_them_equal(ct_bundle_path, script_main, capsys):
    assert script_main("unet_layouts")(["--bundle", str(ct_bundle_path), "--batches", "1", "3", "--repeats", "3",
                                        "--encoder-batch", "2"]) == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()[2:]]
    assert [r[0] for r in rows] == ["UNet batch 1", "UNet batch 3", "encoder batch 2"]
    for row in rows:
        assert float(row[1]) > 0 and float(row[2]) > 0 and float(row[4]) < 1e-4  # same outputs in both layouts
