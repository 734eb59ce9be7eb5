"""The speed paths of training (issue 24) compute the same step as the plain one: the batch order kept on the
device, channels-last weights and batches, torch.compile; and the FLOP count the window's figure rests on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bundle_fixtures import blob_images
from DAECounterfactualLib.model.schedule import NoiseSchedule
from DAECounterfactualResearch.throughput import fraction_of_peak, training_flops_per_image
from DAECounterfactualResearch.training import BatchOrder, Trainer, TrainConfig, batch_indices

FAST = dict(batch_size=8, lr=1e-3, warmup_samples=16, validate_every_samples=10_000, validation_images=2,
            validation_steps=3, checkpoint_minutes=1e9, precision="fp32")
PARAMETER_TOLERANCE = 1e-4  # after 3 AdamW steps at lr 1e-3: float rounding of another kernel order, not a bug
LOSS_TOLERANCE = 1e-5


@pytest.mark.parametrize("batch_size, n", [(4, 12), (5, 12), (8, 3)])
def test_the_batch_order_on_the_device_draws_the_same_batches_as_batch_indices(batch_size, n):
    order = BatchOrder(batch_size, n, seed=3, device=torch.device("cpu"))
    for step in range(4 * max(n // batch_size, 1) + 1):
        assert torch.equal(order(step), batch_indices(step, batch_size, n, seed=3))


def test_the_noise_table_is_copied_to_a_device_once():
    schedule = NoiseSchedule()
    t = torch.tensor([0, 500, 999])
    first = schedule.alpha_bar(t)
    table = schedule._alpha_bar_on[t.device]
    assert torch.equal(schedule.alpha_bar(t), first) and schedule._alpha_bar_on[t.device] is table
    np.testing.assert_array_equal(first.numpy(), schedule.alphas_cumprod[[0, 500, 999]])


def steps(tiny_config, tmp_path, name, **overrides):
    trainer = Trainer(tiny_config, TrainConfig(total_samples=24, **{**FAST, **overrides}),
                      torch.from_numpy(blob_images()), tmp_path / name)
    losses = [float(trainer.train_step(step)) for step in range(3)]
    return np.array(losses), [p.detach().clone() for p in trainer.model.parameters()]


def assert_same_step(a, b):
    np.testing.assert_allclose(a[0], b[0], rtol=0, atol=LOSS_TOLERANCE)
    assert max(float((x - y).abs().max()) for x, y in zip(a[1], b[1])) < PARAMETER_TOLERANCE


def test_channels_last_trains_like_the_default_layout_and_checkpoints_contiguously(tiny_config, tmp_path):
    assert_same_step(steps(tiny_config, tmp_path, "plain"), steps(tiny_config, tmp_path, "nhwc", channels_last=True))
    trainer = Trainer(tiny_config, TrainConfig(total_samples=16, **FAST, channels_last=True),
                      torch.from_numpy(blob_images()), tmp_path / "saved")
    trainer.run(progress=False)
    resumed = Trainer(tiny_config, TrainConfig(total_samples=16, **FAST), torch.from_numpy(blob_images()),
                      tmp_path / "saved")  # a default-layout run reads the channels-last checkpoint
    assert resumed.step == 2 and all(torch.equal(a, b) for a, b in zip(trainer.model.state_dict().values(),
                                                                       resumed.model.state_dict().values()))


@pytest.mark.slow  # compiling the tiny UNet takes about a minute on 2 cores
def test_a_compiled_training_step_equals_the_eager_one(tiny_config, tmp_path, utf8_locale):
    assert_same_step(steps(tiny_config, tmp_path, "eager"), steps(tiny_config, tmp_path, "compiled", compile="default"))


@pytest.fixture()
def utf8_locale():
    """Earlier tests of the full suite leave the C locale set (a library they use sets it), under which torch's
    compiler cannot read its own UTF-8 templates; a training process (train_dae.py) starts with the user's locale."""
    import locale

    saved = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C.UTF-8")
    yield
    locale.setlocale(locale.LC_CTYPE, saved)


def test_an_unknown_compile_mode_is_refused():
    with pytest.raises(ValueError, match="compile must be none or one of default, reduce-overhead"):
        TrainConfig(compile="fastest")


def test_a_training_step_counts_forward_and_backward(tiny_config):
    """Backward costs about twice the forward: the count is about three forward passes."""
    from torch.utils.flop_counter import FlopCounterMode

    from DAECounterfactualLib.model.networks import make_model

    model = make_model(tiny_config)
    x = torch.zeros(2, 1, tiny_config.image_size, tiny_config.image_size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, torch.full((2,), 500.0), x_start=x)
    ratio = training_flops_per_image(tiny_config) / (counter.get_total_flops() / 2)
    assert 2.5 < ratio < 3.5
    assert fraction_of_peak(1000.0, 6e9, 600.0) == pytest.approx(0.01)
