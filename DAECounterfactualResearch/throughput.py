"""Training throughput against the hardware: FLOPs of one training step per image (counted, not estimated) and the
fraction of a measured matrix-product rate that a measured images/s reaches (issue 24's figure of merit)."""

from __future__ import annotations

import torch

from DAECounterfactualLib.model.config import DAEConfig
from DAECounterfactualLib.model.networks import make_model


def training_flops_per_image(config: DAEConfig, batch: int = 2) -> float:
    """Forward and backward FLOPs of the network (encoder and UNet) per training image, as torch's FlopCounterMode
    counts them (matrix products and convolutions; elementwise work is left out, so this is the matmul floor)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = make_model(config)
    x = torch.zeros(batch, config.in_channels, config.image_size, config.image_size)
    t = torch.full((batch,), 500.0)
    with FlopCounterMode(display=False) as counter:
        model(x, t, x_start=x).float().square().mean().backward()
    return counter.get_total_flops() / batch


def fraction_of_peak(images_per_s: float, flops_per_image: float, peak_tflops: float) -> float:
    """Achieved matmul FLOP rate over the measured peak."""
    return images_per_s * flops_per_image / (peak_tflops * 1e12)


VARIANTS = {  # name -> TrainConfig overrides
    "eager": {},
    "channels_last": {"channels_last": True},
    "compile": {"compile": "default"},
    "compile_channels_last": {"compile": "default", "channels_last": True},
    "cuda_graphs": {"compile": "reduce-overhead"},
    "cuda_graphs_channels_last": {"compile": "reduce-overhead", "channels_last": True},
}
AUTO_VARIANTS = ("eager", "channels_last", "compile", "cuda_graphs")  # what a window times before choosing


def measure_variant(model_config: DAEConfig, train_config, device: str, seconds: float, warmup_steps: int = 5,
                    run_dir=None) -> dict:
    """Images/s of ``Trainer.train_step`` with ``train_config`` on random images of the model's size (the data's
    content does not change the work): ``warmup_steps`` first (compilation, CUDA-graph capture), then steps for
    ``seconds``, timed up to the device's completion of the last one."""
    import tempfile
    import time
    from pathlib import Path

    from .training import Trainer

    count = 4 * train_config.batch_size
    images = torch.rand(count, model_config.in_channels, model_config.image_size, model_config.image_size) * 2 - 1
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Trainer(model_config, train_config, images, Path(run_dir or scratch), device=device)
        start = time.perf_counter()
        for step in range(warmup_steps):
            trainer.train_step(step).item()
        warmup_s = time.perf_counter() - start
        start, steps = time.perf_counter(), 0
        while time.perf_counter() - start < seconds or steps == 0:
            loss = trainer.train_step(warmup_steps + steps)
            steps += 1
        loss.item()  # waits for the device
        elapsed = time.perf_counter() - start
    return {"images_per_s": steps * train_config.batch_size / elapsed, "steps": steps, "warmup_s": warmup_s,
            "loss_finite": bool(torch.isfinite(loss).item())}


def compare_variants(model_config: DAEConfig, train_config, device: str, seconds: float, names: list[str],
                     peak_tflops: float | None = None, budget_s: float | None = None) -> dict:
    """Every variant in ``names`` measured one after another; a variant that fails (no compiler, no CUDA graphs on
    this device) is reported with its error, not raised, so one window measures all the others. Once ``budget_s``
    has passed (compilation can take minutes), the remaining variants are skipped."""
    import time
    from dataclasses import replace

    flops = training_flops_per_image(model_config)
    results, start = {}, time.perf_counter()
    for name in names:
        if budget_s is not None and time.perf_counter() - start > budget_s:
            results[name] = {"error": f"skipped: the {budget_s:g} s budget was spent"}
            continue
        try:
            results[name] = measure_variant(model_config, replace(train_config, **VARIANTS[name]), device, seconds)
        except Exception as error:  # noqa: BLE001 - reported per variant, see docstring
            results[name] = {"error": f"{type(error).__name__}: {error}"[:500]}
            continue
        if peak_tflops:
            results[name]["fraction_of_peak"] = fraction_of_peak(results[name]["images_per_s"], flops, peak_tflops)
    return {"train_gflops_per_image": flops / 1e9, "peak_bf16_tflops": peak_tflops, "batch_size":
            train_config.batch_size, "precision": train_config.precision, "device": device, "variants": results}
