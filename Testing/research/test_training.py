import collections
import json

import numpy as np
import pytest
import torch

from bundle_fixtures import blob_images
from DAECounterfactualResearch.checkpoint import META, TENSORS
from DAECounterfactualResearch.datasets import TrainingSet, load_training_set, medmnist_training_set
from DAECounterfactualLib.errors import DAECFError, InputError
from DAECounterfactualResearch.training import Trainer, TrainConfig, batch_indices

FAST = dict(batch_size=8, lr=1e-3, warmup_samples=16, validate_every_samples=10_000, validation_images=2,
            validation_steps=3, checkpoint_minutes=1e9, precision="fp32")


def _trainer(config, run_dir, total_samples, **overrides):
    images = torch.from_numpy(blob_images())
    return Trainer(config, TrainConfig(total_samples=total_samples, **{**FAST, **overrides}), images, run_dir)


@pytest.mark.slow
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tiny_config, tmp_path):
    straight = _trainer(tiny_config, tmp_path / "straight", 8 * 12)
    straight.run(progress=False)
    first = _trainer(tiny_config, tmp_path / "resumed", 8 * 12)
    first.run(progress=False, max_minutes=0)  # stops after one step, with a checkpoint
    assert first.step == 1
    resumed = _trainer(tiny_config, tmp_path / "resumed", 8 * 12)
    assert resumed.step == 1
    resumed.run(progress=False)
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(straight.ema.state_dict().values(), resumed.ema.state_dict().values()):
        assert torch.equal(a, b)


def test_max_minutes_counts_from_the_start_of_the_call_not_from_the_last_checkpoint(tiny_config, tmp_path,
                                                                                    monkeypatch):
    import DAECounterfactualResearch.training as training

    class Clock:  # every reading advances 10 s: checkpoints fall due every 3 steps, the time limit after 6
        now = 0.0

        def time(self):
            self.now += 10.0
            return self.now

    monkeypatch.setattr(training, "time", Clock())
    trainer = _trainer(tiny_config, tmp_path / "run", 8 * 40, checkpoint_minutes=0.5)
    result = trainer.run(progress=False, max_minutes=1.0)
    assert 0 < trainer.step < 10 and not result["done"]
    assert json.loads((tmp_path / "run" / META).read_text())["samples_seen"] == trainer.step * 8


