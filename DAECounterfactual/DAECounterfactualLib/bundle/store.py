"""Model bundles: a folder holding one trained DAE, its settings, training-set latent statistics and task probes.

    config.json          BundleConfig: architecture, diffusion schedule, modality, preprocessing, patch, step presets
    model.safetensors    DAE weights (fp16 or fp32)
    latent_stats.json    mean/std of z_sem over the training set and the OOD threshold
    tasks/<name>.json    TaskSpec: probe, calibration, grade names, positive-class rule
    MODEL_CARD.md        training data, compute, metrics, intended use
    manifest.json        sha256 of every other file

Loading reads every file into memory, checks the manifest, the allowed file types and the JSON schema, and only
then builds anything: a bad bundle raises one BundleError naming the file, and nothing is half-loaded. Only JSON,
safetensors and Markdown are accepted, so nothing is ever unpickled. Tasks are separate files so that adding a
probe never rewrites or copies the DAE.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model.config import ConfigError, DAEConfig
from ..model.diffusion import SPACINGS, DiffusionConfig, NoiseSchedule
from ..errors import BundleError, InputError
from ..io.files import atomic_write_bytes
from ..model.preprocessing import Preprocessing
from ..model.probe import Calibration, LinearProbe

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
LATENT_STATS = "latent_stats.json"
MODEL_CARD = "MODEL_CARD.md"
TASK_DIR = "tasks"
ALLOWED_SUFFIXES = (".json", ".safetensors", ".md")
MAX_EDIT_GAIN = 50.0
MAX_STEPS = 1000
MAX_REFINE = 20


@dataclass(frozen=True)
class StepPreset:
    """DDIM step counts for inversion (image -> x_T) and decoding (x_T -> image), the fixed-point iterations
    refining each inversion step (at most ``refine``; fewer once one changes x by less than ``refine_tol``) and
    the timestep spacing (see diffusion.ddim_invert and NoiseSchedule.timesteps)."""

    invert: int
    decode: int
    refine: int = 0
    refine_tol: float = 0.0
    spacing: str = "uniform"

    def __post_init__(self) -> None:
        # InputError (a ValueError): presets also come from users (CLI --steps, the Python console)
        for name in ("invert", "decode"):
            value = getattr(self, name)
            if not _is_int(value) or not 1 <= value <= MAX_STEPS:
                raise InputError(f"{name} steps must be an integer in [1, {MAX_STEPS}], got {value!r}")
        if not _is_int(self.refine) or not 0 <= self.refine <= MAX_REFINE:
            raise InputError(f"refine must be an integer in [0, {MAX_REFINE}], got {self.refine!r}")
        if isinstance(self.refine_tol, bool) or not isinstance(self.refine_tol, (int, float)) \
                or not 0 <= self.refine_tol < 1:
            raise InputError(f"refine_tol must be a number in [0, 1), got {self.refine_tol!r}")
        if self.spacing not in SPACINGS:
            raise InputError(f"spacing must be one of {', '.join(SPACINGS)}, got {self.spacing!r}")

    @property
    def inversion_calls(self) -> int:
        """Network calls of one inversion, at most (a tolerance can stop refinements early)."""
        return self.invert * (1 + self.refine)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


DEFAULT_PRESETS = {"fast": StepPreset(10, 10), "standard": StepPreset(50, 50), "reference": StepPreset(250, 100)}


@dataclass(frozen=True)
class BundleConfig:
    name: str
    modality: str
    model: DAEConfig
    preprocessing: Preprocessing
    patch_size_px: int
    patch_spacing_mm: float
    diffusion: DiffusionConfig = DiffusionConfig()
    presets: dict[str, StepPreset] = field(default_factory=lambda: dict(DEFAULT_PRESETS))
    description: str = ""

    def __post_init__(self) -> None:
        if self.patch_size_px != self.model.image_size:
            raise ValueError(f"patch_size_px {self.patch_size_px} differs from model image_size "
                             f"{self.model.image_size}")
        if not self.patch_spacing_mm > 0:
            raise ValueError(f"patch_spacing_mm must be positive, got {self.patch_spacing_mm}")
        if not self.name or "/" in self.name:
            raise ValueError(f"invalid bundle name {self.name!r}")
        for name, preset in self.presets.items():
            self.check_steps(preset, f"preset {name!r}")

    def check_steps(self, preset: StepPreset, what: str = "steps") -> StepPreset:
        """A DDIM walk cannot take more steps than the model has trained timesteps (InputError otherwise)."""
        limit = self.diffusion.num_train_timesteps
        if max(preset.invert, preset.decode) > limit:
            raise InputError(f"{what}: {max(preset.invert, preset.decode)} DDIM steps exceed the {limit} timesteps "
                             f"bundle {self.name!r} was trained with")
        schedule = NoiseSchedule(self.diffusion)
        for steps in (preset.invert, preset.decode):
            try:
                schedule.timesteps(steps, preset.spacing)
            except ValueError as exc:
                raise InputError(f"{what}: {exc}") from None
        return preset

    def preset(self, name_or_preset: str | StepPreset) -> StepPreset:
        """A named preset, or a user's own StepPreset checked against the model: what every caller passes on to
        ``Explainer.explain`` (which would otherwise fail deep inside the diffusion loop)."""
        if isinstance(name_or_preset, StepPreset):
            return self.check_steps(name_or_preset)
        if name_or_preset not in self.presets:
            raise InputError(f"unknown quality preset {name_or_preset!r}; presets: {sorted(self.presets)}")
        return self.presets[name_or_preset]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION, "name": self.name, "modality": self.modality,
            "description": self.description, "model": self.model.to_dict(),
            "diffusion": vars(self.diffusion).copy(), "preprocessing": self.preprocessing.to_dict(),
            "patch": {"size_px": self.patch_size_px, "spacing_mm": self.patch_spacing_mm},
            "presets": {k: vars(p).copy() for k, p in self.presets.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BundleConfig":
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported format_version {data.get('format_version')!r} (expected {FORMAT_VERSION})")
        return cls(
            name=str(data["name"]), modality=str(data["modality"]), description=str(data.get("description", "")),
            model=DAEConfig.from_dict(data["model"]), diffusion=DiffusionConfig(**data["diffusion"]),
            preprocessing=Preprocessing.from_dict(data["preprocessing"]),
            patch_size_px=int(data["patch"]["size_px"]), patch_spacing_mm=float(data["patch"]["spacing_mm"]),
            presets={k: StepPreset(**v) for k, v in data["presets"].items()},
        )


@dataclass(frozen=True)
class TaskSpec:
    """One grading task on the bundle's latent space. Grades are 0..len(grade_names)-1."""

    name: str
    description: str
    grade_names: tuple[str, ...]
    positive_min_grade: int
    probe: LinearProbe
    calibration: Calibration
    metrics: dict[str, Any] = field(default_factory=dict)
    edit_gain: float = 1.0  # latent steps are multiplied by this (probe.move_to_distance); fitted, >= 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "grade_names", tuple(self.grade_names))
        if not (np.isfinite(self.edit_gain) and 1.0 <= self.edit_gain <= MAX_EDIT_GAIN):
            raise ValueError(f"edit_gain must lie in [1, {MAX_EDIT_GAIN}], got {self.edit_gain}")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"invalid task name {self.name!r}")
        if len(self.grade_names) < 2:
            raise ValueError("a task needs at least two grades")
        if not 0 < self.positive_min_grade < len(self.grade_names):
            raise ValueError(f"positive_min_grade {self.positive_min_grade} outside 1..{len(self.grade_names) - 1}")
        if (self.calibration.min_grade, self.calibration.max_grade) != (0, len(self.grade_names) - 1):
            raise ValueError(f"calibration range {self.calibration.min_grade}..{self.calibration.max_grade} does "
                             f"not match grades 0..{len(self.grade_names) - 1}")

    @property
    def positive_rule(self) -> str:
        return f"grade >= {self.positive_min_grade} ({self.grade_names[self.positive_min_grade]})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "grade_names": list(self.grade_names),
                "positive_min_grade": self.positive_min_grade, "positive_rule": self.positive_rule,
                "probe": self.probe.to_dict(), "calibration": self.calibration.to_dict(), "metrics": self.metrics,
                "edit_gain": self.edit_gain}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TaskSpec":
        return cls(name=str(data["name"]), description=str(data.get("description", "")),
                   grade_names=tuple(str(g) for g in data["grade_names"]),
                   positive_min_grade=int(data["positive_min_grade"]), probe=LinearProbe.from_dict(data["probe"]),
                   calibration=Calibration.from_dict(data["calibration"]), metrics=dict(data.get("metrics", {})),
                   edit_gain=float(data.get("edit_gain", 1.0)))


