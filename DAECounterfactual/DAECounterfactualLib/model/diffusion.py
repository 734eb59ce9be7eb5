"""Gaussian diffusion on a ``NoiseSchedule`` (``schedule.py``): training loss, DDIM sampling and deterministic DDIM inversion.

No network lives here (cf. diffusers' schedulers): every function takes ``eps_model(x_t, t, z) -> eps``, so one
trained model serves any number of sampling steps. Schedule tables are float64; each step casts two scalars.

DDIM with ``k`` steps uses ``k`` trained timesteps, by default ``round(linspace(0, T-1, k))`` (diffae's respacing;
cf. diffusers' ``timestep_spacing``). Inversion walks them upwards from the clean image (alpha_bar = 1) to x_T at
t = T-1; sampling walks them downwards from x_T and ends at alpha_bar = 1. Step for step, the two are the same
deterministic ODE discretisation run both ways.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .schedule import NoiseSchedule

EpsModel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, int], None]


def predict_x0(x: torch.Tensor, eps: torch.Tensor, alpha: float) -> torch.Tensor:
    return (x - (1.0 - alpha) ** 0.5 * eps) / alpha**0.5


def predict_eps(x: torch.Tensor, x0: torch.Tensor, alpha: float) -> torch.Tensor:
    return (x - alpha**0.5 * x0) / (1.0 - alpha) ** 0.5


def ddim_move(x: torch.Tensor, eps: torch.Tensor, alpha_from: float, alpha_to: float) -> torch.Tensor:
    """One deterministic DDIM move from noise level alpha_from to alpha_to (either direction)."""
    return alpha_to**0.5 * predict_x0(x, eps, alpha_from) + (1.0 - alpha_to) ** 0.5 * eps


def _timestep_tensor(t: int, x: torch.Tensor) -> torch.Tensor:
    return torch.full((x.shape[0],), float(t), device=x.device)


def _broadcast_pair(x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One shared x_T for many z (or one z for many x): expand the single one to the batch."""
    if x.shape[0] == z.shape[0]:
        return x, z
    if x.shape[0] == 1:
        return x.expand(z.shape[0], *x.shape[1:]), z
    if z.shape[0] == 1:
        return x, z.expand(x.shape[0], *z.shape[1:])
    raise ValueError(f"batch sizes of x ({x.shape[0]}) and z ({z.shape[0]}) do not match")


def _worst_rms(difference: torch.Tensor) -> float:
    """RMS of each image's difference, largest over the batch (a host sync: call only when it is used)."""
    return float(difference.pow(2).flatten(1).mean(1).sqrt().max())


def anderson_extrapolate(iterates: Sequence[torch.Tensor], images: Sequence[torch.Tensor]) -> torch.Tensor:
    """Next iterate of a fixed-point iteration x = g(x) by Anderson mixing (type II, undamped), per image: the
    combination of the last images g(x_k) whose residuals g(x_k) - x_k cancel best in least squares. The
    (ridge-stabilised) normal equations are solved in float64; with a few iterates they are tiny."""
    residuals = [g - x for x, g in zip(iterates, images)]
    d_res = torch.stack([(b - a).flatten(1) for a, b in zip(residuals, residuals[1:])], -1).double()
    d_img = torch.stack([(b - a).flatten(1) for a, b in zip(images, images[1:])], -1).double()
    gram = d_res.transpose(1, 2) @ d_res
    ridge = 1e-10 * gram.diagonal(dim1=1, dim2=2).sum(-1).clamp_min(1e-30)[:, None, None]
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    rhs = d_res.transpose(1, 2) @ residuals[-1].flatten(1).double()[..., None]
    gamma = torch.linalg.solve(gram + ridge * eye, rhs)
    return (images[-1].flatten(1).double() - (d_img @ gamma).squeeze(-1)).to(images[-1].dtype).view_as(images[-1])


@torch.no_grad()
def ddim_invert(eps_model: EpsModel, x0: torch.Tensor, z: torch.Tensor, schedule: NoiseSchedule, num_steps: int,
                callback: StepCallback | None = None, refine: int = 0, refine_tol: float = 0.0,
                spacing: str = "uniform", refine_log: list | None = None, anderson: int = 0) -> torch.Tensor:
    """Deterministic DDIM inversion: clean image -> stochastic code x_T, conditioned on z.

    Each step mirrors one sampling step: sampling moves t -> t_prev with eps(x_t, t), so inversion moves
    t_prev -> t with eps(x_{t_prev}, t), evaluated at the destination's timestep. (Evaluating at t_prev instead,
    as diffae does, also queries the network at t = 0 on a clean image, where its prediction is meaningless; on
    our models that made reconstructions worse with more steps.)

    ``refine`` > 0 solves each step's implicit equation x_t = move(x_{t_prev}, eps(x_t, t)) by up to that many
    fixed-point iterations, so decoding retraces the inversion almost exactly: with few steps this buys far
    better reconstructions than more steps would (each iteration costs one network call). With ``refine_tol``
    a step stops iterating once an iteration changes x by less than that (RMS, worst image of the batch): the
    iteration converges within a few calls at the middle steps but needs many at the lowest-noise step (and more
    at the highest-noise ones), so a tolerance puts the calls where they are needed. ``anderson`` > 0 mixes the
    last ``anderson`` + 1 iterates (``anderson_extrapolate``, safeguarded in ``_fixed_point``) instead of taking
    the plain one, which reaches the same tolerance in fewer calls where the plain iteration crawls, and converges
    with coarse steps where it diverges. ``refine_log``, a list, receives (t, [change made by each iteration]) per
    step: where refinement is worth its calls.
    """
    x, z = _broadcast_pair(x0, z)
    alphas = schedule.alphas_cumprod
    alpha_prev = 1.0  # the clean image
    steps = schedule.timesteps(num_steps, spacing)
    for i, t in enumerate(steps):
        t_tensor, alpha = _timestep_tensor(t, x), float(alphas[t])

        def g(y: torch.Tensor) -> torch.Tensor:  # the step's implicit equation is y = g(y); used at once
            return ddim_move(x, eps_model(y, t_tensor, z).to(x.dtype), alpha_prev, alpha)

        x_next, changes = _fixed_point(g, g(x), refine, refine_tol, anderson, refine_log is not None)
        if refine_log is not None:
            refine_log.append((int(t), changes))
        x, alpha_prev = x_next, alpha
        if callback is not None:
            callback(i + 1, len(steps))
    return x