def _torchrun_two_ranks(run_dir, *flags):
    import os
    import subprocess
    import sys
    from pathlib import Path

    worker = Path(__file__).with_name("ddp_worker.py")
    scratch = run_dir / "tmp"  # torchrun's own temp folders (torchelastic_*) stay in the test's folder
    scratch.mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(worker), str(run_dir), *flags], timeout=300, capture_output=True, text=True,
                          env={**os.environ, "TMPDIR": str(scratch)})
    output = f"{done.stdout[-2000:]}\n{done.stderr[-6000:]}"
    assert done.returncode == 0, f"torchrun exited with {done.returncode}:\n{output}"
    return [json.loads((run_dir / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.ddp
def test_ddp_on_two_cpu_processes_keeps_the_ranks_in_step_and_checkpoints_once(tmp_path):
    ranks = _torchrun_two_ranks(tmp_path)
    assert [r["world"] for r in ranks] == [2, 2] and [r["step"] for r in ranks] == [6, 6]
    assert ranks[0]["param_sum"] == pytest.approx(ranks[1]["param_sum"], abs=1e-9)  # gradients were averaged
    meta = json.loads((tmp_path / META).read_text())
    assert meta["world_size"] == 2 and meta["samples_seen"] == 6 * 8


@pytest.mark.ddp
def test_ddp_ranks_stop_together_when_their_clocks_disagree_about_the_time_limit(tmp_path):
    ranks = _torchrun_two_ranks(tmp_path, "--stop-rank0-early")
    assert [r["step"] for r in ranks] == [1, 1] and not ranks[1]["done"]


@pytest.mark.slow
def test_training_reduces_the_loss_and_records_history(tiny_config, tmp_path):
    trainer = _trainer(tiny_config, tmp_path / "run", 8 * 120, precision="bf16")
    trainer.run(progress=False)
    losses = [h["loss"] for h in trainer.history if "loss" in h]
    assert losses[-1] < 0.5 * losses[0]
    assert any("val_recon_mse" in h for h in trainer.history)
    assert (tmp_path / "run" / "loss.png").stat().st_size > 1000
    assert (tmp_path / "run" / "reconstructions.png").stat().st_size > 1000
    meta = json.loads((tmp_path / "run" / META).read_text())
    assert meta["samples_seen"] == 960 and meta["model_config"] == tiny_config.to_dict()


@pytest.mark.slow
def test_resume_refuses_another_architecture(tiny_config, tmp_path):
    from DAECounterfactualLib.model.config import DAEConfig

    _trainer(tiny_config, tmp_path / "run", 8).run(progress=False)
    other = DAEConfig(**{**tiny_config.to_dict(), "num_res_blocks": 2})
    with pytest.raises(ValueError, match="checkpoint was trained with another model config"):
        _trainer(other, tmp_path / "run", 8)


def test_half_written_checkpoint_is_refused(tiny_config, tmp_path):
    _trainer(tiny_config, tmp_path / "run", 8).run(progress=False)
    meta = json.loads((tmp_path / "run" / META).read_text())
    meta["step"] += 5
    (tmp_path / "run" / META).write_text(json.dumps(meta))
    with pytest.raises(DAECFError, match="checkpoint files disagree"):
        _trainer(tiny_config, tmp_path / "run", 8)
    (tmp_path / "run" / TENSORS).write_bytes(b"garbage")
    with pytest.raises(DAECFError, match="unreadable checkpoint"):
        _trainer(tiny_config, tmp_path / "run", 8)


def test_batches_cover_each_epoch_once():
    seen = torch.cat([batch_indices(step, 4, 12, seed=3) for step in range(3)])
    assert sorted(seen.tolist()) == list(range(12))
    assert not torch.equal(batch_indices(3, 4, 12, 3), batch_indices(0, 4, 12, 3))  # new epoch, new order
    assert torch.equal(batch_indices(5, 4, 12, 3), batch_indices(5, 4, 12, 3))


def test_training_set_round_trip(tmp_path):
    data = TrainingSet(np.zeros((3, 1, 4, 4), np.float16), np.array([0, 1, -1]), np.array(["train", "val", "train"]),
                       np.array(["a", "b", "a"]), {"level": np.array(["L1", "L2", "L3"])})
    data.save(tmp_path / "set.npz")
    again = load_training_set(tmp_path / "set.npz")
    assert len(again.subset("train")) == 2 and again.extra["level"].tolist() == ["L1", "L2", "L3"]
    np.savez(tmp_path / "bad.npz", images=np.zeros((3, 1, 4, 4)))
    with pytest.raises(InputError, match="lacks"):
        load_training_set(tmp_path / "bad.npz")


def test_balancing_repeats_rows_so_each_contrast_is_about_as_common_as_the_most_common():
    from DAECounterfactualResearch.datasets import balanced

    contrast = np.array(["water"] * 6 + ["T1"] * 2 + ["TIRM"] * 3)
    data = TrainingSet(np.arange(11, dtype=np.float16).reshape(11, 1, 1, 1), np.zeros(11), np.full(11, "train"),
                       np.arange(11).astype(str), {"contrast": contrast})
    even = balanced(data, "contrast")
    assert sorted(collections.Counter(even.extra["contrast"].tolist()).items()) == [("T1", 6), ("TIRM", 6),
                                                                                     ("water", 6)]
    assert even.images[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 6, 6, 7, 7, 7, 8, 8, 9, 9, 10, 10]
    assert even.case_id.tolist() == [str(int(v)) for v in even.images[:, 0, 0, 0]]  # every field repeated with it
    with pytest.raises(InputError, match="no 'sequence' column"):
        balanced(data, "sequence")
    data.extra["contrast"][0] = ""
    with pytest.raises(InputError, match="empty for 1 rows"):
        balanced(data, "contrast")


def test_a_training_set_cut_with_another_window_or_patch_than_the_bundle_is_refused(tmp_path):
    from DAECounterfactualResearch.experiment import Experiment, load_data

    TrainingSet(np.zeros((2, 1, 4, 4), np.float16), np.array([0, 1]), np.array(["train", "val"]),
                np.array(["a", "b"])).save(tmp_path / "dataset.npz")
    bundle = {"preprocessing": {"kind": "ct_window", "low": -1000, "high": 1500},
              "patch": {"size_px": 64, "spacing_mm": 1.5}}
    spec = {"kind": "training_set", "path": "dataset.npz"}
    experiment = Experiment.from_dict({"data": spec, "bundle": bundle})
    assert len(load_data(experiment, tmp_path)[0]) == 2  # no manifest.json: nothing to check against
    settings = {"preprocessing": {"kind": "ct_window", "low": -1000.0, "high": 1500.0}, "size_px": 64,
                "spacing_mm": 1.5}
    (tmp_path / "manifest.json").write_text(json.dumps({"settings": settings}))
    assert len(load_data(experiment, tmp_path)[0]) == 2  # the same settings, ints or floats
    settings |= {"preprocessing": {"kind": "ct_window", "low": -200.0, "high": 800.0}, "spacing_mm": 1.0}
    (tmp_path / "manifest.json").write_text(json.dumps({"settings": settings}))
    with pytest.raises(InputError, match="built with preprocessing .*-200.*spacing_mm 1.0 \\(config: 1.5\\)"):
        load_data(experiment, tmp_path)
    assert len(load_data(Experiment.from_dict({"data": spec}), tmp_path)[0]) == 2  # no bundle section: nothing to match
    settings |= {"preprocessing": bundle["preprocessing"], "spacing_mm": 1.5, "rows": "spine"}
    (tmp_path / "manifest.json").write_text(json.dumps({"settings": settings}))
    with pytest.raises(InputError, match="built with rows spine \\(config: axial\\)"):  # a config silent on rows
        load_data(experiment, tmp_path)
    along = Experiment.from_dict({"data": spec, "bundle": bundle | {"patch": bundle["patch"] | {"rows": "spine"}}})
    assert len(load_data(along, tmp_path)[0]) == 2


def test_medmnist_set_is_scaled_to_the_model_range(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28, 3), dtype=np.uint8)
    np.savez(tmp_path / "m.npz", train_images=images, train_labels=np.arange(5)[:, None],
             val_images=images[:2], val_labels=np.zeros((2, 1)))
    data = medmnist_training_set(tmp_path / "m.npz")
    assert data.images.shape == (7, 3, 28, 28)
    np.testing.assert_allclose(data.images[0, :, 2, 3], images[0, 2, 3] / 127.5 - 1, atol=1e-3)
    assert data.grades.tolist() == [0, 1, 2, 3, 4, 0, 0] and len(set(data.case_id)) == 7
    with pytest.raises(InputError, match="missing array.*test_images.*for split 'test'"):
        medmnist_training_set(tmp_path / "m.npz", splits=("test",))


def test_extending_a_finished_run_drops_its_outdated_export(tiny_config, tmp_path):
    finished = _trainer(tiny_config, tmp_path / "run", 8)
    finished.run(progress=False)
    finished.export(tmp_path / "run" / "export")
    assert _trainer(tiny_config, tmp_path / "run", 8).run_dir.joinpath("export").exists()  # still current
    _trainer(tiny_config, tmp_path / "run", 16)  # more samples requested: the export no longer is the result
    assert not (tmp_path / "run" / "export").exists()


def test_auto_precision_uses_bf16_only_where_the_cpu_has_it(tmp_path):
    from DAECounterfactualResearch import precision

    with_bf16 = tmp_path / "bf16.txt"
    with_bf16.write_text("processor : 0\nflags : fpu avx512f avx512_bf16\n")
    without = tmp_path / "plain.txt"
    without.write_text("processor : 0\nflags : fpu avx2 avx512f\n")
    assert precision.cpu_has_native_bf16.__wrapped__(str(with_bf16))
    assert not precision.cpu_has_native_bf16.__wrapped__(str(without))
    assert not precision.cpu_has_native_bf16.__wrapped__(str(tmp_path / "missing"))
    cpu = torch.device("cpu")
    assert precision.autocast_dtype("fp32", cpu) is None
    assert precision.autocast_dtype("bf16", cpu) is torch.bfloat16
    expected = torch.bfloat16 if precision.cpu_has_native_bf16() else None
    assert precision.autocast_dtype("auto", cpu) is expected
    with pytest.raises(ValueError, match="unknown precision"):
        precision.autocast_dtype("int8", cpu)
