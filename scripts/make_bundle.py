#!/usr/bin/env python
"""Fit the task probes of an experiment on its trained DAE and write the model bundle.

Reads the EMA weights exported by train_dae.py, encodes the experiment's training set once, fits every task in
the config (probe + calibration, regularisation chosen on the validation split), computes the latent statistics
for the out-of-distribution flag, and writes the bundle with its model card and manifest:

    python scripts/make_bundle.py scripts/configs/dr-retina.json [--out Resources/Models/dr-retina]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "DAECounterfactual"))
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from DAECounterfactualLib.cli.bench import preset_label  # noqa: E402
from DAECounterfactualLib.bundle.store import (  # noqa: E402
    BundleConfig, LatentStats, StepPreset, TaskSpec, add_task, load_bundle, write_bundle)
from DAECounterfactualLib.model.config import DAEConfig  # noqa: E402
from DAECounterfactualLib.model.diffusion import NoiseSchedule  # noqa: E402
from DAECounterfactualResearch.evaluation import latent_geometry  # noqa: E402
from DAECounterfactualLib.model.networks import count_parameters, make_model  # noqa: E402
from DAECounterfactualLib.inference.explainer import Explainer, encode_images  # noqa: E402
from DAECounterfactualLib.model.preprocessing import Preprocessing  # noqa: E402
from DAECounterfactualResearch.task_fitting import TaskRecipe, fit_task  # noqa: E402
from DAECounterfactualResearch.training import default_cache_dir, reconstruct, semantic_reliance  # noqa: E402
from fit_edit_gain import fitted_tasks, gain_images, with_gain_section  # noqa: E402
from train_dae import DEFAULT_DATA_ROOT, load_data, load_experiment  # noqa: E402


def bundle_config(experiment: dict, model_config: DAEConfig) -> BundleConfig:
    spec = experiment["bundle"]
    presets = {k: StepPreset(**v) for k, v in spec.get("presets", {}).items()}
    return BundleConfig(name=spec["name"], modality=spec["modality"], description=spec.get("description", ""),
                        model=model_config, preprocessing=Preprocessing.from_dict(spec["preprocessing"]),
                        patch_size_px=spec["patch"]["size_px"], patch_spacing_mm=spec["patch"]["spacing_mm"],
                        **({"presets": presets} if presets else {}))


def fit_tasks(experiment: dict, z_train: np.ndarray, train, z_val: np.ndarray, val) -> list[TaskSpec]:
    """Every task of the experiment fitted on the training latents (C chosen on validation), with the geometry of
    the training latents in its probe's space recorded for the model card."""
    recipes = [TaskRecipe.from_config(t) for t in experiment["tasks"]]
    tasks = [fit_task(r, z_train, train.grades, z_val, val.grades, r.strata(train)) for r in recipes]
    return [replace(t, metrics={**t.metrics, "latent_geometry": latent_geometry(t.probe, z_train)}) for t in tasks]


def task_card_lines(experiment: dict, tasks) -> list[str]:
    """The model card's lines on each task: its recipe, validation metrics and latent geometry."""
    lines = []
    for task in tasks:
        m, g = task.metrics, task.metrics["latent_geometry"]
        lines += [f"- Task `{task.name}` ({task.positive_rule} positive; probe {task.probe.kind}, C={m.get('C')}, "
                  f"calibration {task.calibration.method}): validation AUC {m['auc']:.3f}, grading MAE "
                  f"{m['mae']:.3f}, macro-F1 {m['macro_f1']:.3f}, accuracy {m['accuracy']:.3f} (n={m['n']}). "
                  f"Training latents in the probe's space: effective rank {g['effective_rank']:.2f}, variance along "
                  f"the probe normal {g['direction_variance']:.3g} (1 = an average direction; far below 1, the "
                  "decoder is unlikely to draw edits along it)."]
        if task.probe.edit_direction is not None:
            edit_components = next(t.get("edit_components") for t in experiment["tasks"] if t["name"] == task.name)
            cos = float(task.probe.edit_axis @ task.probe.unit_normal)
            lines.append(f"  Counterfactual edits move along the normal's projection on the latents' top "
                         f"{edit_components} principal directions (cos {cos:.3f} with the normal), which the decoder "
                         "draws; grades use the whole normal.")
    return lines


