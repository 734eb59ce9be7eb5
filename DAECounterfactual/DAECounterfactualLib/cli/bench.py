"""Speed and quality of explanations per step preset, measured on real patches: `daecf bench`.

For each preset the whole explanation (inversion, then reconstruction + one counterfactual per grade + the
reflection) is timed from a cold x_T cache; the reference preset decodes every latent on its own as the paper's
code does. Beside the times: UNet calls, peak resident memory, reconstruction MSE/SSIM against the input, and
how often a counterfactual re-encodes to its target grade, so speed is never bought with silent quality loss.
A floor is estimated from the FLOPs of one UNet call and this machine's measured matrix-multiply rate, and the
determinism of an explanation is measured on the device (twice, and against the CPU off the CPU).
Patches can be saved and loaded as .npz, to bench a machine without the sample CT (a GPU box).
"""

from __future__ import annotations

import platform
import resource
import statistics
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..bundle.store import load_bundle
from ..errors import InputError
from ..inference.metrics import mse, ssim
from ..inference.explainer import Explainer, check_images


def peak_rss_mb() -> float:
    """High-water mark of resident memory (VmHWM; resettable on Linux, see reset_peak_rss)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux: the peak then covers the whole process


@contextmanager
def counting_unet_calls(model):
    """Counts UNet forward calls and the images they processed (batch sizes summed)."""
    counts = {"calls": 0, "images": 0}
    original = model.unet.forward

    def counted(x, *args, **kwargs):
        counts["calls"] += 1
        counts["images"] += x.shape[0]
        return original(x, *args, **kwargs)

    model.unet.forward = counted
    try:
        yield counts
    finally:
        del model.unet.forward


def unet_flops_per_image(model) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    c, device = model.config, next(model.parameters()).device
    x = torch.zeros(1, c.in_channels, c.image_size, c.image_size, device=device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.unet(x, torch.tensor([500.0], device=device), torch.zeros(1, c.z_dim, device=device))
    return float(counter.get_total_flops())


def matmul_gflops(size: int = 1024, repeats: int = 5, device: str | torch.device = "cpu") -> float:
    """fp32 matrix-multiply rate on ``device`` (a GPU gets a larger product, and is synchronised around each)."""
    device = torch.device(device)
    size = size if device.type == "cpu" else max(size, 8192)
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)

    def product() -> None:
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    product()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        product()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times) / 1e9


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Seconds of each of ``repeats`` calls after one warm-up call, and the last result."""
    fn()  # warm-up
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def encoder_throughput(explainer: Explainer, patches: np.ndarray, repeats: int) -> dict[str, float]:
    times, _ = timed(lambda: explainer.encode(patches), repeats)
    return {"vertebrae_per_s": len(patches) / statistics.median(times), "images": len(patches),
            "batch": min(explainer.batch_size, len(patches))}


def bench_preset(explainer: Explainer, task: str, patches: np.ndarray, preset: str, repeats: int) -> dict[str, Any]:
    batched = preset != "reference"

    def explain_cold(image):
        explainer.forget_inversions()
        return explainer.explain(image, task, preset=preset, sweep_count=0, batched=batched)

    reset_peak_rss()
    with counting_unet_calls(explainer.model) as counts:
        explain_cold(patches[0])
    calls, images = counts["calls"], counts["images"]
    times, _ = timed(lambda: explain_cold(patches[0]), repeats)
    quality, quality_seconds = [], []
    for patch in patches:  # each once, cold: the mean prices in the patches inverted again
        start = time.perf_counter()
        quality.append(explain_cold(patch))
        quality_seconds.append(time.perf_counter() - start)
    return {
        "seconds_median": statistics.median(times), "seconds_min": min(times), "seconds_max": max(times),
        "unet_calls": calls, "unet_images": images, "peak_rss_mb": peak_rss_mb(),
        "recon_mse": float(np.mean([mse(e.reconstruction, p) for e, p in zip(quality, patches)])),
        "recon_ssim": float(np.mean([ssim(e.reconstruction, p) for e, p in zip(quality, patches)])),
        "cf_grade_agreement": float(np.mean([1 - len(e.unreached) / len(e.grade_names) for e in quality])),
        "grades": [int(e.grades.grade[0]) for e in quality],
        # inverted again at twice the steps (a step missed its tolerance), and still not retraced after that
        "redone": sum(e.preset != explainer.preset(preset) for e in quality),
        "not_retraced": sum(not e.retraced for e in quality),
        "quality_seconds_mean": float(np.mean(quality_seconds)), "quality_patches": len(quality),
        "steps": vars(explainer.preset(preset)).copy(),
    }


def determinism(explainer: Explainer, task: str, patch: np.ndarray, preset: str) -> dict[str, Any]:
    """Largest absolute difference between two cold explanations of one patch on the explainer's device and, off
    the CPU, between it and the CPU's explanation (a freshly loaded bundle: an Explainer moves its model)."""
    def decoded(ex: Explainer) -> np.ndarray:
        ex.forget_inversions()
        e = ex.explain(patch, task, preset=preset, sweep_count=0)
        return np.concatenate([e.reconstruction[None], e.counterfactuals, e.reflection[None]])

    first, second = decoded(explainer), decoded(explainer)
    result = {"preset": preset, "repeat_max_abs": float(np.abs(first - second).max()), "cpu_max_abs": None}
    if explainer.device.type != "cpu":
        result["cpu_max_abs"] = float(np.abs(first - decoded(Explainer(load_bundle(explainer.bundle.path)))).max())
    return result


