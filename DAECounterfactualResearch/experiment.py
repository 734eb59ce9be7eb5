"""An experiment config (``scripts/configs/*.json``) as an ``Experiment``: reading it, loading its training set,
checking that set against the config's bundle section, and the command-line arguments shared by the scripts that
study a bundle, and how a script exits on an expected error.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from DAECounterfactualLib.errors import DAECFError, InputError
from DAECounterfactualLib.model.preprocessing import Preprocessing

from .datasets import TrainingSet, load_training_set, medmnist_training_set

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"


@dataclass(frozen=True)
class Experiment:
    """One experiment config, read once. Its sections stay the JSON their own readers take: ``model`` for
    DAEConfig.from_dict, ``train`` for TrainConfig, ``data`` for load_data, ``bundle`` for the bundle's config and
    model card, each of ``tasks`` for TaskRecipe.from_config, ``ood`` for the OOD detector's fit, ``warm_start``
    for train_dae.py; what every script asked of them is named here."""

    data: dict[str, Any]
    tasks: list[dict[str, Any]] = field(default_factory=list)
    bundle: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    ood: dict[str, Any] = field(default_factory=dict)
    warm_start: str = ""  # weights a fresh run starts from (a path under the repository, e.g. a shipped bundle's)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> "Experiment":
        return cls(data=config["data"], tasks=list(config.get("tasks", [])), bundle=dict(config.get("bundle", {})),
                   model=dict(config.get("model", {})), train=dict(config.get("train", {})),
                   ood=dict(config.get("ood", {})), warm_start=str(config.get("warm_start", "")))

    @property
    def ood_sources(self) -> tuple[str, ...]:
        """The data sources (``dataset_building.data_source``) the OOD detector is fitted and thresholded on; ()
        for all of the training data. A bundle whose grades hold on some sources alone flags the others."""
        return tuple(self.ood.get("fit_sources", ()))

    @property
    def ood_fitted_on(self) -> str:
        """Those sources in words, for the flag's reason (``MahalanobisDetector.fitted_on``); "" for all."""
        return str(self.ood.get("fitted_on", ""))

    @property
    def name(self) -> str:
        """The bundle's name: its folder under Resources/Models and its training run's under the cache."""
        return self.bundle["name"]

    @property
    def train_split(self) -> str:
        return self.data.get("train_split", "train")

    @property
    def val_split(self) -> str:
        return self.data.get("val_split", "val")

    @property
    def balance_by(self) -> str | None:
        """The training-set column whose values the DAE sees equally often (``datasets.balanced``), if any."""
        return self.data.get("balance_by")


def load_experiment(path: Path) -> Experiment:
    return Experiment.from_dict(json.loads(path.read_text(encoding="utf-8")))


def load_data(experiment: Experiment, data_root: Path) -> tuple[TrainingSet, Path]:
    """The experiment's training set and the file it came from, checked against its bundle section (if any)."""
    spec = experiment.data
    path = Path(spec["path"])
    path = path if path.is_absolute() else data_root / path
    if spec["kind"] == "medmnist":
        return medmnist_training_set(path), path
    if spec["kind"] == "training_set":
        if experiment.bundle:
            check_built_for(path, experiment.bundle)
        return load_training_set(path), path
    raise ValueError(f"unknown data kind {spec['kind']!r}")


def check_built_for(path: Path, bundle_spec: dict) -> None:
    """Refuse a training set that build_dataset.py cut with another window or patch than the bundle states: the
    bundle would preprocess volumes one way at inference while its model learnt another (its manifest.json says)."""
    manifest = path.parent / "manifest.json"
    if not manifest.exists():
        return
    built = json.loads(manifest.read_text(encoding="utf-8")).get("settings", {})
    differ = patch_differences(built.get("preprocessing"), built, bundle_spec)
    if differ:
        raise InputError(f"{path} was built with " + ", ".join(differ) + "; rebuild it with the config's "
                         "data.build command or correct the config's bundle section")


def patch_differences(preprocessing: dict | None, patch: dict, bundle_spec: dict) -> list[str]:
    """Where a window and patch geometry (``patch``: size_px, spacing_mm, rows) differ from those an experiment's
    bundle section states, as "key found (config: stated)"; a setting either side leaves out is not compared, but a
    bundle section without rows states RAS rows ("axial")."""
    stated = _patch_settings(bundle_spec.get("preprocessing"), {"rows": "axial"} | bundle_spec.get("patch", {}))
    found = _patch_settings(preprocessing, patch)
    return [f"{key} {found[key]} (config: {stated[key]})" for key in stated
            if None not in (found[key], stated[key]) and found[key] != stated[key]]


def _patch_settings(preprocessing: dict | None, patch: dict) -> dict:
    """Window and patch geometry in one comparable form (None where not stated)."""
    return {"preprocessing": preprocessing and Preprocessing.from_dict(preprocessing).to_dict(),
            "size_px": patch.get("size_px"), "spacing_mm": patch.get("spacing_mm"), "rows": patch.get("rows")}


def add_bundle_arguments(parser: argparse.ArgumentParser, task: bool = False) -> None:
    """The experiment config, its data root, the bundle to study (and, with ``task``, which of its tasks)."""
    parser.add_argument("config", type=Path)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--bundle", default=None, help="bundle folder or name (default: the experiment's name)")
    if task:
        parser.add_argument("--task", default=None, help="default: the experiment's first task")


def bundle_in(out: Path, name: str) -> Path:
    """``out/name``, for a script that changes a bundle: the bundled model ``name`` itself when ``out`` is where it
    lives, else a copy of it made there (an existing other folder is refused), so the shipped one is never changed
    unless the script is pointed at it."""
    from DAECounterfactualLib.bundle.registry import resolve_bundle

    source, target = resolve_bundle(name), Path(out) / name
    if target.resolve() != source.resolve():
        if target.exists():
            raise InputError(f"{target} exists and is not the bundle {source}: name another --out")
        shutil.copytree(source, target)
    return target


def chosen_task(parser: argparse.ArgumentParser, args: argparse.Namespace,
                experiment: Experiment) -> dict[str, Any]:
    """The config's entry for ``--task`` (the first task when none is named); an unknown name is a usage error."""
    tasks = {t["name"]: t for t in experiment.tasks}
    if args.task and args.task not in tasks:
        parser.error(f"task {args.task!r} is not in {args.config} (tasks: {', '.join(tasks)})")
    return tasks[args.task] if args.task else experiment.tasks[0]


def run_script(main: Callable[[], int]) -> None:
    """Run a script's ``main`` and exit with its status; an expected error (a bad input, a bundle that is not one)
    prints one line (no traceback) and exits with status 2, as ``daecf`` does."""
    try:
        sys.exit(main())
    except DAECFError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
