"""Making a bundle from a trained DAE: its config from the experiment, the EMA weights, the tasks fitted on the
training latents, and each task's edit gain fitted on validation images.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from safetensors.torch import load_file

from DAECounterfactualLib.bundle.domain import TrainingDomain, level_kind
from DAECounterfactualLib.bundle.spec import BundleConfig, StepPreset, TaskSpec
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualLib.model.config import DAEConfig
from DAECounterfactualLib.model.networks import make_model
from DAECounterfactualLib.model.preprocessing import Preprocessing

from .evaluation import latent_geometry
from .experiment import Experiment
from .task_fitting import TaskRecipe, fit_edit_gain, fit_task


def experiment_presets(experiment: Experiment) -> dict[str, StepPreset]:
    """The step presets the experiment config's bundle section names (none: the defaults)."""
    return {k: StepPreset(**v) for k, v in experiment.bundle.get("presets", {}).items()}


def bundle_config(experiment: Experiment, model_config: DAEConfig, train=None) -> BundleConfig:
    spec = experiment.bundle
    presets = experiment_presets(experiment)
    return BundleConfig(name=spec["name"], modality=spec["modality"], description=spec.get("description", ""),
                        model=model_config, preprocessing=Preprocessing.from_dict(spec["preprocessing"]),
                        patch_size_px=spec["patch"]["size_px"], patch_spacing_mm=spec["patch"]["spacing_mm"],
                        patch_rows=spec["patch"].get("rows", "axial"), trained_on=training_domain(experiment, train),
                        **({"presets": presets} if presets else {}))


def training_domain(experiment: Experiment, train=None) -> TrainingDomain | None:
    """The bundle section's ``trained_on``; its levels, where it names none, are those of the graded patches of
    the training split ``train`` (its ``level`` column), so the bundle states what its probes were fitted on."""
    spec = experiment.bundle.get("trained_on")
    if spec is None:
        return None
    levels = spec.get("levels")
    if levels is None and train is not None and "level" in train.extra:
        graded = {str(level) for level in train.extra["level"][train.grades >= 0]}
        levels = sorted(level for level in graded if level_kind(level) == spec["target_kind"])
    return TrainingDomain.from_dict({**spec, "levels": levels or []})


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


def fit_tasks(experiment: Experiment, z_train: np.ndarray, train, z_val: np.ndarray, val) -> list[TaskSpec]:
    """Every task of the experiment fitted on the training latents (C chosen on validation, or by cross-validation
    by patient where there is no validation split), with the geometry of the training latents in its probe's space
    recorded for the model card."""
    recipes = [TaskRecipe.from_config(t) for t in experiment.tasks]
    groups = train.extra.get("group") if len(val) == 0 else None  # no validation split: cross-validate by patient
    tasks = [fit_task(r, z_train, r.labels(train), z_val, r.labels(val), r.strata(train), groups) for r in recipes]
    return [replace(t, metrics={**t.metrics, "latent_geometry": latent_geometry(t.probe, z_train)}) for t in tasks]


def gain_images(val, count: int) -> np.ndarray:
    """``count`` validation images spread over the split (graded ones first choice)."""
    pool = val.images[val.grades >= 0] if (val.grades >= 0).sum() >= count else val.images
    return pool[np.linspace(0, len(pool) - 1, min(count, len(pool))).round().astype(int)].astype(np.float32)


def fitted_tasks(explainer: Explainer, tasks, images: np.ndarray, preset: str) -> list:
    """Each task with its edit gain fitted and the fit recorded in its metrics."""
    fitted = []
    for task in tasks:
        gain, record = fit_edit_gain(explainer, images, task, preset)
        fitted.append(replace(task, edit_gain=gain, metrics={**task.metrics, "edit_gain_fit": record}))
        print(f"task {task.name}: edit gain {gain:.2f} ({record})")
    return fitted