def run_benchmark(explainer: Explainer, task: str, patches: np.ndarray, presets: tuple[str, ...] =
                  ("fast", "standard", "reference"), repeats: int = 3, quality_patches: int = 3) -> dict[str, Any]:
    """``patches``: model-range (N, C, H, W); all are used for the encoder, the first few for explanations."""
    flops = unet_flops_per_image(explainer.model)
    rate = matmul_gflops(device=explainer.device)
    results = {name: bench_preset(explainer, task, patches[:quality_patches], name, repeats) for name in presets}
    reference = results.get("reference")
    for r in results.values():
        r["speedup_vs_reference"] = reference["seconds_median"] / r["seconds_median"] if reference else None
        r["floor_seconds"] = r["unet_images"] * flops / (rate * 1e9)
        r["floor_fraction"] = r["floor_seconds"] / r["seconds_median"]
    return {
        "bundle": explainer.bundle.bundle_id, "task": task, "presets": results,
        "encoder": encoder_throughput(explainer, patches, repeats),
        "determinism": determinism(explainer, task, patches[0], presets[0]),
        "machine": {"processor": _processor(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "device": str(explainer.device),
                    "matmul_fp32_gflops": rate, "unet_gflop_per_image": flops / 1e9, "python": platform.python_version()},
    }


def _processor() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def preset_label(steps: dict[str, Any]) -> str:
    """'10×≤13/10 quadratic tol 0.002 AA2': inversion steps × at most (1 + refinements) calls / decoding steps,
    then the spacing, the tolerance and the Anderson memory where they are set."""
    label = f"{steps['invert']}×{'≤' if steps.get('refine_tol') else ''}{1 + steps['refine']}/{steps['decode']}"
    if steps.get("spacing", "uniform") != "uniform":
        label += f" {steps['spacing']}"
    label += f" tol {steps['refine_tol']:g}" if steps.get("refine_tol") else ""
    return label + (f" AA{steps['anderson']}" if steps.get("anderson") else "")


def format_table(report: dict[str, Any]) -> str:
    header = ("preset", "steps inv×(1+refine)/dec", "median s", "min s", "max s", "UNet calls", "peak RSS MB", "recon MSE",
              "SSIM", "CF agree", "redone", "speed-up", "of floor")
    rows = [header]
    for name, r in report["presets"].items():
        speedup = f"{r['speedup_vs_reference']:.1f}×" if r["speedup_vs_reference"] else "-"
        steps = r["steps"]
        rows.append((name, preset_label(steps), f"{r['seconds_median']:.2f}",
                     f"{r['seconds_min']:.2f}", f"{r['seconds_max']:.2f}", str(r["unet_calls"]),
                     f"{r['peak_rss_mb']:.0f}", f"{r['recon_mse']:.4f}", f"{r['recon_ssim']:.3f}",
                     f"{r['cf_grade_agreement']:.2f}", f"{r['redone']}/{r['quality_patches']}", speedup,
                     f"{100 * r['floor_fraction']:.0f}%"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    m, e = report["machine"], report["encoder"]
    d = report["determinism"]
    versus_cpu = "" if d["cpu_max_abs"] is None else f", against the CPU {d['cpu_max_abs']:.1e}"
    lines += ["", f"encoder: {e['vertebrae_per_s']:.1f} vertebrae/s ({e.get('images', e['batch'])} patches, "
                  f"batch {e['batch']})",
              f"determinism ({d['preset']}): largest |difference| between two runs {d['repeat_max_abs']:.1e}"
              f"{versus_cpu}",
              f"machine: {m['processor']}, {m['torch_threads']} threads, torch {m['torch']}, {m['device']}; "
              f"matmul {m['matmul_fp32_gflops']:.1f} GFLOP/s fp32; one UNet call {m['unet_gflop_per_image']:.2f} "
              f"GFLOP per image"]
    return "\n".join(lines)


def sample_ct_patches(config, count: int = 64) -> np.ndarray:
    """Model inputs cut from the sample CT around its labelled vertebrae's bodies, shifted by a few mm to get
    ``count``."""
    from ..io.sampledata import sample_files
    from ..inference.patches import model_input, volume_value_range
    from ..inference.spine_axis import patch_tilts
    from ..io.volumes import positions_from_mask, read_volume

    files = sample_files("spine-ct")
    volume = read_volume(files["image"])
    positions = positions_from_mask(read_volume(files["vertebra_mask"]))
    centres, tilts = [p.ras for p in positions], patch_tilts(config, positions)
    value_range = volume_value_range(config, volume)
    shifts = np.random.default_rng(0).uniform(-4, 4, (count, 3))
    patches = [model_input(config, volume, centres[i % len(centres)] + shifts[i], value_range,
                           tilts[i % len(centres)])[1] for i in range(count)]
    patches[:len(centres)] = [model_input(config, volume, c, value_range, t)[1] for c, t in zip(centres, tilts)]
    return np.stack(patches)


def bench_patches(config, count: int, patches_file: str | Path | None = None) -> np.ndarray:
    """``count`` patches from a file of ``save_patches``, or cut from the sample CT when there is none."""
    return load_patches(patches_file, config, count) if patches_file else sample_ct_patches(config, count)


def save_patches(path: str | Path, patches: np.ndarray) -> None:
    """Patches as a compressed .npz (key ``images``, float16: model-range values need no more), to bench them on a
    machine without the sample CT."""
    np.savez_compressed(path, images=np.asarray(patches, dtype=np.float16))


def load_patches(path: str | Path, config, count: int) -> np.ndarray:
    """``count`` patches of a file written by ``save_patches``, cycling through it when it holds fewer."""
    try:
        with np.load(path, allow_pickle=False) as data:
            images = data["images"]
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: not a patches file of `daecf bench --save-patches` ({exc})") from None
    images = check_images(images, config.model.image_size, config.model.in_channels)
    if not len(images):
        raise InputError(f"{path}: holds no patches")
    return images[np.arange(count) % len(images)]
