"""How fast ``daecf score-cohort`` scores a phantom cohort with 1, 2, ... worker processes: cases/s and vertebrae/s.

Each run is the whole command as a user starts it (Python, torch, the model loaded once per worker, every case read
from disk and written to the CSV), timed from outside; the median of the repeats is reported. A setting '1x1' runs one worker with
OMP_NUM_THREADS=1 (on a shared machine torch's default of one thread per core can stall on a core that another
program holds; the workers of '2' take cores / 2 threads each). The CSVs of the different settings are checked to hold the same grades, so speed is never bought with other results. Where
one case's time goes is timed in this process on the first cases (reading the image; reading the mask and taking
its centroids; cutting and grading the patches), medians per case.
"""

from __future__ import annotations

import csv
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .phantom_cohort import export_phantom_cohort


def _score_command(study: Path, out: Path, bundle: str, task: str, workers: int, device: str) -> list[str]:
    return [sys.executable, "-m", "DAECounterfactualLib.cli.commands", "score-cohort", "--bundle", bundle,
            "--task", task, "--out", str(out), "--workers", str(workers), "--device", device, "--no-progress",
            str(study)]


def _grades(path: Path) -> list[tuple[str, str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [(row["case"], row["id"], row["grade"]) for row in csv.DictReader(handle)]


def stage_seconds(study: Path, bundle: str, task: str, cases: int = 24) -> dict[str, float]:
    """Median seconds per case of each stage of scoring one case (the cohort's cases have masks)."""
    from DAECounterfactualLib.bundle.registry import resolve_bundle
    from DAECounterfactualLib.bundle.store import load_bundle
    from DAECounterfactualLib.inference.explainer import Explainer
    from DAECounterfactualLib.inference.scores import iter_volume_rows
    from DAECounterfactualLib.io.cohort import find_cases
    from DAECounterfactualLib.io.volumes import positions_from_mask, read_volume

    explainer = Explainer(load_bundle(resolve_bundle(bundle)))
    times: dict[str, list[float]] = {"read image": [], "read mask, centroids": [], "cut and grade": []}
    for case in find_cases(study)[:cases]:
        start = time.perf_counter()
        volume = read_volume(case.image)
        read = time.perf_counter()
        positions = positions_from_mask(read_volume(case.positions))
        located = time.perf_counter()
        list(iter_volume_rows(explainer, volume, positions, task))
        times["read image"].append(read - start)
        times["read mask, centroids"].append(located - read)
        times["cut and grade"].append(time.perf_counter() - located)
    return {stage: statistics.median(values) for stage, values in times.items()}


def parse_setting(text: str) -> tuple[int, int | None]:
    """'2' -> 2 workers; '1x1' -> 1 worker with OMP_NUM_THREADS=1 (threads per process; default: torch's)."""
    workers, _, threads = text.partition("x")
    return int(workers), int(threads) if threads else None


def run_cohort_benchmark(folder: Path, bundle: str, task: str, cases: int, settings: tuple[str, ...] = ("1", "2"),
                         repeats: int = 3, device: str = "cpu") -> dict[str, Any]:
    """Every setting once per repeat, interleaved, so a change of the machine's load touches all of them alike."""
    study = folder / "study"
    if not study.is_dir():
        export_phantom_cohort(study, cases, seed=100)
    seconds: dict[str, list[float]] = {setting: [] for setting in settings}
    for repeat in range(repeats):
        for setting in settings:
            workers, threads = parse_setting(setting)
            env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
            start = time.perf_counter()
            subprocess.run(_score_command(study, folder / f"scores-{setting}.csv", bundle, task, workers, device),
                           check=True, capture_output=True, env=env)
            seconds[setting].append(time.perf_counter() - start)
    reference, results = _grades(folder / f"scores-{settings[0]}.csv"), {}
    for setting, times in seconds.items():
        grades = _grades(folder / f"scores-{setting}.csv")
        median = statistics.median(times)
        results[setting] = {"seconds": times, "seconds_median": median, "cases_per_s": cases / median,
                            "vertebrae_per_s": len(grades) / median, "vertebrae": len(grades),
                            "same_grades_as_first": grades == reference}
    return {"bundle": bundle, "task": task, "cases": cases, "device": device, "settings": results,
            "stage_seconds_per_case": stage_seconds(study, bundle, task),
            "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                        "load_average_after": os.getloadavg(), "python": platform.python_version()}}


def format_table(report: dict[str, Any]) -> str:
    runs = len(next(iter(report["settings"].values()))["seconds"])
    lines = [f"{report['cases']} phantom cases, {report['bundle']} task {report['task']} on {report['device']}, "
             f"{report['machine']['cpus']} CPUs; the whole command, median of {runs} runs (load average after: "
             f"{', '.join(f'{v:.1f}' for v in report['machine']['load_average_after'])})", "",
             "| workers | seconds (median) | runs (s) | cases/s | vertebrae/s | same grades |",
             "| --- | --- | --- | --- | --- | --- |"]
    for setting, r in report["settings"].items():
        workers, threads = parse_setting(setting)
        label = f"{workers}" + (f", OMP_NUM_THREADS={threads}" if threads else "")
        lines.append(f"| {label} | {r['seconds_median']:.1f} | {', '.join(f'{s:.1f}' for s in r['seconds'])} | "
                     f"{r['cases_per_s']:.2f} | {r['vertebrae_per_s']:.1f} | "
                     f"{'yes' if r['same_grades_as_first'] else 'NO'} |")
    stages = report["stage_seconds_per_case"]
    lines += ["", "one case in one process (median): " + ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in stages.items())]
    return "\n".join(lines)