def render_model_card(experiment: dict, config: BundleConfig, run_meta: dict, tasks, parameters: int,
                      recon_mse: float, fp16_delta: float, reliance: float) -> str:
    data, train = run_meta.get("data", {}), run_meta.get("train_config", {})
    hours = run_meta.get("elapsed_s", 0) / 3600
    lines = [
        f"# {config.name}", "", config.description, "",
        "**Not for clinical use.** A research model that explains its own grading; its grades are not diagnoses.", "",
        "## Model",
        f"- Diffusion autoencoder, {parameters / 1e6:.2f} M parameters, z_sem {config.model.z_dim}-d, "
        f"input {config.model.in_channels}×{config.patch_size_px}×{config.patch_size_px} px at "
        f"{config.patch_spacing_mm} mm/px; modality: {config.modality}.",
        f"- Preprocessing: {config.preprocessing.to_dict()}.",
        "- Step presets (inversion steps × (1 + fixed-point refinements) / decoding steps; ≤ where a tolerance "
        "stops refinements early): " + ", ".join(f"{k} {preset_label(vars(p))}" for k, p in config.presets.items()),
        "", "## Training data",
        f"- File `{data.get('file')}` (sha256 `{str(data.get('sha256'))[:16]}…`), {data.get('train_images')} training "
        f"images, {data.get('val_images')} validation images. Experiment config `{data.get('experiment')}`.",
        "", "## Compute",
        f"- {run_meta.get('samples_seen', 0):,} samples seen (batch {train.get('batch_size')}, lr {train.get('lr')}, "
        f"EMA {train.get('ema_decay')}), {hours:.2f} h on {run_meta.get('device')} "
        f"(world size {run_meta.get('world_size')}), precision {train.get('precision')}, loss weighting "
        f"{train.get('loss_weighting', 'eps')}.",
    ]
    if run_meta.get("warm_start"):
        lines.append(f"- Warm start from `{Path(run_meta['warm_start']['file']).name}` (sha256 "
                     f"`{run_meta['warm_start']['sha256'][:16]}…`); its own compute is not counted above.")
    if experiment["bundle"].get("compute_note"):
        lines.append(f"- {experiment['bundle']['compute_note']}")
    lines += [
        "", "## Validation",
        f"- EMA reconstruction MSE on validation images (model range [-1, 1], 'standard' preset): {recon_mse:.2e}.",
        f"- z_sem reliance (clean-image error at t in [400, 800) with another image's z_sem minus with its own; "
        f"0 = the decoder ignores z_sem): {reliance:.4f}.",
        f"- Weights stored as fp16: max |Δ signed distance| vs fp32 on validation latents {fp16_delta:.2e}.",
    ]
    lines += task_card_lines(experiment, tasks)
    if experiment["bundle"].get("limitations"):
        lines += ["", "## Limitations", experiment["bundle"]["limitations"]]
    lines += ["", "## Intended use",
              "Research on counterfactual explanations: showing how this model's latent direction for the "
              "pathology changes an image. Out-of-distribution inputs are flagged from the latent statistics of the "
              "training set.", ""]
    return "\n".join(lines)


def load_ema_model(run_dir: Path, run_meta: dict, allow_unfinished: bool):
    """The EMA weights exported at the end of training, or (on request) those of the latest checkpoint."""
    export = run_dir / "export" / "ema.safetensors"
    model = make_model(DAEConfig.from_dict(run_meta["model_config"]))
    if export.exists():
        model.load_state_dict(load_file(export))
    elif allow_unfinished:
        tensors = load_file(run_dir / "checkpoint.safetensors")
        model.load_state_dict({k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")})
        print(f"note: run not finished; bundling the EMA weights after {run_meta['samples_seen']:,} samples")
    else:
        raise SystemExit(f"{run_dir}: training has not finished (no export/); pass --allow-unfinished to bundle "
                         "the latest checkpoint")
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--allow-unfinished", action="store_true",
                        help="bundle the EMA weights of the latest checkpoint of a run that has not finished")
    parser.add_argument("--gain-images", type=int, default=12,
                        help="validation images to fit each task's edit gain on (0: gain 1)")
    args = parser.parse_args(argv)

    experiment = load_experiment(args.config)
    name = experiment["bundle"]["name"]
    run_dir = args.run_dir or default_cache_dir() / name
    run_meta = json.loads((run_dir / "checkpoint.json").read_text(encoding="utf-8"))
    model = load_ema_model(run_dir, run_meta, args.allow_unfinished)
    model_config = model.config
    config = bundle_config(experiment, model_config)

    data, _ = load_data(experiment, args.data_root)
    splits = experiment["data"].get("train_split", "train"), experiment["data"].get("val_split", "val")
    train, val = data.subset(splits[0]), data.subset(splits[1])
    model.eval()
    z_train, z_val = encode_images(model, train.images), encode_images(model, val.images)
    stats = LatentStats.from_latents(z_train)
    tasks = fit_tasks(experiment, z_train, train, z_val, val)

    with torch.no_grad():
        images = torch.from_numpy(val.images[:16].astype(np.float32))
        standard = config.presets["standard"]
        recon = reconstruct(model, images, NoiseSchedule(), standard.decode, standard.refine, standard.refine_tol,
                            standard.spacing)
        recon_mse = float(torch.mean((recon - images) ** 2))
        reliance = semantic_reliance(model, images, NoiseSchedule())
    z_val_fp16 = encode_images(copy.deepcopy(model).half().float(), val.images)  # what the fp16 bundle will give
    delta = max(float(np.abs(t.probe.distance(z_val_fp16) - t.probe.distance(z_val)).max()) for t in tasks)
    card = render_model_card(experiment, config, run_meta, tasks, count_parameters(model), recon_mse, delta,
                             reliance)
    out = args.out or REPO / "Resources" / "Models" / name
    write_bundle(out, config, model, stats, tasks, card, fp16=True, overwrite=True)
    if args.gain_images:  # fitted on the bundle as written (fp16 weights): what users will run
        bundle = load_bundle(out)
        tasks = fitted_tasks(Explainer(bundle), list(bundle.tasks.values()), gain_images(val, args.gain_images),
                             "fast")
        card = with_gain_section(bundle.model_card, tasks)
        for task in tasks:
            add_task(out, task, overwrite=True, model_card=card)
    print(card)
    return 0


if __name__ == "__main__":
    sys.exit(main())
