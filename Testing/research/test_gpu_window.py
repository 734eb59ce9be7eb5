"""The one-call GPU window script, dry-run on the CPU with a tiny config: what a window returns is complete, within
the device tool's file limits, and loads as a model."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bundle_fixtures import blob_images
from DAECounterfactualLib.errors import InputError


def test_weights_are_packed_into_shards_below_the_file_limit():
    from DAECounterfactualResearch import gpu_window as window

    tensors = {f"t{k}": torch.zeros(1000, dtype=torch.float16) for k in range(7)}  # 2,000 bytes each
    groups = window.shards(tensors, max_bytes=4500)
    assert [sorted(g) for g in groups] == [["t0", "t1"], ["t2", "t3"], ["t4", "t5"], ["t6"]]
    assert window.shards(tensors, max_bytes=10**6) == [tensors]


def write_tiny_experiment(tiny_config, folder, **data):
    """An experiment config of the tiny model on 16 blob images (12 train, 4 val), with its training set; ``data``
    adds to the config's data section."""
    from DAECounterfactualResearch.datasets import TrainingSet

    images = np.concatenate([blob_images()] * 4)
    (folder / "tiny").mkdir()
    contrast = np.array(["T2"] * 9 + ["TIRM"] * 3 + ["T2"] * 4)
    TrainingSet(images, np.zeros(16, dtype=np.int16), np.array(["train"] * 12 + ["val"] * 4),
                np.arange(16).astype(str), {"contrast": contrast}).save(folder / "tiny" / "dataset.npz")
    model = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(tiny_config).items()}
    config = {"bundle": {"name": "tiny"}, "model": model,
              "train": {"total_samples": 16, "batch_size": 4, "validate_every_samples": 8, "validation_images": 2,
                        "validation_steps": 2, "checkpoint_minutes": 10.0},
              "data": {"kind": "training_set", "path": "tiny/dataset.npz", **data}, "tasks": []}
    (folder / "tiny.json").write_text(json.dumps(config))
    return folder / "tiny.json"


