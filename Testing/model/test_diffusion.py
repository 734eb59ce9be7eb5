import numpy as np
import pytest
import torch

from DAECounterfactualLib.bundle.spec import MAX_STEPS, StepPreset
from DAECounterfactualLib.model.diffusion import (ddim_invert, ddim_move, ddim_sample, diffusion_loss,
                                                  unconverged_steps)
from DAECounterfactualLib.model.schedule import DiffusionConfig, NoiseSchedule

RECONSTRUCTION_MSE_AT_50_STEPS = 2e-3  # stated error for the overfitted tiny DAE (measured ~3e-4)


def test_linear_schedule_tables_are_float64_and_match_the_ddpm_values():
    s = NoiseSchedule()
    assert s.betas.dtype == np.float64 and s.alphas_cumprod.dtype == np.float64
    assert s.betas[0] == pytest.approx(1e-4) and s.betas[-1] == pytest.approx(0.02)
    assert s.alphas_cumprod[-1] == pytest.approx(np.prod(1 - np.linspace(1e-4, 0.02, 1000)), rel=1e-12)
    assert 4.0e-5 < s.alphas_cumprod[-1] < 4.1e-5


@pytest.mark.parametrize("k", [1, 2, 10, 50, 100, 250, 1000])
def test_ddim_timesteps_are_evenly_spaced_and_cover_the_range(k):
    steps = NoiseSchedule().timesteps(k)
    assert len(steps) == k and len(set(steps.tolist())) == k
    assert steps[-1] == 999 and (k == 1 or steps[0] == 0)
    assert np.all(np.diff(steps) > 0)


@pytest.mark.parametrize("bad", [0, -3, 1001, 2.5, "10"])
def test_invalid_step_counts_are_refused(bad):
    with pytest.raises(ValueError, match="number of DDIM steps"):
        NoiseSchedule().timesteps(bad)


def test_unsupported_schedule_is_refused():
    with pytest.raises(ValueError, match="unsupported beta_schedule"):
        DiffusionConfig(beta_schedule="cosine")


def test_add_noise_follows_q_sample():
    s = NoiseSchedule()
    x0, noise = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    t = torch.tensor([0, 700])
    a = torch.tensor(s.alphas_cumprod[[0, 700]], dtype=torch.float32).view(2, 1, 1, 1)
    torch.testing.assert_close(s.add_noise(x0, noise, t), a.sqrt() * x0 + (1 - a).sqrt() * noise)


def test_ddim_move_there_and_back_is_exact_for_fixed_eps():
    x, eps = torch.randn(2, 1, 4, 4, dtype=torch.float64), torch.randn(2, 1, 4, 4, dtype=torch.float64)
    y = ddim_move(x, eps, 0.9, 0.3)
    torch.testing.assert_close(ddim_move(y, eps, 0.3, 0.9), x)


def test_loss_of_an_oracle_noise_predictor_is_zero():
    """The loss must compare the prediction with exactly the noise used to make x_t."""
    s = NoiseSchedule()
    x0 = torch.rand(4, 1, 8, 8) * 2 - 1

    class Oracle(torch.nn.Module):
        def forward(self, x_t, t, z=None, *, x_start):
            a = torch.tensor(s.alphas_cumprod, dtype=torch.float32)[t.long()].view(-1, 1, 1, 1)
            return (x_t - a.sqrt() * x_start) / (1 - a).sqrt()

    loss = diffusion_loss(Oracle(), x0, s, torch.Generator().manual_seed(0))
    assert loss.item() < 1e-8


def _reconstruction_mse(model, images, steps):
    s = NoiseSchedule()
    z = model.encode(images)
    x_T = ddim_invert(model, images, z, s, steps)
    return torch.mean((ddim_sample(model, x_T, z, s, steps) - images) ** 2).item(), x_T


@pytest.mark.slow
def test_inversion_then_decoding_reconstructs_training_images(overfit_dae):
    model, images = overfit_dae
    with torch.no_grad():
        mse, x_T = _reconstruction_mse(model, images, 50)
    assert mse < RECONSTRUCTION_MSE_AT_50_STEPS
    assert 0.8 < x_T.std().item() < 1.2  # the stochastic code looks like unit Gaussian noise


