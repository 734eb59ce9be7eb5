"""The noise schedule of a diffusion model: its config, the linear beta schedule and the DDIM timesteps.

Apart from the two tensor helpers used in training, it needs only numpy, so a bundle's config can be read and
checked before torch is installed (the Slicer module lists models and tasks on a fresh Slicer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class DiffusionConfig:
    num_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    beta_schedule: str = "linear"

    def __post_init__(self) -> None:
        if self.beta_schedule != "linear":
            raise ValueError(f"unsupported beta_schedule {self.beta_schedule!r} (only 'linear')")
        if self.num_train_timesteps < 2 or not 0 < self.beta_start < self.beta_end < 1:
            raise ValueError(f"invalid diffusion config {self}")


SPACINGS = ("uniform", "quadratic")


class NoiseSchedule:
    """Linear beta schedule and its cumulative products, in float64."""

    def __init__(self, config: DiffusionConfig = DiffusionConfig()):
        self.config = config
        self.betas = np.linspace(config.beta_start, config.beta_end, config.num_train_timesteps, dtype=np.float64)
        self.alphas_cumprod = np.cumprod(1.0 - self.betas)
        self._alpha_bar_on: dict = {}  # torch device -> alphas_cumprod there, copied once

    @property
    def num_train_timesteps(self) -> int:
        return self.config.num_train_timesteps

    def timesteps(self, num_steps: int, spacing: str = "uniform") -> np.ndarray:
        """``num_steps`` trained timesteps for a k-step DDIM, ascending and ending at T-1.

        ``uniform``: evenly spaced from 0. ``quadratic``: evenly spaced in sqrt(t), so denser at low noise, where
        inversion's fixed-point iteration converges slowest and fine detail is drawn; it starts above t = 0, so no
        network call goes to the near-empty step between the clean image and t = 0."""
        T = self.num_train_timesteps
        if not isinstance(num_steps, (int, np.integer)) or not 1 <= num_steps <= T:
            raise ValueError(f"number of DDIM steps must be an integer in [1, {T}], got {num_steps!r}")
        if spacing not in SPACINGS:
            raise ValueError(f"unknown timestep spacing {spacing!r} (one of {', '.join(SPACINGS)})")
        if num_steps == 1:
            return np.array([T - 1])
        if spacing == "uniform":
            return np.round(np.linspace(0, T - 1, num_steps)).astype(np.int64)
        first = max(1.0, (T - 1) / num_steps ** 2)
        steps = np.round(np.linspace(np.sqrt(first), np.sqrt(T - 1), num_steps) ** 2).astype(np.int64)
        if np.any(np.diff(steps) <= 0):
            raise ValueError(f"quadratic spacing cannot place {num_steps} distinct steps in {T}; use uniform")
        return steps

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        """Cumulative alpha products at ``t``, on t's device. The table is copied there once: a copy from host
        memory waits for the GPU to finish its queue, which would stall every training step."""
        import torch

        table = self._alpha_bar_on.get(t.device)
        if table is None:
            table = self._alpha_bar_on[t.device] = torch.from_numpy(self.alphas_cumprod).to(t.device)
        return table[t]

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Forward process q(x_t | x_0) for a batch of integer timesteps."""
        a = self.alpha_bar(t).to(x0.dtype).view(-1, *([1] * (x0.ndim - 1)))
        return a.sqrt() * x0 + (1 - a).sqrt() * noise
