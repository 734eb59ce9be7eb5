"""What one GPU window does (``scripts/gpu_window.py``): check the GPU, train experiments side by side for a fixed
time, and write what a later session needs within the device tool's file limits (at most 8 files of 16 MiB).

Per experiment ``<name>`` (its config's bundle name): ``<name>.safetensors`` (EMA and online weights in half
precision, ``ema.*`` and ``model.*``, metadata: step; split into ``<name>-1.safetensors``, ``-2``... when larger
than one returned file may be; the optimizer state is dropped, so a continued run restarts AdamW's moments with
warm-up), ``<name>.json`` (model and training config, data manifest, loss history, images/s, the call's log tail)
and ``<name>.png`` (the last validation reconstruction strip); ``window.json`` holds the GPU check, wall times and
each experiment's images/s as a fraction of the measured bf16 matrix rate. Every experiment is one
``scripts/train_dae.py`` process, all at once on the one GPU: a small model leaves it mostly idle on its own.
With ``speed="auto"`` the window first times the speed paths of ``throughput.AUTO_VARIANTS`` on the first
experiment's network for a few seconds each (``throughput.json``; at most ``SPEED_BUDGET_S`` in all) and trains
every experiment with the fastest that worked. With ``explain_bench`` ("BUNDLE:TASK") it first benchmarks
explanations on the idle GPU (``explanation_bench``: ``explain_bench.json``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from DAECounterfactualLib.model.config import DAEConfig

from .throughput import AUTO_VARIANTS, VARIANTS, compare_variants, fraction_of_peak, training_flops_per_image

SPEED_BUDGET_S = 240  # at most this long timing speed paths before training (compilation included)
BENCH_PATCHES, BENCH_BATCH = 4096, 1024  # scoring throughput of the explanation bench: patches, encoder batch

TRAIN = Path(__file__).resolve().parents[1] / "scripts" / "train_dae.py"
LOG_TAIL_CHARS = 4000
MAX_FILE_BYTES = 15 * 2**20  # the device tool returns files of at most 16 MiB
MAX_FILES = 8


def matmul_tflops(device: torch.device, size: int = 8192, repeats: int = 10) -> float:
    """bf16 matrix-product rate on random data (the ceiling a training step is compared with)."""
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e12


def gpu_check() -> dict:
    if not torch.cuda.is_available():
        return {"cuda": False, "torch": torch.__version__}
    device = torch.device("cuda")
    props = torch.cuda.get_device_properties(device)
    return {"cuda": True, "torch": torch.__version__, "name": props.name, "memory_gib": props.total_memory / 2**30,
            "multiprocessors": props.multi_processor_count, "bf16_matmul_tflops": matmul_tflops(device)}


def half_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    tensors = load_file(checkpoint)
    return {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()
            if k.startswith(("ema.", "model."))}


def shards(tensors: dict[str, torch.Tensor], max_bytes: int = MAX_FILE_BYTES) -> list[dict[str, torch.Tensor]]:
    """Tensors packed in key order into groups of at most ``max_bytes`` (a larger single tensor gets its own)."""
    groups: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key in sorted(tensors):
        nbytes = tensors[key].numel() * tensors[key].element_size()
        if groups[-1] and size + nbytes > max_bytes:
            groups.append({})
            size = 0
        groups[-1][key] = tensors[key]
        size += nbytes
    return groups


def save_weights(tensors: dict[str, torch.Tensor], out: Path, name: str, metadata: dict[str, str]) -> list[Path]:
    """``<name>.safetensors``, or numbered shards of it when it would exceed one returned file."""
    groups = shards(tensors)
    paths = [out / f"{name}.safetensors"] if len(groups) == 1 else \
        [out / f"{name}-{k + 1}.safetensors" for k in range(len(groups))]
    for path, group in zip(paths, groups):
        save_file(group, path, metadata={**metadata, "shards": str(len(groups))})
    return paths


def collect(name: str, run_dir: Path, log: Path, out: Path, peak_tflops: float | None = None) -> dict:
    """Write one experiment's three files; return its summary line for window.json."""
    meta_path = run_dir / "checkpoint.json"
    if not meta_path.exists():
        return {"name": name, "error": "no checkpoint written", "log_tail": log.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL_CHARS:]}
    meta = json.loads(meta_path.read_text())
    call = json.loads((run_dir / "last_call.json").read_text()) if (run_dir / "last_call.json").exists() else {}
    save_weights(half_weights(run_dir / "checkpoint.safetensors"), out, name,
                 {"step": str(meta["step"]), "precision": "fp16"})
    meta.pop("param_groups", None)
    record = {**meta, "last_call": call, "log_tail": log.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL_CHARS:]}
    (out / f"{name}.json").write_text(json.dumps(record, indent=1))
    strip = run_dir / "reconstructions.png"
    if strip.exists():
        (out / f"{name}.png").write_bytes(strip.read_bytes())
    flops = training_flops_per_image(DAEConfig.from_dict(meta["model_config"]))
    speed = {"train_gflops_per_image": flops / 1e9}
    if peak_tflops and call.get("images_per_s"):
        speed["fraction_of_bf16_peak"] = fraction_of_peak(call["images_per_s"], flops, peak_tflops)
    return {"name": name, "step": meta["step"], "samples_seen": meta.get("samples_seen"), **call, **speed}