@pytest.mark.slow
def test_more_steps_never_reconstruct_worse(overfit_dae):
    model, images = overfit_dae
    with torch.no_grad():
        errors = [_reconstruction_mse(model, images, k)[0] for k in (5, 10, 20, 50, 100)]
    assert all(later <= earlier for earlier, later in zip(errors, errors[1:])), errors


def test_x_T_carries_information_beyond_z(overfit_dae):
    """Decoding with random noise instead of the inverted x_T must reconstruct much worse."""
    model, images = overfit_dae
    s = NoiseSchedule()
    with torch.no_grad():
        mse, _ = _reconstruction_mse(model, images, 20)
        z = model.encode(images)
        random = ddim_sample(model, torch.randn(images.shape, generator=torch.Generator().manual_seed(1)), z, s, 20)
    assert torch.mean((random - images) ** 2).item() > 10 * mse


def test_shared_x_T_decodes_a_batch_of_latents_like_one_at_a_time(overfit_dae):
    model, images = overfit_dae
    s = NoiseSchedule()
    with torch.no_grad():
        z = model.encode(images)
        x_T = ddim_invert(model, images[:1], z[:1], s, 10)
        batch = ddim_sample(model, x_T, z, s, 10)
        singles = torch.cat([ddim_sample(model, x_T, z[i:i + 1], s, 10) for i in range(len(z))])
    torch.testing.assert_close(batch, singles, atol=1e-4, rtol=1e-4)


def test_cpu_results_are_bitwise_deterministic(overfit_dae):
    model, images = overfit_dae
    s = NoiseSchedule()
    with torch.no_grad():
        runs = []
        for _ in range(2):
            z = model.encode(images)
            x_T = ddim_invert(model, images, z, s, 10)
            runs.append((z, x_T, ddim_sample(model, x_T, z, s, 10)))
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_progress_callback_sees_every_step_and_can_cancel(overfit_dae):
    model, images = overfit_dae
    s = NoiseSchedule()
    seen = []
    with torch.no_grad():
        z = model.encode(images[:1])
        ddim_invert(model, images[:1], z, s, 7, callback=lambda i, n: seen.append((i, n)))
    assert seen == [(i, 7) for i in range(1, 8)]

    class Stop(Exception):
        pass

    def cancel_at_3(i, n):
        if i == 3:
            raise Stop

    with pytest.raises(Stop):
        ddim_sample(model, torch.randn(1, 1, 16, 16), z, s, 7, callback=cancel_at_3)


def test_mismatched_batches_are_refused(overfit_dae):
    model, images = overfit_dae
    with pytest.raises(ValueError, match="batch sizes"):
        ddim_sample(model, torch.randn(2, 1, 16, 16), torch.randn(3, 32), NoiseSchedule(), 2)


def test_fixed_point_refinement_makes_decoding_retrace_the_inversion(overfit_dae):
    model, images = overfit_dae
    s = NoiseSchedule()
    with torch.no_grad():
        z = model.encode(images)
        errors = {}
        for refine in (0, 3):
            x_T = ddim_invert(model, images, z, s, 10, refine=refine)
            errors[refine] = torch.mean((ddim_sample(model, x_T, z, s, 10) - images) ** 2).item()
        calls = []
        ddim_invert(lambda x, t, z_: calls.append(1) or torch.zeros_like(x), images, z, s, 10, refine=3)
    assert errors[3] < errors[0] / 3, errors
    assert len(calls) == 10 * (1 + 3)


@pytest.mark.parametrize("k", [2, 8, 10, 20, 50])
def test_quadratic_spacing_is_denser_at_low_noise_and_skips_t0(k):
    steps = NoiseSchedule().timesteps(k, "quadratic")
    assert len(steps) == k and steps[-1] == 999 and steps[0] >= 1
    assert np.all(np.diff(steps) > 0) and np.all(np.diff(np.diff(steps)) >= -1)  # gaps grow (up to rounding)


