"""What one GPU window does (``scripts/gpu_window.py``): check the GPU, train experiments side by side for a fixed
time, and write what a later session needs within the device tool's file limits (at most 8 files of 16 MiB).

``window.json`` holds everything but weights and pictures, and is rewritten after every phase, so a window cut short
still returns what it finished: the GPU check, the explanation bench (``explanation_bench``), the timed speed paths
(``fastest_variant``), and per experiment its run record (model and training config, data manifest, loss history,
images/s as a fraction of the measured bf16 matrix rate, the call's log tail). Per experiment ``<name>``, its
config's bundle name: ``<name>.safetensors`` (EMA and online weights in half precision, ``ema.*`` and ``model.*``;
split into ``<name>-1.safetensors``, ``-2``... when larger than one returned file may be) and ``<name>.png`` (the
last validation reconstruction strip). ``window_files`` counts these before anything runs and refuses a window
whose files would not all come back. Back on the development machine ``restore_run`` turns them into a run folder
that ``make_bundle.py --run-dir`` bundles and a later window resumes (with a fresh optimizer: the moments are not
returned; ``checkpoint.load_checkpoint``). Every experiment is one ``scripts/train_dae.py`` process, all at once on
the one GPU: a small model leaves it mostly idle on its own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.io.files import atomic_write
from DAECounterfactualLib.model.config import DAEConfig
from DAECounterfactualLib.model.networks import make_model

from .checkpoint import META, TENSORS, write_checkpoint
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


def shards(tensors: dict[str, torch.Tensor], max_bytes: int | None = None) -> list[dict[str, torch.Tensor]]:
    """Tensors packed in key order into groups of at most ``max_bytes`` (default: one returned file; a larger
    single tensor gets its own)."""
    max_bytes = max_bytes or MAX_FILE_BYTES
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


def weight_files(model: dict) -> int:
    """How many returned files the fp16 weights (EMA and online) of an experiment's model take: its state packed
    as ``half_weights`` and ``shards`` will pack it (shapes only, no memory)."""
    state = make_model(DAEConfig.from_dict(model)).state_dict()
    halves = {f"{copy}.{key}": torch.empty(value.shape, device="meta",
                                           dtype=torch.float16 if value.is_floating_point() else value.dtype)
              for copy in ("ema", "model") for key, value in state.items()}
    return len(shards(halves))


def window_files(configs: list[Path]) -> int:
    """Files a window of these experiments returns: window.json, and per experiment its weights and strip. Refuses
    (InputError) a window whose files would not all come back, before any GPU time is spent."""
    experiments = [json.loads(c.read_text(encoding="utf-8")) for c in configs]
    names = [e["bundle"]["name"] for e in experiments]
    if len(set(names)) != len(names):
        raise InputError(f"two experiments share a bundle name ({names}): their files would overwrite each other")
    files = 1 + sum(weight_files(e["model"]) + 1 for e in experiments)
    if files > MAX_FILES:
        raise InputError(f"{len(configs)} experiments return {files} files (weights, strips, window.json); the device "
                         f"tool returns {MAX_FILES}: run fewer experiments per window")
    return files


def collect(name: str, run_dir: Path, log: Path, out: Path, peak_tflops: float | None = None) -> dict:
    """Write one experiment's weights and strip; return its entry of window.json (its run record included)."""
    meta_path = run_dir / META
    log_tail = log.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL_CHARS:]
    if not meta_path.exists():
        return {"name": name, "error": "no checkpoint written", "log_tail": log_tail}
    meta = json.loads(meta_path.read_text())
    call = json.loads((run_dir / "last_call.json").read_text()) if (run_dir / "last_call.json").exists() else {}
    save_weights(half_weights(run_dir / TENSORS), out, name,
                 {"step": str(meta["step"]), "precision": "fp16"})
    meta.pop("param_groups", None)
    strip = run_dir / "reconstructions.png"
    if strip.exists():
        (out / f"{name}.png").write_bytes(strip.read_bytes())
    flops = training_flops_per_image(DAEConfig.from_dict(meta["model_config"]))
    speed = {"train_gflops_per_image": flops / 1e9}
    if peak_tflops and call.get("images_per_s"):
        speed["fraction_of_bf16_peak"] = fraction_of_peak(call["images_per_s"], flops, peak_tflops)
    return {"name": name, "step": meta["step"], "samples_seen": meta.get("samples_seen"), **call, **speed,
            "record": {**meta, "last_call": call}, "log_tail": log_tail}