def speed_flags(variant: str) -> list[str]:
    """train_dae.py's options for a speed path of ``throughput.VARIANTS``."""
    overrides = VARIANTS[variant]
    return (["--compile", overrides["compile"]] if "compile" in overrides else []) + \
        (["--channels-last"] if overrides.get("channels_last") else [])


def fastest_variant(configs: list[Path], out: Path, device: str, seconds: float, peak: float | None) -> str:
    """Time every speed path on the first experiment's network; the fastest that trained with a finite loss."""
    from .experiment import load_experiment
    from .training import TrainConfig

    experiment = load_experiment(configs[0])
    report = compare_variants(DAEConfig.from_dict(experiment.model), TrainConfig(**experiment.train), device,
                              seconds, list(AUTO_VARIANTS), peak, budget_s=SPEED_BUDGET_S)
    working = {name: r["images_per_s"] for name, r in report["variants"].items() if r.get("loss_finite")}
    report["chosen"] = max(working, key=working.get) if working else "eager"
    (out / "throughput.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({"throughput": {k: v.get("images_per_s", v.get("error")) for k, v in report["variants"].items()},
                      "chosen": report["chosen"]}), flush=True)
    return report["chosen"]


def explanation_bench(bundle_task: str, patches_file: Path | None, device: str, out: Path) -> dict:
    """``daecf bench`` of a shipped bundle on the window's device (explanation seconds per preset, scoring
    throughput, determinism run to run and against the CPU) into ``explain_bench.json``. The device has no sample
    CT: pass patches saved here with ``daecf bench --save-patches``. A failure is recorded, not raised: the
    training after it must run all the same."""
    from DAECounterfactualLib.bundle.registry import resolve_bundle
    from DAECounterfactualLib.bundle.store import load_bundle
    from DAECounterfactualLib.cli.bench import bench_patches, format_table, run_benchmark
    from DAECounterfactualLib.inference.explainer import Explainer

    bundle, _, task = bundle_task.partition(":")
    try:
        explainer = Explainer(load_bundle(resolve_bundle(bundle)), device, batch_size=BENCH_BATCH)
        patches = bench_patches(explainer.config, BENCH_PATCHES, patches_file)
        presets = tuple(p for p in ("fast", "standard", "reference") if p in explainer.config.presets)
        report = run_benchmark(explainer, task, patches, presets)
        report["table"] = format_table(report)
    except Exception as exc:  # noqa: BLE001 - any failure of the bench is reported in its file, never fatal
        report = {"bundle": bundle, "task": task, "error": f"{type(exc).__name__}: {exc}"}
    (out / "explain_bench.json").write_text(json.dumps(report, indent=1))
    print(report.get("table", report.get("error")), flush=True)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # leave the memory to the training processes
    return {k: report[k] for k in ("bundle", "task", "error") if k in report}


def run_window(configs: list[Path], out: Path, minutes: float, data_root: Path, runs: Path, device: str,
               total_samples: int | None = None, speed: str = "eager", speed_seconds: float = 15.0,
               explain_bench: str | None = None, bench_patches: Path | None = None) -> dict:
    """Train every experiment for ``minutes`` side by side, then collect each one's files; returns window.json.
    ``speed``: a speed path of ``throughput.VARIANTS`` for every experiment, or "auto" to time them first;
    ``explain_bench``: "BUNDLE:TASK" to benchmark explanations first (``explanation_bench``)."""
    start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    window = {"gpu": gpu_check(), "minutes": minutes, "experiments": []}
    print(json.dumps(window["gpu"]), flush=True)
    if explain_bench:
        window["explain_bench"] = explanation_bench(explain_bench, bench_patches, device, out)
    peak = window["gpu"].get("bf16_matmul_tflops")
    if speed == "auto":
        speed = fastest_variant(configs, out, device, speed_seconds, peak)
    window["speed"] = speed
    jobs = []
    for config in configs:
        name = json.loads(config.read_text())["bundle"]["name"]
        run_dir, log = runs / name, runs / f"{name}.log"
        run_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, str(TRAIN), str(config), "--data-root", str(data_root), "--run-dir",
                   str(run_dir), "--max-minutes", str(minutes), "--device", device]
        if total_samples:
            command += ["--total-samples", str(total_samples)]
        command += speed_flags(speed)
        handle = log.open("w", encoding="utf-8")
        jobs.append((name, run_dir, log, handle, subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})))
    for name, run_dir, log, handle, process in jobs:
        returncode = process.wait()
        handle.close()
        summary = collect(name, run_dir, log, out, peak)
        window["experiments"].append({**summary, "returncode": returncode})
        print(json.dumps({k: v for k, v in summary.items() if k != "log_tail"}), flush=True)
    window["wall_s"] = time.time() - start
    (out / "window.json").write_text(json.dumps(window, indent=1))
    written = sorted(p.name for p in out.iterdir())
    if len(written) > MAX_FILES:
        print(f"warning: {len(written)} files in {out}; the device tool returns {MAX_FILES}: {written}", flush=True)
    return window
