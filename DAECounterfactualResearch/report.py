"""Plots and the docs/RESULTS.md report written from the evaluation's results.json files.

Numbers in the report are read from results.json, never typed; the paper's numbers are quoted for comparison
with their table and dataset.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from DAECounterfactualLib.cli.bench import preset_label
from DAECounterfactualLib.cli.strips import save_strip

from .bootstrap import RESAMPLES

# (task, metric) -> the paper's figure: Table 3 (VerSe VCF, 96 px) and Table 4 (RetinaMNIST at 128 px; SPIDER discs)
PAPER = {
    "pfirrmann": {"table": "Table 4 (SPIDER lumbar MRI, Pfirrmann 1-5)",
                  "DAE+SVM": {"auc": 0.67, "mae": 0.89, "macro_f1": 0.25},
                  "DAE+LR": {"auc": 0.65, "mae": 0.87, "macro_f1": 0.33},
                  "DenseNet121": {"auc": 0.64, "mae": 0.83, "macro_f1": 0.30}},
    "genant": {"table": "Table 3 (VerSe'19 VCF, real fractures, 96 px at 1 mm)",
               "DAE+SVM": {"auc": 0.93, "macro_f1": 0.59}, "DenseNet121": {"auc": 0.98, "macro_f1": 0.65}},
    "dr": {"table": "Table 4 (RetinaMNIST at 128 px)",
           "DAE+SVM": {"auc": 0.83, "mae": 0.72, "macro_f1": 0.31}, "DenseNet121": {"auc": 0.81, "mae": 0.75}},
}
# (bundle, task) -> the project's targets; other bundles are reported without targets
TARGETS = {
    ("vcf-ct", "genant"): {"auc": (">=", 0.93), "macro_f1": (">=", 0.59), "validity": (">=", 0.90),
                           "faithfulness": (">=", 0.80)},
    ("dr-retina", "dr"): {"auc": (">=", 0.83), "mae": ("<=", 0.72)},
    ("disc-mri", "pfirrmann"): {"auc": (">=", 0.70), "mae": ("<=", 0.85), "macro_f1": (">=", 0.30),
                                "validity": (">=", 0.80)},
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(path: Path, entry: dict[str, Any]) -> None:
    from sklearn.metrics import auc

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4))
    curves = [("DAE + " + entry["shipped"]["probe"], entry["shipped"]["roc"])]
    if "baseline" in entry:
        curves.append(("DenseNet121", entry["baseline"]["roc"]))
    for name, roc in curves:
        ax.plot(roc["fpr"], roc["tpr"], label=f"{name} (AUC {auc(roc['fpr'], roc['tpr']):.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_calibration(path: Path, entry: dict[str, Any]) -> None:
    plt = _pyplot()
    distance = np.array(entry["shipped"]["distance"])
    grades = np.array(entry["shipped"]["grades"])
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(grades))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.scatter(distance, grades + jitter, s=6, alpha=0.4, label="held-out images")
    line = np.linspace(distance.min(), distance.max(), 100)
    ax.plot(line, np.polynomial.Polynomial(entry["shipped"]["calibration_coefficients"])(line), color="tab:red",
            label=f"calibration ({entry['shipped']['calibration']})")
    ax.set_yticks(range(len(entry["grade_names"])), entry["grade_names"])
    ax.set_xlabel("signed distance to the hyperplane")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_tsne(path: Path, z: np.ndarray, colourings: dict[str, np.ndarray], seed: int = 0) -> None:
    """t-SNE of z_sem, one panel per colouring (grade, vertebra level, ...)."""
    from sklearn.manifold import TSNE

    plt = _pyplot()
    z = (z - z.mean(0)) / np.where(z.std(0) > 1e-8, z.std(0), 1.0)
    embedded = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30, len(z) - 1)).fit_transform(z)
    fig, axes = plt.subplots(1, len(colourings), figsize=(4.2 * len(colourings), 4), squeeze=False)
    for ax, (name, values) in zip(axes[0], colourings.items()):
        for value in sorted(set(values.tolist())):
            keep = values == value
            ax.scatter(*embedded[keep].T, s=5, alpha=0.6, label=str(value))
        ax.set_title(f"t-SNE of z_sem by {name}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=6, markerscale=2, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def strip_cases(cases: list[dict[str, Any]], count: int = 2) -> list[tuple[int, str]]:
    """A few cases whose counterfactuals all landed on their targets and a few failures, by case index."""
    hits = [k for k, c in enumerate(cases) if c["cf_grades"] == list(range(len(c["cf_grades"])))]
    misses = [k for k, c in enumerate(cases) if k not in hits]
    return [(k, "all counterfactuals valid") for k in hits[:count]] + [(k, "failure") for k in misses[:count]]


def write_plots(out: Path, task: str, entry: dict[str, Any], z: np.ndarray, data, explanations: list,
                picks: np.ndarray, grades: np.ndarray) -> None:
    """ROC, calibration, t-SNE and counterfactual strips of one task; ``grades`` are the task's own labels of
    ``data`` (several tasks can share one set of images); ``explanations`` are those of the counterfactual checks,
    one per pick."""
    plot_roc(out / f"{task}_roc.png", entry)
    plot_calibration(out / f"{task}_calibration.png", entry)
    known = grades >= 0
    colourings = {"grade": grades[known]}
    if "level" in data.extra:
        colourings["vertebra level"] = data.extra["level"][known]
    plot_tsne(out / f"{task}_tsne.png", z[known], colourings)
    for stale in out.glob(f"{task}_strip_*.png"):  # an earlier run's strips would be linked from the report
        stale.unlink()
    for k, why in strip_cases(entry["counterfactuals"]["cases"]):
        index = int(picks[k])
        save_strip(out / f"{task}_strip_{k:03d}.png", data.images[index].astype(np.float32), explanations[k],
                   f"case {index} (true grade {entry['grade_names'][int(grades[index])]}), {why}")


# ------------------------------------------------------------------------------------------------------------
# docs/RESULTS.md


def _edit_and_distribution_rows(cf: dict) -> list[str]:
    """The edit gain the counterfactuals were made with, and how many of them the encoder finds unlike the
    training images, or the images the detector was fitted on (results from before these were recorded: no rows)."""
    rows = []
    if "edit_gain" in cf:
        rows.append(f"| edit gain (fitted on validation images) | {cf['edit_gain']:.2f} |")
    if "out_of_distribution" in cf:
        unlike = f"those of {cf['ood_fitted_on']}" if cf.get("ood_fitted_on") else "the training images"
        rows.append(f"| counterfactuals whose re-encoded latent lies beyond the bundle's OOD threshold (unlike "
                    f"{unlike}): all, by target grade | {_fmt(cf['out_of_distribution'])}: "
                    f"{', '.join(_fmt(v) for v in cf['out_of_distribution_by_target'])} |")
    return rows


def _fmt(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else (
        f"{value:.3f}" if isinstance(value, float) else str(value))


def _interval(interval: list[float] | None) -> str:
    return f"{_fmt(interval[0])} to {_fmt(interval[1])}" if interval else "–"  # no dash: bounds can be negative


def _with_interval(figures: dict[str, Any], name: str) -> str:
    """A figure, followed by its 95 % interval where the results hold one."""
    interval = figures.get("intervals", {}).get(name)
    return _fmt(figures[name]) + (f" (95 % interval {_interval(interval)})" if interval else "")


def _target_line(bundle: str, task: str, values: dict[str, float],
                 intervals: dict[str, list[float]]) -> list[str]:
    """One row per target: the goal, our figure with its bootstrap interval (where the results hold one), and
    whether the goal is met; a goal inside the interval is named, since the split cannot tell it from ours."""
    lines = []
    for metric, (op, goal) in TARGETS.get((bundle, task), {}).items():
        value = values.get(metric)
        if value is None:
            continue
        met = value >= goal if op == ">=" else value <= goal
        status = "met" if met else f"not met (missed by {abs(value - goal):.3f})"
        interval = intervals.get(metric)
        if interval and interval[0] <= goal <= interval[1]:
            status += "; the goal lies inside the interval"
        lines.append(f"| {metric} | {op} {goal} | {_fmt(value)} | {_interval(interval)} | {status} |")
    return lines


def task_section(folder: Path, link: str, results: dict[str, Any], task: str, entry: dict[str, Any]) -> list[str]:
    """The report of one task; ``link`` is ``folder`` relative to the report, for the images."""
    name, cf = folder.name, entry["counterfactuals"]
    lines = [f"### {name}: task `{task}` ({results['split']} split, {results['n_eval']} images; "
             f"bundle `{results['bundle']}`)", "",
             "| model | probe | calibration | AUC | MAE | macro-F1 | accuracy |", "|---|---|---|---|---|---|---|"]
    for row in entry["rows"]:
        lines.append(f"| DAE (ours) | {row['probe']} | {row['calibration']} | {_fmt(row['auc'])} | {_fmt(row['mae'])} "
                     f"| {_fmt(row['macro_f1'])} | {_fmt(row['accuracy'])} |")
    shipped_intervals = entry["shipped"].get("intervals")
    if shipped_intervals:
        lines.append(f"| 95 % interval of the shipped probe (bootstrap over cases) | {entry['shipped']['probe']} | "
                     f"{entry['shipped']['calibration']} | "
                     + " | ".join(_interval(shipped_intervals.get(k)) for k in ("auc", "mae", "macro_f1", "accuracy"))
                     + " |")
    if "baseline" in entry:
        b = entry["baseline"]
        lines.append(f"| DenseNet121 (ours, from scratch, epoch {b['best_epoch']}) | – | – | {_fmt(b['auc'])} | "
                     f"{_fmt(b['mae'])} | {_fmt(b['macro_f1'])} | {_fmt(b['accuracy'])} |")
        if "difference_intervals" in b:
            lines.append("| shipped DAE minus DenseNet121: 95 % interval of the difference (paired bootstrap over "
                         "cases) | | | " + " | ".join(_interval(b["difference_intervals"].get(k))
                                                    for k in ("auc", "mae", "macro_f1")) + " | |")
    paper = PAPER.get(task)
    if paper:
        for model in [m for m in paper if m != "table"]:
            p = paper[model]
            lines.append(f"| {model} (paper, {paper['table']}) | | | {_fmt(p.get('auc'))} | {_fmt(p.get('mae'))} | "
                         f"{_fmt(p.get('macro_f1'))} | |")
    lines += ["", f"Counterfactuals ({cf['n_cases']} held-out images spread over the grades, preset `{cf['preset']}`):",
              "", "| check | value |", "|---|---|",
              f"| validity: re-encoded grade = target grade | {_with_interval(cf, 'validity')} |",
              f"| validity within one grade | {_fmt(cf['validity_within_one'])} |",
              f"| mean absolute grade error of counterfactuals | {_fmt(cf['mean_abs_grade_error'])} |",
              f"| validity by target grade | {', '.join(_fmt(v) for v in cf['validity_by_target'])} |",
              *_edit_and_distribution_rows(cf),
              f"| binary reflection crosses the hyperplane | {_with_interval(cf, 'reflection_validity')} |",
              f"| reconstruction MSE / PSNR / SSIM | {cf['reconstruction']['mse']:.2e} / "
              f"{_fmt(cf['reconstruction']['psnr'])} / {_fmt(cf['reconstruction']['ssim'])} |"]
    if "grain" in cf:
        lines.append(f"| grain: fine texture of counterfactuals over their reconstruction's (1 = as fine), all, by "
                     f"target grade | {_fmt(cf['grain'])}: {', '.join(_fmt(v) for v in cf['grain_by_target'])} |")
    if "faithfulness" in cf:
        lines += [f"| faithfulness: measured morphometric grade = target ({cf['faithfulness_measured']} measurable) "
                  f"| {_with_interval(cf, 'faithfulness')} |",
                  f"| faithfulness by target grade | {', '.join(_fmt(v) for v in cf['faithfulness_by_target'])} |",
                  *_ruler_rows(cf),
                  f"| mean change inside / outside the vertebral body (model units) | "
                  f"{_fmt(cf['change_inside_body'])} / {_fmt(cf['change_outside_body'])} |"]
    geometry = entry.get("latent_geometry")
    if geometry:
        lines.append(f"| latent geometry (training latents, probe space): effective rank / variance along the probe "
                     f"normal (1 = an average direction) | {_fmt(geometry['effective_rank'])} / "
                     f"{geometry['direction_variance']:.3g} |")
    fd = cf.get("frechet_zsem", {})
    if fd:
        lines.append("| Fréchet distance in z_sem space (not FID), real grade g vs counterfactuals to g | "
                     + ", ".join(f"G{g}: {v:.3g}" for g, v in fd.items()) + " |")
    lines += _reconstruction_rows(results)
    shipped = next((r for r in entry["rows"] if r["probe"] == entry["shipped"]["probe"]
                    and r["calibration"].startswith(entry["shipped"]["calibration"])), entry["rows"][0])
    values = {**shipped, "validity": cf["validity"], "faithfulness": cf.get("faithfulness")}
    intervals = {**entry["shipped"].get("intervals", {}), **cf.get("intervals", {})}
    targets = _target_line(name, task, values, intervals)
    lines += ["", "| target | goal | ours | 95 % interval | status |", "|---|---|---|---|---|", *targets, ""
              ] if targets else [""]
    if targets and intervals:
        cases = f"{results['n_eval_cases']:,} " if "n_eval_cases" in results else ""
        lines += [f"95 % intervals: percentile bootstrap over {RESAMPLES} resamples of whole cases (grading: the "
                  f"{cases}held-out cases; validity and faithfulness: the cases of the explained images).", ""]
    if "baseline" in entry:
        lines.append(f"DenseNet121 trained {entry['baseline']['train_seconds'] / 60:.1f} min on this machine "
                     f"(epoch chosen by validation AUC).")
    lines += ["", f"![ROC]({link}/{task}_roc.png) ![calibration]({link}/{task}_calibration.png)", "",
              f"![t-SNE]({link}/{task}_tsne.png)", ""]
    lines += [f"![strip]({link}/{p.name})" for p in sorted(folder.glob(f"{task}_strip_*.png"))]
    return lines


def _reconstruction_rows(results: dict[str, Any]) -> list[str]:
    """The table of reconstruction quality by step preset (older results.json files lack it)."""
    by_preset = results.get("reconstruction_by_preset")
    if not by_preset:
        return []
    n = len(results.get("reconstruction_cases", []))
    lines = ["", f"Reconstruction (encode, DDIM inversion, decode) of {n} held-out images spread over the grades, by "
             "step preset (MSE in the model range [-1, 1]; seconds per image on the machine that ran the evaluation):",
             "", "| preset | steps inv×(1+refine)/dec | MSE | PSNR (dB) | SSIM | s / image |", "|---|---|---|---|---|---|"]
    lines += [f"| {name} | {preset_label(r['steps'])} | {r['mse']:.2e} | {r['psnr']:.1f} | {r['ssim']:.4f} | "
              f"{r['seconds_per_image']:.1f} |" for name, r in by_preset.items()]
    return lines + [""]


def _ruler_rows(cf: dict[str, Any]) -> list[str]:
    """Faithfulness rows that need the newer fields (older results.json files lack them)."""
    rows = []
    if "faithfulness_within_one" in cf:
        rows.append(f"| faithfulness within one grade | {_fmt(cf['faithfulness_within_one'])} |")
    ruler = cf.get("ruler", {})
    if "measured_loss_by_target" in cf:
        rows.append("| mean measured height loss of counterfactuals, by target grade | "
                    + ", ".join(_fmt(v) for v in cf["measured_loss_by_target"]) + " |")
    if "mean_loss_by_grade" in ruler:
        rows.append("| ... of the labelled held-out images, by grade | "
                    + ", ".join(_fmt(v) for v in ruler["mean_loss_by_grade"]) + " |")
    if ruler:
        rows += [f"| the same ruler on the {ruler['n']} labelled held-out images: measured grade = label, by grade "
                 f"(the ceiling of faithfulness) | {', '.join(_fmt(v) for v in ruler['agreement_by_grade'])} |",
                 f"| ... mean over grades (comparable to faithfulness) / within one grade | "
                 f"{_fmt(ruler['agreement_grade_balanced'])} / {_fmt(ruler['agreement_within_one'])} |"]
    if "faithfulness_from_intact" in cf:
        rows += [f"| faithfulness of the {cf['faithfulness_from_intact_cases']} intact inputs' counterfactuals, "
                 f"measured against the input's own heights (sees crush fractures; `ruler_check.py`) | "
                 f"{_fmt(cf['faithfulness_from_intact'])} |",
                 "| ... by target grade | " + ", ".join(_fmt(v) for v in cf["faithfulness_from_intact_by_target"])
                 + " |"]
    if ruler.get("agreement_by_kind"):
        rows.append("| ... on the fractured ones, by fracture kind | "
                    + ", ".join(f"{kind} {_fmt(v)}" for kind, v in ruler["agreement_by_kind"].items()) + " |")
    return rows


def write_results_markdown(results_dir: Path, out: Path, preface: str | None = None) -> Path:
    """One section per results.json under ``results_dir``; ``preface`` (docs/results/PREFACE.md) goes first."""
    results_dir = Path(results_dir)
    preface_file = results_dir / "PREFACE.md"
    lines = [preface if preface is not None else (preface_file.read_text(encoding="utf-8") if preface_file.exists()
                                                   else "# Results"), ""]
    out = Path(out)
    for path in sorted(results_dir.glob("*/results.json")):
        results = json.loads(path.read_text(encoding="utf-8"))
        link = os.path.relpath(path.parent.resolve(), out.parent.resolve()).replace(os.sep, "/")
        for task, entry in results["tasks"].items():
            lines += task_section(path.parent, link, results, task, entry) + [""]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