def unconverged_steps(refine_log: list, refine_tol: float) -> list[int]:
    """Timesteps of a ``ddim_invert`` ``refine_log`` whose iterations never changed x by less than ``refine_tol``:
    there decoding does not retrace the inversion, and the reconstruction drifts from the image."""
    return [t for t, changes in refine_log if refine_tol > 0 and changes and min(changes) >= refine_tol]


def _fixed_point(g: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, iterations: int, tol: float,
                 anderson: int, record: bool) -> tuple[torch.Tensor, list[float]]:
    """Up to ``iterations`` evaluations of g towards x = g(x), from x; returns the solution and the change each
    evaluation made. Plain iteration returns the last image g(x). Anderson mixing restarts its history when a mixed
    iterate made the change grow, and returns the image with the smallest change if it never reaches ``tol``: an
    extrapolation must not leave a step worse than the plain iteration would."""
    changes, history, best = [], [], None
    for _ in range(iterations):
        image = g(x)
        if tol > 0 or record or anderson:
            changes.append(_worst_rms(image - x))
        if tol > 0 and changes[-1] < tol:
            return image, changes
        if not anderson:
            x = image
            continue
        if best is None or changes[-1] < best[0]:
            best = (changes[-1], image)
        if len(changes) > 1 and changes[-1] > changes[-2]:
            history = []
        history = (history + [(x, image)])[-(anderson + 1):]
        x = anderson_extrapolate(*zip(*history)) if len(history) > 1 else image
    return (best[1] if best is not None else x), changes


@torch.no_grad()
def ddim_sample(eps_model: EpsModel, x_T: torch.Tensor, z: torch.Tensor, schedule: NoiseSchedule, num_steps: int,
                callback: StepCallback | None = None, clip: bool = False, spacing: str = "uniform") -> torch.Tensor:
    """Deterministic DDIM decoding x_T -> image. A single x_T is shared by every z in the batch."""
    x, z = _broadcast_pair(x_T, z)
    x = x.clone()
    steps = schedule.timesteps(num_steps, spacing)[::-1]
    alphas = schedule.alphas_cumprod
    for i, t in enumerate(steps):
        alpha_prev = float(alphas[steps[i + 1]]) if i + 1 < len(steps) else 1.0
        alpha = float(alphas[t])
        eps = eps_model(x, _timestep_tensor(t, x), z).to(x.dtype)
        if clip:  # keep the predicted clean image in the data range, as diffae does when sampling
            eps = predict_eps(x, predict_x0(x, eps, alpha).clamp(-1, 1), alpha)
        x = ddim_move(x, eps, alpha, alpha_prev)
        if callback is not None:
            callback(i + 1, len(steps))
    return x


LOSS_WEIGHTINGS = ("eps", "v_truncated")


def loss_weights(schedule: NoiseSchedule, weighting: str = "eps", max_weight: float = 20.0) -> np.ndarray:
    """Per-timestep weight of the noise-prediction MSE, normalised to mean 1 over the timesteps.

    ``eps``: uniform (DDPM's simple loss). ``v_truncated``: min(1 + 1/SNR(t), max_weight), i.e. the
    v-prediction loss truncated at high noise. There the eps-MSE barely depends on knowing the clean image, so
    under uniform weighting the UNet can learn to ignore z_sem: our first 64 px CT model did (decoding one x_T
    with another image's z_sem changed the output by < 1e-4 MSE). Weighting the high-noise steps, where only
    z_sem can tell the network what the image is, makes the semantic code carry it.
    """
    if weighting not in LOSS_WEIGHTINGS:
        raise ValueError(f"unknown loss weighting {weighting!r}; expected one of {LOSS_WEIGHTINGS}")
    if weighting == "eps":
        return np.ones(schedule.num_train_timesteps)
    if not max_weight >= 1:
        raise ValueError(f"max_weight must be >= 1, got {max_weight}")
    alpha = schedule.alphas_cumprod
    weights = np.minimum(1.0 + (1.0 - alpha) / alpha, max_weight)
    return weights / weights.mean()


def diffusion_loss(model, x0: torch.Tensor, schedule: NoiseSchedule, generator: torch.Generator | None = None,
                   weights: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
    """Noise-prediction MSE at uniformly drawn timesteps, optionally weighted per timestep (``loss_weights``);
    the encoder sees the clean image (diffae)."""
    n = x0.shape[0]
    t = torch.randint(0, schedule.num_train_timesteps, (n,), generator=generator, device=x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    x_t = schedule.add_noise(x0, noise, t)
    eps = model(x_t, t.float(), x_start=x0)
    per_image = ((eps.float() - noise.float()) ** 2).flatten(1).mean(1)
    if weights is not None:
        per_image = per_image * torch.as_tensor(weights).to(per_image)[t]
    return per_image.mean()