@dataclass(frozen=True)
class LatentStats:
    """Training-set statistics of z_sem. OOD score: mean squared z-score over dimensions."""

    mean: np.ndarray
    std: np.ndarray
    ood_threshold: float
    ood_quantile: float = 0.995

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", np.asarray(self.mean, dtype=np.float64))
        object.__setattr__(self, "std", np.asarray(self.std, dtype=np.float64))
        if self.mean.ndim != 1 or self.mean.shape != self.std.shape or not np.all(self.std > 0):
            raise ValueError("latent mean/std must be 1-D of equal length with std > 0")
        if not np.isfinite(self.ood_threshold) or self.ood_threshold <= 0:
            raise ValueError(f"ood_threshold must be positive, got {self.ood_threshold}")
        if not 0 < self.ood_quantile < 1:
            raise ValueError(f"ood_quantile must lie in (0, 1), got {self.ood_quantile}")
        if not (np.all(np.isfinite(self.mean)) and np.all(np.isfinite(self.std))):
            raise ValueError("latent mean/std must be finite")

    def ood_score(self, z: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(np.asarray(z, dtype=np.float64))
        return np.mean(((z - self.mean) / self.std) ** 2, axis=1)

    def is_ood(self, z: np.ndarray) -> np.ndarray:
        return self.ood_score(z) > self.ood_threshold

    @classmethod
    def from_latents(cls, z: np.ndarray, quantile: float = 0.995) -> "LatentStats":
        """Threshold = the given quantile of the training latents' own scores."""
        z = np.asarray(z, dtype=np.float64)
        mean, std = z.mean(axis=0), np.maximum(z.std(axis=0), 1e-6)
        scores = np.mean(((z - mean) / std) ** 2, axis=1)
        return cls(mean=mean, std=std, ood_threshold=float(np.quantile(scores, quantile)), ood_quantile=quantile)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "ood_threshold": self.ood_threshold,
                "ood_quantile": self.ood_quantile,
                "ood_score": "mean over dimensions of ((z - mean) / std)^2"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LatentStats":
        return cls(mean=data["mean"], std=data["std"], ood_threshold=float(data["ood_threshold"]),
                   ood_quantile=float(data.get("ood_quantile", 0.995)))


@dataclass
class Bundle:
    path: Path
    config: BundleConfig
    latent_stats: LatentStats
    tasks: dict[str, TaskSpec]
    model_card: str
    manifest_sha256: str
    model: Any = None  # DiffusionAutoencoder (float32, eval, CPU); None when loaded without weights

    @property
    def bundle_id(self) -> str:
        """Name plus a short hash of the manifest: changes whenever any file of the bundle changes."""
        return f"{self.config.name}@{self.manifest_sha256[:12]}"

    def task(self, name: str) -> TaskSpec:
        if name not in self.tasks:
            raise BundleError(f"bundle {self.config.name!r} has no task {name!r}; tasks: {sorted(self.tasks)}")
        return self.tasks[name]

    def require_model(self):
        if self.model is None:
            raise BundleError(f"{self.path}: bundle was loaded without weights")
        return self.model


# ---------------------------------------------------------------------------------------------------------------
# Reading


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_files(root: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            raise BundleError(f"{root / rel}: symbolic links are not allowed in a bundle")
        if path.is_dir():
            continue
        if not rel.endswith(ALLOWED_SUFFIXES):
            raise BundleError(f"{root / rel}: file type not allowed in a bundle (only {', '.join(ALLOWED_SUFFIXES)})")
        files[rel] = path.read_bytes()
    return files


def _verify_manifest(root: Path, files: dict[str, bytes]) -> str:
    if MANIFEST not in files:
        raise BundleError(f"{root / MANIFEST}: manifest missing")
    manifest = _parse_json(root, MANIFEST, files[MANIFEST])
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise BundleError(f"{root / MANIFEST}: 'files' must map file names to sha256")
    for rel, digest in sorted(listed.items()):
        if rel not in files:
            raise BundleError(f"{root / rel}: listed in the manifest but missing")
        if _sha256(files[rel]) != digest:
            raise BundleError(f"{root / rel}: sha256 does not match the manifest (file truncated or modified)")
    unlisted = sorted(set(files) - set(listed) - {MANIFEST})
    if unlisted:
        raise BundleError(f"{root / unlisted[0]}: file not listed in the manifest")
    for required in (CONFIG, WEIGHTS, LATENT_STATS, MODEL_CARD):
        if required not in listed:
            raise BundleError(f"{root / required}: required bundle file missing")
    return _sha256(files[MANIFEST])


def _parse_json(root: Path, rel: str, data: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{root / rel}: not valid JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise BundleError(f"{root / rel}: expected a JSON object")
    return parsed


# JSON schema of the bundle files, checked before any object is built, so that a string where a number belongs, a
# float where an integer belongs or an unknown probe kind is named instead of coerced (int(2.7) == 2) or crashing
# later. Leaves: a JSON type, or a set of allowed strings; [leaf]: a list of them; "*": any key. Keys the schema
# does not name (metrics, comments) are free; required keys are the loaders' business (missing key ...).
INTEGER, NUMBER, STRING, ANY = "integer", "number", "string", "any"
INTEGERS = [INTEGER]
CONFIG_SCHEMA = {
    "format_version": INTEGER, "name": STRING, "modality": STRING, "description": STRING,
    "model": {"image_size": INTEGER, "in_channels": INTEGER, "base_channels": INTEGER, "channel_mults": INTEGERS,
              "num_res_blocks": INTEGER, "attention_resolutions": INTEGERS, "z_dim": INTEGER,
              "encoder_channel_mults": INTEGERS, "head_channels": INTEGER, "groups": INTEGER, "dropout": NUMBER},
    "diffusion": {"num_train_timesteps": INTEGER, "beta_start": NUMBER, "beta_end": NUMBER, "beta_schedule": STRING},
    "preprocessing": {"kind": STRING, "low": NUMBER, "high": NUMBER},
    "patch": {"size_px": INTEGER, "spacing_mm": NUMBER},
    "presets": {"*": {"invert": INTEGER, "decode": INTEGER, "refine": INTEGER, "refine_tol": NUMBER,
                      "spacing": set(SPACINGS)}},
}
TASK_SCHEMA = {
    "name": STRING, "description": STRING, "grade_names": [STRING], "positive_min_grade": INTEGER,
    "positive_rule": STRING, "metrics": ANY, "edit_gain": NUMBER,
    "probe": {"kind": {"svm", "logistic"}, "normal": [NUMBER], "bias": NUMBER, "mean": [NUMBER],
              "scale": [NUMBER], "prob_slope": NUMBER, "prob_intercept": NUMBER},
    "calibration": {"method": {"linear", "extremes", "poly"}, "coefficients": [NUMBER], "min_grade": INTEGER,
                    "max_grade": INTEGER, "anchor": NUMBER},
}
LATENT_STATS_SCHEMA = {"mean": [NUMBER], "std": [NUMBER], "ood_threshold": NUMBER, "ood_quantile": NUMBER,
                       "ood_score": STRING}


def _check_schema(value: Any, schema: Any, where: str) -> None:
    """Raise ValueError naming the first key (dotted path) whose value does not fit ``schema``."""
    if schema == ANY:
        return
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise ValueError(f"{where or 'the file'} must be a JSON object, got {type(value).__name__}")
        for key, item in value.items():
            if key in schema or "*" in schema:
                _check_schema(item, schema.get(key, schema.get("*")), f"{where}.{key}" if where else key)
    elif isinstance(schema, list):
        if not isinstance(value, list):
            raise ValueError(f"{where} must be a list, got {json.dumps(value)[:40]}")
        for n, item in enumerate(value):
            _check_schema(item, schema[0], f"{where}[{n}]")
    elif not _fits(value, schema):
        expected = f"one of {sorted(schema)}" if isinstance(schema, set) else f"a finite {schema}"
        raise ValueError(f"{where} must be {expected}, got {json.dumps(value)[:40]}")


def _fits(value: Any, leaf: str | set[str]) -> bool:
    if isinstance(leaf, set):
        return value in leaf
    if leaf == STRING:
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) if leaf == INTEGER else bool(np.isfinite(value))


def _build(root: Path, rel: str, data: bytes, factory, schema: dict[str, Any]):
    try:
        parsed = _parse_json(root, rel, data)
        _check_schema(parsed, schema, "")
        return factory(parsed)
    except BundleError:
        raise
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise BundleError(f"{root / rel}: invalid content: {detail}") from None


def _check_dimensions(root: Path, config: BundleConfig, stats: LatentStats, tasks: dict[str, TaskSpec]) -> None:
    z_dim = config.model.z_dim
    if stats.mean.shape[0] != z_dim:
        raise BundleError(f"{root / LATENT_STATS}: {stats.mean.shape[0]} dimensions, model z_dim is {z_dim}")
    for name, task in tasks.items():
        if task.probe.dim != z_dim:
            raise BundleError(f"{root / TASK_DIR / (name + '.json')}: probe has {task.probe.dim} dimensions, "
                              f"model z_dim is {z_dim}")


def _load_model(root: Path, data: bytes, config: DAEConfig):
    """The DAE built from config.json with the verified weights, float32, eval mode, on the CPU."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    from ..model.networks import make_model

    try:
        state = load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise BundleError(f"{root / WEIGHTS}: not readable as safetensors ({exc})") from None
    model = make_model(config)
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:2]
        raise BundleError(f"{root / WEIGHTS}: weights do not match config.json ({' '.join(first)})") from None
    return model.eval()


def load_bundle(path: str | os.PathLike, load_weights: bool = True) -> Bundle:
    """Verify and load a bundle folder. Raises BundleError naming the first bad file."""
    root = Path(path)
    if not root.is_dir():
        raise BundleError(f"{root}: bundle folder not found")
    files = _read_files(root)
    manifest_sha = _verify_manifest(root, files)
    config = _build(root, CONFIG, files[CONFIG], BundleConfig.from_dict, CONFIG_SCHEMA)
    stats = _build(root, LATENT_STATS, files[LATENT_STATS], LatentStats.from_dict, LATENT_STATS_SCHEMA)
    tasks = {}
    for rel in sorted(r for r in files if r.startswith(f"{TASK_DIR}/")):
        task = _build(root, rel, files[rel], TaskSpec.from_dict, TASK_SCHEMA)
        if rel != f"{TASK_DIR}/{task.name}.json":
            raise BundleError(f"{root / rel}: task name {task.name!r} does not match its file name")
        tasks[task.name] = task
    _check_dimensions(root, config, stats, tasks)
    model = _load_model(root, files[WEIGHTS], config.model) if load_weights else None
    return Bundle(path=root, config=config, latent_stats=stats, tasks=tasks,
                  model_card=files[MODEL_CARD].decode("utf-8", errors="replace"),
                  manifest_sha256=manifest_sha, model=model)


# ---------------------------------------------------------------------------------------------------------------
# Writing


def _json_bytes(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=False) + "\n").encode("utf-8")


def _write_manifest(root: Path) -> None:
    files = {p.relative_to(root).as_posix(): _sha256(p.read_bytes())
             for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST}
    atomic_write_bytes(root / MANIFEST, _json_bytes({"format_version": FORMAT_VERSION, "files": files}))


def write_bundle(path: str | os.PathLike, config: BundleConfig, model, latent_stats: LatentStats,
                 tasks: list[TaskSpec], model_card: str, fp16: bool = True, overwrite: bool = False) -> Path:
    """Write a complete bundle into a temporary sibling folder, then move it into place (never half-written)."""
    from safetensors.torch import save

    root = Path(path)
    if root.exists() and not overwrite:
        raise BundleError(f"{root}: already exists (pass overwrite=True to replace it)")
    import torch

    dtype = torch.float16 if fp16 else torch.float32
    state = {k: v.detach().cpu().to(dtype).contiguous() for k, v in model.state_dict().items()}
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}."))
    try:
        (staging / CONFIG).write_bytes(_json_bytes(config.to_dict()))
        # one metadata key: safetensors orders several keys arbitrarily, and identical weights should give
        # identical bytes so that re-bundling does not churn the repository
        (staging / WEIGHTS).write_bytes(save(state, metadata={"daecf": json.dumps({"bundle": config.name, "dtype": str(dtype)}, sort_keys=True)}))
        (staging / LATENT_STATS).write_bytes(_json_bytes(latent_stats.to_dict()))
        (staging / MODEL_CARD).write_text(model_card, encoding="utf-8")
        for task in tasks:
            _check_dimensions(staging, config, latent_stats, {task.name: task})
            (staging / TASK_DIR).mkdir(exist_ok=True)
            (staging / TASK_DIR / f"{task.name}.json").write_bytes(_json_bytes(task.to_dict()))
        _write_manifest(staging)
        staging.chmod(0o755)  # mkdtemp creates 0700
        if root.exists():
            shutil.rmtree(root)
        os.replace(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def add_task(path: str | os.PathLike, task: TaskSpec, overwrite: bool = False, model_card: str | None = None) -> None:
    """Add (or replace) one task probe in a verified bundle, optionally with a new model card; the DAE weights
    are neither read nor copied."""
    bundle = load_bundle(path, load_weights=False)
    if task.name in bundle.tasks and not overwrite:
        raise BundleError(f"{bundle.path}: task {task.name!r} already exists (pass overwrite=True)")
    _check_dimensions(bundle.path, bundle.config, bundle.latent_stats, {task.name: task})
    atomic_write_bytes(bundle.path / TASK_DIR / f"{task.name}.json", _json_bytes(task.to_dict()))
    if model_card is not None:
        atomic_write_bytes(bundle.path / MODEL_CARD, model_card.encode("utf-8"))
    _write_manifest(bundle.path)


# ---------------------------------------------------------------------------------------------------------------
# Finding bundles by name


def bundled_model_dirs() -> list[Path]:
    """Where named bundles live: $DAECF_MODELS (os.pathsep-separated), then the repository's or the installed
    extension's Resources/Models."""
    package = Path(__file__).resolve().parents[1]  # DAECounterfactualLib
    extra = [Path(p) for p in os.environ.get("DAECF_MODELS", "").split(os.pathsep) if p]
    candidates = extra + [package.parent.parent / "Resources" / "Models", package.parent / "Resources" / "Models"]
    return [p for p in dict.fromkeys(candidates) if p.is_dir()]


def available_bundles() -> dict[str, Path]:
    """Bundle name -> folder, for every folder with a manifest under the bundled model directories."""
    found: dict[str, Path] = {}
    for directory in bundled_model_dirs():
        for manifest in sorted(directory.glob(f"*/{MANIFEST}")):
            found.setdefault(manifest.parent.name, manifest.parent)
    return found


def resolve_bundle(name_or_path: str | os.PathLike) -> Path:
    """A bundle folder from a bundled model's name or a path."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    bundles = available_bundles()
    if str(name_or_path) in bundles:
        return bundles[str(name_or_path)]
    raise BundleError(f"{name_or_path}: neither a bundle folder nor a bundled model name "
                      f"(bundled: {', '.join(sorted(bundles)) or 'none'})")