def test_unknown_spacing_and_too_many_quadratic_steps_are_refused():
    with pytest.raises(ValueError, match="unknown timestep spacing"):
        NoiseSchedule().timesteps(10, "cosine")
    with pytest.raises(ValueError, match="distinct steps"):
        NoiseSchedule().timesteps(900, "quadratic")


def counted(model, calls: list):
    """The model as an eps model that appends to ``calls`` at each network call."""
    return lambda x, t, z_: calls.append(1) or model(x, t, z_)


def quadratic_reconstruction_error(model, x_T, z, images, schedule, steps: int) -> float:
    """MSE of decoding x_T with ``steps`` quadratically spaced DDIM steps against the images."""
    return torch.mean((ddim_sample(model, x_T, z, schedule, steps, spacing="quadratic") - images) ** 2).item()


def test_refinement_tolerance_stops_iterating_once_a_step_has_converged(overfit_dae):
    model, images = overfit_dae
    s = NoiseSchedule()
    with torch.no_grad():
        z = model.encode(images)
        full, early = [], []
        x_full = ddim_invert(counted(model, full), images, z, s, 10, refine=8, spacing="quadratic")
        x_early = ddim_invert(counted(model, early), images, z, s, 10, refine=8, refine_tol=1e-3,
                              spacing="quadratic")
        error = {name: quadratic_reconstruction_error(model, x, z, images, s, 10)
                 for name, x in (("full", x_full), ("early", x_early))}
    assert len(full) == 10 * 9 and 10 * 2 <= len(early) < len(full)
    assert error["early"] < 2 * error["full"] + 1e-5, error


def test_refinement_log_records_each_steps_changes_where_the_tolerance_stops(overfit_dae):
    model, images = overfit_dae
    s = NoiseSchedule()
    with torch.no_grad():
        z = model.encode(images)
        log, calls = [], []
        ddim_invert(counted(model, calls), images, z, s, 10, refine=8, refine_tol=1e-3, spacing="quadratic",
                    refine_log=log)
    assert [t for t, _ in log] == [int(t) for t in s.timesteps(10, "quadratic")]
    assert len(calls) == sum(1 + len(changes) for _, changes in log)  # one call per logged iteration
    for _, changes in log:  # a step stops at its first change below the tolerance, or after 8
        assert all(c >= 1e-3 for c in changes[:-1]) and (changes[-1] < 1e-3 or len(changes) == 8)


def test_anderson_mixing_solves_a_slow_linear_fixed_point_that_plain_iteration_crawls_towards():
    from DAECounterfactualLib.model.diffusion import anderson_extrapolate

    generator = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    contraction = q @ torch.diag(torch.tensor([0.95, -0.9, 0.5], dtype=torch.float64)) @ q.T
    offsets = torch.randn(2, 3, generator=generator, dtype=torch.float64)  # two images, two fixed points

    def g(x):
        return x @ contraction.T + offsets

    fixed = torch.linalg.solve(torch.eye(3, dtype=torch.float64) - contraction, offsets.T).T
    x, history = torch.zeros(2, 3, dtype=torch.float64), []
    for _ in range(4):  # with 3 earlier iterates, mixing is exact on a 3-d linear map (it is GMRES there)
        history = (history + [(x, g(x))])[-4:]
        x = anderson_extrapolate(*zip(*history)) if len(history) > 1 else history[-1][1]
    plain = torch.zeros(2, 3, dtype=torch.float64)
    for _ in range(4):
        plain = g(plain)
    assert torch.allclose(x, fixed, atol=1e-9)
    assert (plain - fixed).abs().max() > 0.1  # the plain iteration is still far after as many evaluations