def restore_run(files: Path, name: str, runs: Path) -> Path:
    """The run folder ``runs/<name>`` rebuilt from a window's returned files (``files``: window.json, the weights
    and their shards): the checkpoint pair of ``checkpoint.py`` in fp32, without optimizer tensors."""
    window = json.loads((files / "window.json").read_text(encoding="utf-8"))
    entry = next((e for e in window["experiments"] if e["name"] == name), None)
    if entry is None or "record" not in entry:
        known = [e["name"] for e in window["experiments"] if "record" in e]
        raise InputError(f"{files / 'window.json'}: no trained experiment {name!r} (trained: {known})")
    shard = re.compile(rf"{re.escape(name)}-\d+\.safetensors")  # not another experiment named "<name>-..."
    paths = sorted(p for p in files.iterdir() if shard.fullmatch(p.name)) or [files / f"{name}.safetensors"]
    if not paths[0].exists():
        raise InputError(f"{paths[0]}: the weights of {name!r} did not come back")
    tensors = {}
    for path in paths:
        tensors |= {k: v.float() for k, v in load_file(path).items()}
    write_checkpoint(runs / name, entry["record"]["step"], tensors, entry["record"])
    return runs / name


def speed_flags(variant: str) -> list[str]:
    """train_dae.py's options for a speed path of ``throughput.VARIANTS``."""
    overrides = VARIANTS[variant]
    return (["--compile", overrides["compile"]] if "compile" in overrides else []) + \
        (["--channels-last"] if overrides.get("channels_last") else [])


def fastest_variant(configs: list[Path], device: str, seconds: float, peak: float | None) -> dict:
    """Time every speed path on the first experiment's network; the report's ``chosen`` is the fastest that
    trained with a finite loss."""
    from .experiment import load_experiment
    from .training import TrainConfig

    experiment = load_experiment(configs[0])
    report = compare_variants(DAEConfig.from_dict(experiment.model), TrainConfig(**experiment.train), device,
                              seconds, list(AUTO_VARIANTS), peak, budget_s=SPEED_BUDGET_S)
    working = {name: r["images_per_s"] for name, r in report["variants"].items() if r.get("loss_finite")}
    report["chosen"] = max(working, key=working.get) if working else "eager"
    print(json.dumps({"throughput": {k: v.get("images_per_s", v.get("error")) for k, v in report["variants"].items()},
                      "chosen": report["chosen"]}), flush=True)
    return report


def explanation_bench(bundle_task: str, patches_file: Path | None, device: str) -> dict:
    """``daecf bench`` of a shipped bundle on the window's device (explanation seconds per preset, scoring
    throughput, determinism run to run and against the CPU), for window.json. The device has no sample
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
    print(report.get("table", report.get("error")), flush=True)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # leave the memory to the training processes
    return report


def write_window(out: Path, window: dict) -> None:
    """window.json as it stands: rewritten after every phase, so a window cut short returns what it finished."""
    atomic_write(out / "window.json", lambda tmp: Path(tmp).write_text(json.dumps(window, indent=1)))


def run_window(configs: list[Path], out: Path, minutes: float, data_root: Path, runs: Path, device: str,
               total_samples: int | None = None, speed: str = "eager", speed_seconds: float = 15.0,
               explain_bench: str | None = None, bench_patches: Path | None = None) -> dict:
    """Train every experiment for ``minutes`` side by side, then collect each one's files; returns window.json.
    ``speed``: a speed path of ``throughput.VARIANTS`` for every experiment, or "auto" to time them first;
    ``explain_bench``: "BUNDLE:TASK" to benchmark explanations first (``explanation_bench``)."""
    start = time.time()
    files = window_files(configs)
    out.mkdir(parents=True, exist_ok=True)
    window = {"gpu": gpu_check(), "minutes": minutes, "files": files, "experiments": []}
    print(json.dumps(window["gpu"]), flush=True)
    write_window(out, window)
    if explain_bench:
        window["explain_bench"] = explanation_bench(explain_bench, bench_patches, device)
        write_window(out, window)
    peak = window["gpu"].get("bf16_matmul_tflops")
    if speed == "auto":
        window["throughput"] = fastest_variant(configs, device, speed_seconds, peak)
        speed = window["throughput"]["chosen"]
    window["speed"] = speed
    write_window(out, window)
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
        write_window(out, window)
        print(json.dumps({k: v for k, v in summary.items() if k not in ("log_tail", "record")}), flush=True)
    window["wall_s"] = time.time() - start
    write_window(out, window)
    return window
