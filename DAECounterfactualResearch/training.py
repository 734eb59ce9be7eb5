"""Training loop of the diffusion autoencoder: AdamW, EMA, autocast, clipping, checkpoints, exact resume.

Every random draw of step ``s`` comes from a generator seeded with (seed, s, rank): the batch order (one
permutation per epoch) and the diffusion noise are functions of the step alone, so a run resumed from a
checkpoint continues bit for bit as if it had never stopped, and no RNG state needs saving. Under ``torchrun``
each rank takes its share of the global batch and DistributedDataParallel averages the gradients.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from DAECounterfactualLib.io.files import cache_dir, sha256_file
from DAECounterfactualLib.model.config import DAEConfig
from DAECounterfactualLib.model.diffusion import ddim_invert, ddim_sample, diffusion_loss, loss_weights, predict_x0
from DAECounterfactualLib.model.schedule import NoiseSchedule
from DAECounterfactualLib.model.networks import count_parameters, make_model

from .checkpoint import load_checkpoint, save_checkpoint
from .precision import autocast_dtype


@dataclass(frozen=True)
class TrainConfig:
    total_samples: int = 200_000
    batch_size: int = 32          # global batch, split over ranks
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_samples: int = 5_000
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    precision: str = "auto"       # auto | bf16 | fp16 | fp32
    loss_weighting: str = "eps"   # eps | v_truncated (see diffusion.loss_weights)
    max_loss_weight: float = 20.0
    checkpoint_minutes: float = 5.0
    validate_every_samples: int = 20_000
    validation_images: int = 8
    validation_steps: int = 20
    seed: int = 0
    compile: str = "none"         # none | one of COMPILE_MODES: torch.compile of the network for the training step
    channels_last: bool = False   # NHWC weights and batches (tensor cores prefer them)

    def __post_init__(self) -> None:
        if self.compile not in ("none", *COMPILE_MODES):
            raise ValueError(f"compile must be none or one of {', '.join(COMPILE_MODES)}, got {self.compile!r}")


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def default_cache_dir() -> Path:
    return cache_dir() / "runs"


class BatchOrder:
    """Indices of global batch ``step``: consecutive slices of one seeded permutation per epoch. The permutation is
    drawn and copied to the training set's device once per epoch, not per step: a copy from host memory waits for
    the GPU's queue, so a copy per step would stall every step."""

    def __init__(self, batch_size: int, n: int, seed: int, device: torch.device):
        self.batch_size, self.n, self.seed, self.device = batch_size, n, seed, device
        self._epoch, self._perm = None, None

    def __call__(self, step: int) -> torch.Tensor:
        epoch, position = divmod(step, max(self.n // self.batch_size, 1))
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=generator).to(self.device)
        if self.n < self.batch_size:
            return self._perm[torch.arange(self.batch_size, device=self.device) % self.n]
        return self._perm[position * self.batch_size:(position + 1) * self.batch_size]


def batch_indices(step: int, batch_size: int, n: int, seed: int) -> torch.Tensor:
    """Batch ``step`` of the training order on the CPU, drawn afresh (``BatchOrder`` without its cache)."""
    return BatchOrder(batch_size, n, seed, torch.device("cpu"))(step)


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """One multi-tensor lerp over all parameters (one kernel launch per group on a GPU, not one per tensor)."""
    torch._foreach_lerp_(list(ema.parameters()), [p.detach() for p in model.parameters()], 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


@torch.no_grad()
def semantic_reliance(model, images: torch.Tensor, schedule: NoiseSchedule, t_range=(400, 800), seed: int = 0) -> float:
    """How much the UNet relies on z_sem: the clean-image prediction error at mid-to-high noise with each image's
    z_sem given to another image, minus that with its own (MSE in model units; 0 = z_sem ignored).

    Reconstruction through DDIM inversion cannot show this: x_T alone carries the image."""
    if len(images) < 2:
        return float("nan")
    generator = torch.Generator().manual_seed(seed)
    t = torch.randint(*t_range, (len(images),), generator=generator).to(images.device)
    noise = torch.randn(images.shape, generator=generator).to(images.device)
    x_t = schedule.add_noise(images, noise, t)
    alpha = schedule.alpha_bar(t).to(images.dtype).view(-1, 1, 1, 1)
    z = model.encode(images)

    def x0_error(z_used: torch.Tensor) -> float:
        return float(torch.mean((predict_x0(x_t, model(x_t, t.float(), z_used), alpha) - images) ** 2))

    return x0_error(z.roll(1, 0)) - x0_error(z)


@torch.no_grad()
def reconstruct(model, images: torch.Tensor, schedule: NoiseSchedule, steps: int, refine: int = 0,
                refine_tol: float = 0.0, spacing: str = "uniform", anderson: int = 0) -> torch.Tensor:
    z = model.encode(images)
    x_T = ddim_invert(model, images, z, schedule, steps, refine=refine, refine_tol=refine_tol, spacing=spacing,
                      anderson=anderson)
    return ddim_sample(model, x_T, z, schedule, steps, spacing=spacing)


class Trainer:
    """One training run in ``run_dir``: resumes from the checkpoint there if there is one."""

    def __init__(self, model_config: DAEConfig, train_config: TrainConfig, images: torch.Tensor,
                 run_dir: Path, validation: torch.Tensor | None = None, device: str = "cpu",
                 data_manifest: dict[str, Any] | None = None):
        self.model_config, self.train_config = model_config, train_config
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        if device.startswith("cuda") and self.world > 1:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        self.device = torch.device(device)
        if train_config.batch_size % self.world:
            raise ValueError(f"batch size {train_config.batch_size} is not divisible by {self.world} ranks")
        # On a GPU the whole training set lives in device memory (the sets are small): no per-step host copies.
        self.images = images.to(self.device) if self.device.type == "cuda" else images
        pool = validation if validation is not None else images
        spread = np.linspace(0, len(pool) - 1, min(train_config.validation_images, len(pool))).round().astype(int)
        self.validation = pool[torch.from_numpy(spread)]  # spread over the set, not one case's neighbours
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.schedule = NoiseSchedule()
        self.loss_weights = torch.from_numpy(
            loss_weights(self.schedule, train_config.loss_weighting, train_config.max_loss_weight)).to(self.device)
        self.order = BatchOrder(train_config.batch_size, len(images), train_config.seed, self.images.device)
        self.memory_format = torch.channels_last if train_config.channels_last else torch.contiguous_format
        torch.manual_seed(train_config.seed)
        self.model = make_model(model_config).to(self.device, memory_format=self.memory_format)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=train_config.lr,
                                           weight_decay=train_config.weight_decay,
                                           fused=True if self.device.type == "cuda" else None)
        self.amp = autocast_dtype(train_config.precision, self.device)
        self.scaler = torch.amp.GradScaler(enabled=self.amp == torch.float16)
        self.step, self.history, self.elapsed = 0, [], 0.0
        self.meta = {"model_config": model_config.to_dict(), "train_config": asdict(train_config),
                     "data": data_manifest or {}, "device": str(self.device), "world_size": self.world,
                     "parameters": count_parameters(self.model)}
        restored = load_checkpoint(self.run_dir, self.model, self.ema, self.optimizer, self.meta["model_config"])
        if restored is not None:
            self.step, self.history, self.elapsed = restored["step"], restored["history"], restored["elapsed_s"]
            for key in ("warm_start", "optimizer_restarted_at"):
                if key in restored:
                    self.meta[key] = restored[key]
        self.ddp = (torch.nn.parallel.DistributedDataParallel(self.model) if self.world > 1 else self.model)
        # the training step's network; the module itself (weights, EMA, checkpoints) stays as it is
        self.network = self.ddp if train_config.compile == "none" else torch.compile(self.ddp, mode=train_config.compile)
        stale_export = self.run_dir / "export"
        if stale_export.exists() and self.step < self.total_steps and self.rank == 0:
            shutil.rmtree(stale_export)  # a finished run extended to more samples: its old export is outdated

    @property
    def total_steps(self) -> int:
        return math.ceil(self.train_config.total_samples / self.train_config.batch_size)

    def learning_rate(self, step: int) -> float:
        """Linear warm-up, then constant; warmed up again where the optimizer restarted without its moments."""
        warmup = max(self.train_config.warmup_samples // self.train_config.batch_size, 1)
        return self.train_config.lr * min(1.0, (step - self.meta.get("optimizer_restarted_at", 0) + 1) / warmup)

    def train_step(self, step: int) -> torch.Tensor:
        """One optimizer step; returns the loss as a detached tensor, so that no step waits for the device."""
        config = self.train_config
        idx = self.order(step)[self.rank::self.world]
        x0 = self.images[idx].to(self.device, torch.float32).contiguous(memory_format=self.memory_format)
        generator = torch.Generator(self.device).manual_seed((config.seed * 7919 + step) * 1009 + self.rank)
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(step)
        with torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
            loss = diffusion_loss(self.network, x0, self.schedule, generator, self.loss_weights)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        update_ema(self.ema, self.model, min(config.ema_decay, (1 + step) / (10 + step)))
        return loss.detach()

    def run(self, progress: bool = True, max_minutes: float | None = None) -> dict[str, Any]:
        """Train until total_samples (or max_minutes of this call); checkpoints on the way and at the end."""
        from tqdm import tqdm

        call_start = last_save = time.time()  # max_minutes and the throughput shown count from this call
        first_step = self.step
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not progress or self.rank != 0,
                   unit="step", dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 30.0)
        losses: list[torch.Tensor] = []
        val_every = max(self.train_config.validate_every_samples // self.train_config.batch_size, 1)
        while self.step < self.total_steps:
            losses.append(self.train_step(self.step))
            self.step += 1
            bar.update(1)
            if self.step % 50 == 0 or self.step == self.total_steps:
                mean_loss = float(np.mean(torch.stack(losses).cpu().numpy().astype(np.float64)))
                self.history.append({"step": self.step, "loss": mean_loss})
                losses = []
                rate = (self.step - first_step) * self.train_config.batch_size / max(time.time() - call_start, 1e-9)
                bar.set_postfix(loss=f"{mean_loss:.4f}", img_s=f"{rate:.1f}", refresh=False)
            if self.step % val_every == 0 or self.step == self.total_steps:
                self.validate()
            out_of_time = self.any_rank(max_minutes is not None and time.time() - call_start > 60 * max_minutes)
            if time.time() - last_save > 60 * self.train_config.checkpoint_minutes or out_of_time:
                self.save(time.time() - last_save)
                last_save = time.time()
            if out_of_time:
                break
        self.save(time.time() - last_save)
        bar.close()
        seconds = time.time() - call_start
        return {"step": self.step, "done": self.step >= self.total_steps, "elapsed_s": self.elapsed,
                "images_per_s": (self.step - first_step) * self.train_config.batch_size / max(seconds, 1e-9)}

    def any_rank(self, flag: bool) -> bool:
        """True on every rank if it is true on one: ranks whose clocks disagree about a time limit must still stop
        at the same step, or the one that goes on waits forever for the others' gradients."""
        if self.world == 1:
            return flag
        tensor = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return bool(tensor.item())

    def save(self, seconds_since_last: float) -> None:
        self.elapsed += seconds_since_last
        if self.rank == 0:
            meta = {**self.meta, "history": self.history, "elapsed_s": self.elapsed,
                    "samples_seen": self.step * self.train_config.batch_size}
            save_checkpoint(self.run_dir, self.step, self.model, self.ema, self.optimizer, meta)
            self.plot_loss()

    def warm_start(self, weights: Path) -> None:
        """Start a fresh run from the weights of another DAE of the same architecture (a bundle's
        model.safetensors or an export's ema.safetensors); recorded in the run's metadata."""
        from safetensors.torch import load_file

        if self.step > 0:
            raise ValueError(f"{self.run_dir}: run already at step {self.step}; warm start only a fresh run")
        state = {k: v.float() for k, v in load_file(weights).items()}
        self.model.load_state_dict(state)
        self.ema.load_state_dict(state)
        self.meta["warm_start"] = {"file": str(weights), "sha256": sha256_file(weights)}

    def validate(self) -> float:
        """Reconstruction MSE of the EMA model on the fixed validation batch; saves a strip PNG."""
        if self.rank != 0:
            return float("nan")
        images = self.validation.to(self.device, torch.float32)
        steps = self.train_config.validation_steps
        recon = reconstruct(self.ema, images, self.schedule, steps)
        mse = float(torch.mean((recon - images) ** 2))
        reliance = semantic_reliance(self.ema, images, self.schedule)
        self.history.append({"step": self.step, "val_recon_mse": mse, "val_semantic_reliance": reliance})
        save_strip(self.run_dir / "reconstructions.png", images.cpu(), recon.cpu(),
                   f"step {self.step}: EMA reconstruction MSE {mse:.4f} ({steps} DDIM steps), "
                   f"z_sem reliance {reliance:.4f}")
        return mse

    def plot_loss(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        train = [(h["step"], h["loss"]) for h in self.history if "loss" in h]
        val = [(h["step"], h["val_recon_mse"]) for h in self.history if "val_recon_mse" in h]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        if train:
            ax.plot(*zip(*train), label="training loss (noise MSE)")
        if val:
            ax.plot(*zip(*val), "o-", label="validation reconstruction MSE")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        if train or val:
            ax.legend()
        fig.tight_layout()
        fig.savefig(self.run_dir / "loss.png", dpi=100)
        plt.close(fig)

    def export(self, path: Path) -> Path:
        """EMA weights (fp32) and the model config, for the bundle writer."""
        from safetensors.torch import save_file

        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.ema.state_dict().items()},
                  path / "ema.safetensors")
        (path / "model_config.json").write_text(json.dumps(self.model_config.to_dict(), indent=1))
        return path


def save_strip(path: Path, originals: torch.Tensor, reconstructions: torch.Tensor, title: str) -> None:
    """Two rows (originals, reconstructions) of images in [-1, 1], grey or RGB."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from DAECounterfactualLib.cli.strips import show_image

    n = originals.shape[0]
    fig, axes = plt.subplots(2, n, figsize=(1.3 * n, 2.9), squeeze=False)
    for row, batch in enumerate((originals, reconstructions)):
        for col in range(n):
            show_image(axes[row, col], batch[col].numpy(), "")
    fig.suptitle(title, fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