def test_anderson_mixing_reaches_the_tolerance_in_fewer_calls_at_no_worse_reconstruction(overfit_dae):
    model, images = overfit_dae
    s = NoiseSchedule()
    with torch.no_grad():
        z = model.encode(images)
        calls, error = {}, {}
        for anderson in (0, 2):
            calls[anderson] = []
            x_T = ddim_invert(counted(model, calls[anderson]), images, z, s, 6, refine=20, refine_tol=1e-4,
                              spacing="quadratic", anderson=anderson)
            error[anderson] = quadratic_reconstruction_error(model, x_T, z, images, s, 6)
    assert len(calls[2]) < len(calls[0])
    assert error[2] < 2 * error[0] + 1e-6, error


def test_mixing_that_never_reaches_the_tolerance_returns_its_best_image_not_its_last():
    from DAECounterfactualLib.model.diffusion import _fixed_point

    steps = iter([1.0, 0.5, 2.0, 0.8])  # the change each evaluation makes, whatever it is given
    images = []

    def g(x):
        images.append(x + next(steps))
        return images[-1]

    solution, changes = _fixed_point(g, torch.zeros(1, 1, 2, 2), 4, 0.1, anderson=2, record=False)
    assert changes == pytest.approx([1.0, 0.5, 2.0, 0.8])
    assert torch.equal(solution, images[1])  # the smallest change; the plain iteration returns its last image
    steps = iter([1.0, 0.5, 2.0, 0.8])
    images.clear()
    solution, _ = _fixed_point(g, torch.zeros(1, 1, 2, 2), 4, 0.1, anderson=0, record=False)
    assert torch.equal(solution, images[-1])


def test_v_truncated_weights_emphasise_high_noise_and_average_one():
    from DAECounterfactualLib.model.diffusion import loss_weights

    s = NoiseSchedule()
    uniform = loss_weights(s, "eps")
    assert np.all(uniform == 1)
    weights = loss_weights(s, "v_truncated", max_weight=20.0)
    assert weights.shape == (s.num_train_timesteps,) and np.isclose(weights.mean(), 1.0)
    assert np.all(np.diff(weights) >= 0)  # non-decreasing in t: noisier steps count more
    assert weights[-1] / weights[0] == pytest.approx(20.0 / (1 + (1 - s.alphas_cumprod[0]) / s.alphas_cumprod[0]))
    with pytest.raises(ValueError, match="unknown loss weighting"):
        loss_weights(s, "snr")


def test_weighted_loss_is_the_weighted_mean_of_per_image_errors():
    class Constant(torch.nn.Module):
        def forward(self, x_t, t, z=None, *, x_start=None):
            return torch.zeros_like(x_t)

    s = NoiseSchedule()
    x0 = torch.zeros(6, 1, 4, 4)
    weights = np.linspace(0.0, 2.0, s.num_train_timesteps)
    plain = diffusion_loss(Constant(), x0, s, torch.Generator().manual_seed(3))
    generator = torch.Generator().manual_seed(3)
    t = torch.randint(0, s.num_train_timesteps, (6,), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    expected = float(((noise ** 2).flatten(1).mean(1) * torch.from_numpy(weights).float()[t]).mean())
    weighted = diffusion_loss(Constant(), x0, s, torch.Generator().manual_seed(3), weights)
    assert float(weighted) == pytest.approx(expected, rel=1e-5)
    assert float(plain) == pytest.approx(float((noise ** 2).mean()), rel=1e-5)


def test_unconverged_steps_are_those_whose_iterations_never_reached_the_tolerance():
    log = [(28, [0.05, 0.001]), (111, [0.05, 0.02, 0.01]), (999, [])]
    assert unconverged_steps(log, 0.002) == [111]
    assert unconverged_steps(log, 0.0) == []  # without a tolerance there is nothing to miss


def test_a_doubled_preset_halves_every_step_and_keeps_its_refinement():
    fast = StepPreset(6, 6, refine=12, refine_tol=0.002, spacing="quadratic", anderson=2)
    assert fast.doubled() == StepPreset(12, 12, refine=12, refine_tol=0.002, spacing="quadratic", anderson=2)
    assert StepPreset(MAX_STEPS - 1, 3).doubled() == StepPreset(MAX_STEPS, 6)