def test_a_dry_run_writes_weights_record_and_window_summary(tiny_config, tmp_path, script_main):
    from safetensors.torch import load_file

    from DAECounterfactualLib.model.config import DAEConfig
    from DAECounterfactualLib.model.networks import make_model

    write_tiny_experiment(tiny_config, tmp_path)
    model = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(tiny_config).items()}
    out = tmp_path / "out"
    assert script_main("gpu_window")([str(tmp_path / "tiny.json"), "--out", str(out), "--minutes", "5", "--data-root",
                        str(tmp_path), "--runs", str(tmp_path / "runs"), "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["tiny.png", "tiny.safetensors", "window.json"]
    summary = json.loads((out / "window.json").read_text())
    assert summary["gpu"]["cuda"] is False and summary["experiments"][0]["step"] == 4 and summary["files"] == 3
    assert summary["experiments"][0]["images_per_s"] > 0 and summary["experiments"][0]["returncode"] == 0
    record = summary["experiments"][0]["record"]
    assert record["samples_seen"] == 16 and any("loss" in h for h in record["history"])
    weights = load_file(out / "tiny.safetensors")
    assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float16}
    ema = {k[len("ema."):]: v.float() for k, v in weights.items() if k.startswith("ema.")}
    make_model(DAEConfig.from_dict(model)).load_state_dict(ema)  # the EMA half loads as the configured model
    assert summary["speed"] == "eager" and summary["experiments"][0]["train_gflops_per_image"] > 0


def test_an_experiment_balanced_by_contrast_trains_on_each_contrast_equally(tiny_config, tmp_path, script_main):
    write_tiny_experiment(tiny_config, tmp_path, balance_by="contrast")
    out = tmp_path / "out"
    assert script_main("gpu_window")([str(tmp_path / "tiny.json"), "--out", str(out), "--minutes", "5", "--data-root",
                                      str(tmp_path), "--runs", str(tmp_path / "runs"), "--device", "cpu"]) == 0
    data = json.loads((out / "window.json").read_text())["experiments"][0]["record"]["data"]
    assert data["train_images"] == 12 and data["balanced_by"] == {"contrast": {"T2": 9, "TIRM": 9}}


def test_speed_auto_times_the_paths_and_trains_with_the_fastest(tiny_config, tmp_path, script_main, monkeypatch):
    """On the CPU: eager and channels-last only (compiling takes a minute here; its equality is tested elsewhere)."""
    from DAECounterfactualResearch import gpu_window

    monkeypatch.setattr(gpu_window, "AUTO_VARIANTS", ("eager", "channels_last"))
    config = write_tiny_experiment(tiny_config, tmp_path)
    out = tmp_path / "out"
    assert script_main("gpu_window")([str(config), "--out", str(out), "--minutes", "5", "--data-root", str(tmp_path),
                                      "--runs", str(tmp_path / "runs"), "--device", "cpu", "--speed", "auto",
                                      "--speed-seconds", "0.5"]) == 0
    summary = json.loads((out / "window.json").read_text())
    report = summary["throughput"]
    rates = {name: r["images_per_s"] for name, r in report["variants"].items()}
    assert set(rates) == {"eager", "channels_last"} and report["chosen"] == max(rates, key=rates.get)
    assert report["train_gflops_per_image"] > 0
    assert summary["speed"] == report["chosen"] and summary["experiments"][0]["returncode"] == 0
    log = (tmp_path / "runs" / "tiny.log").read_text(encoding="utf-8")
    assert "resuming at step 0" in log


def test_the_window_benchmarks_explanations_first_and_records_a_failed_bench(tiny_config, tmp_path, script_main,
                                                                             monkeypatch, ct_bundle_path):
    from bundle_fixtures import PATCH_PX
    from DAECounterfactualLib.cli.bench import save_patches
    from DAECounterfactualResearch import gpu_window

    monkeypatch.setattr(gpu_window, "BENCH_PATCHES", 6)
    monkeypatch.setattr(gpu_window, "BENCH_BATCH", 4)
    config = write_tiny_experiment(tiny_config, tmp_path)
    patches = tmp_path / "patches.npz"
    save_patches(patches, np.random.default_rng(0).uniform(-1, 1, (3, 1, PATCH_PX, PATCH_PX)))
    window = ["--minutes", "5", "--data-root", str(tmp_path), "--runs", str(tmp_path / "runs"), "--device", "cpu",
              "--bench-patches", str(patches)]
    out = tmp_path / "out"
    assert script_main("gpu_window")([str(config), "--out", str(out), *window,
                                      "--explain-bench", f"{ct_bundle_path}:genant"]) == 0
    summary = json.loads((out / "window.json").read_text())
    bench = summary["explain_bench"]
    assert set(bench["presets"]) == {"fast", "standard"} and "error" not in bench  # the presets the bundle has
    assert bench["encoder"] == {**bench["encoder"], "images": 6, "batch": 4}
    assert bench["determinism"]["repeat_max_abs"] == 0.0 and "fast" in bench["table"]
    assert bench["task"] == "genant" and summary["experiments"][0]["returncode"] == 0

    out = tmp_path / "out2"  # a bench that fails is recorded, the training still runs, the exit status says so
    assert script_main("gpu_window")([str(config), "--out", str(out), *window, "--runs", str(tmp_path / "runs2"),
                                      "--explain-bench", f"{ct_bundle_path}:nosuchtask"]) == 1
    summary = json.loads((out / "window.json").read_text())
    assert "nosuchtask" in summary["explain_bench"]["error"] and summary["experiments"][0]["returncode"] == 0


def test_a_window_whose_files_would_not_all_come_back_is_refused_before_it_starts(tiny_config, tmp_path, script_main,
                                                                                   monkeypatch):
    from DAECounterfactualResearch import gpu_window

    config = write_tiny_experiment(tiny_config, tmp_path)
    assert gpu_window.window_files([config]) == 3  # window.json, weights, strip
    monkeypatch.setattr(gpu_window, "MAX_FILE_BYTES", 1000)  # the tiny model's weights now take many files
    window = ["--out", str(tmp_path / "out"), "--minutes", "5", "--data-root", str(tmp_path), "--device", "cpu"]
    with pytest.raises(InputError, match=r"return \d+ files .* the device tool returns 8: run fewer experiments"):
        script_main("gpu_window")([str(config), *window])
    assert not (tmp_path / "out").exists()  # refused before anything ran
    with pytest.raises(InputError, match="share a bundle name"):
        gpu_window.window_files([config, config])


def test_a_windows_run_is_restored_bundled_and_resumed_with_a_fresh_optimizer(tiny_config, tmp_path, script_main,
                                                                              monkeypatch):
    from DAECounterfactualResearch import gpu_window
    from DAECounterfactualResearch.bundle_making import load_ema_model
    from DAECounterfactualResearch.training import Trainer, TrainConfig

    monkeypatch.setattr(gpu_window, "MAX_FILE_BYTES", 300_000)  # the tiny model's weights come back in shards
    config = write_tiny_experiment(tiny_config, tmp_path)
    out = tmp_path / "out"
    assert script_main("gpu_window")([str(config), "--out", str(out), "--minutes", "5", "--data-root", str(tmp_path),
                                      "--runs", str(tmp_path / "device-runs"), "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.glob("*.safetensors")) == [f"tiny-{k}.safetensors" for k in (1, 2, 3)]
    assert json.loads((out / "window.json").read_text())["files"] == len(list(out.iterdir())) == 5  # counted exactly
    (out / "tiny-other.safetensors").write_bytes(b"not this run's weights")  # another experiment "tiny-other"
    assert script_main("restore_window_run")([str(out), "--runs", str(tmp_path / "runs")]) == 0
    run_dir = tmp_path / "runs" / "tiny"
    meta = json.loads((run_dir / "checkpoint.json").read_text())
    model = load_ema_model(run_dir, meta, allow_unfinished=True)  # what make_bundle.py does with it
    shipped = {k: v.float() for n in (1, 2, 3) for k, v in load_file(out / f"tiny-{n}.safetensors").items()
               if k.startswith("ema.")}
    assert len(shipped) == len(model.state_dict())
    assert all(torch.equal(model.state_dict()[k[len("ema."):]], v) for k, v in shipped.items())

    train = dict(json.loads(config.read_text())["train"], total_samples=32, precision="fp32")
    trainer = Trainer(tiny_config, TrainConfig(**train), torch.from_numpy(blob_images()), run_dir)
    assert trainer.step == 4 and trainer.meta["optimizer_restarted_at"] == 4
    assert not trainer.optimizer.state  # AdamW's moments did not come back: they start afresh
    warmup_steps = trainer.train_config.warmup_samples // trainer.train_config.batch_size
    assert trainer.learning_rate(4) == pytest.approx(trainer.train_config.lr / warmup_steps)  # warmed up again
    assert trainer.run(progress=False)["step"] == 8
    again = Trainer(tiny_config, TrainConfig(**train), torch.from_numpy(blob_images()), run_dir)
    assert again.meta["optimizer_restarted_at"] == 4 and again.optimizer.state  # a full checkpoint since
