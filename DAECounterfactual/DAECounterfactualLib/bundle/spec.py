"""What a bundle holds, as objects: its config (architecture, diffusion, modality, preprocessing, patch, step
presets, what it was trained on), its tasks (probe, calibration, grade names, positive-class rule), and the loaded ``Bundle`` (with the
latent statistics of its training set and its OOD detector, ``model.ood``). Reading and writing the files is ``store``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BundleError, InputError
from .domain import TrainingDomain
from .real_data import RealDataCheck
from ..model.config import DAEConfig
from ..model.schedule import SPACINGS, DiffusionConfig, NoiseSchedule
from ..model.centring_detector import CentringDetector
from ..model.ood import LatentStats, MahalanobisDetector
from ..model.preprocessing import Preprocessing
from ..model.probe import Calibration, LinearProbe

FORMAT_VERSION = 1
MAX_EDIT_GAIN = 50.0
MAX_STEPS = 1000
MAX_REFINE = 20
MAX_ANDERSON = 5


@dataclass(frozen=True)
class StepPreset:
    """DDIM step counts for inversion (image -> x_T) and decoding (x_T -> image), the fixed-point iterations
    refining each inversion step (at most ``refine``; fewer once one changes x by less than ``refine_tol``), how
    many earlier iterates Anderson mixing combines (0: plain iteration) and the timestep spacing (see
    diffusion.ddim_invert and NoiseSchedule.timesteps)."""

    invert: int
    decode: int
    refine: int = 0
    refine_tol: float = 0.0
    spacing: str = "uniform"
    anderson: int = 0

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
        if not _is_int(self.anderson) or not 0 <= self.anderson <= MAX_ANDERSON:
            raise InputError(f"anderson must be an integer in [0, {MAX_ANDERSON}], got {self.anderson!r}")

    def inversion_options(self) -> dict:
        """Keyword arguments of diffusion.ddim_invert besides the step count."""
        return {"refine": self.refine, "refine_tol": self.refine_tol, "spacing": self.spacing,
                "anderson": self.anderson}

    def doubled(self) -> "StepPreset":
        """Twice the inversion and decoding steps, the same refinement: where a step's iterations did not reach
        their tolerance, halving the step is what converges (docs/PERFORMANCE.md)."""
        return replace(self, invert=min(2 * self.invert, MAX_STEPS), decode=min(2 * self.decode, MAX_STEPS))

    @property
    def inversion_calls(self) -> int:
        """Network calls of one inversion, at most (a tolerance can stop refinements early)."""
        return self.invert * (1 + self.refine)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


PATCH_ROWS = ("axial", "spine")  # the patch's rows run along RAS -z, or along the spine between its neighbours
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
    trained_on: TrainingDomain | None = None  # None: an older bundle that does not say (no level checks)
    patch_rows: str = "axial"  # "spine": rows along the local spine axis (inference.spine_axis), not RAS -z

    def __post_init__(self) -> None:
        if self.patch_size_px != self.model.image_size:
            raise ValueError(f"patch_size_px {self.patch_size_px} differs from model image_size "
                             f"{self.model.image_size}")
        if not self.patch_spacing_mm > 0:
            raise ValueError(f"patch_spacing_mm must be positive, got {self.patch_spacing_mm}")
        if not self.name or "/" in self.name:
            raise ValueError(f"invalid bundle name {self.name!r}")
        if self.patch_rows not in PATCH_ROWS:
            raise ValueError(f"patch rows {self.patch_rows!r}: expected one of {PATCH_ROWS}")
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

    def outside(self, level: str | None) -> str:
        """Why a target at ``level`` lies outside what the bundle was trained on ("" if it does not, or if the
        level or the training domain is unknown)."""
        return self.trained_on.outside(level) if self.trained_on else ""

    def to_dict(self) -> dict[str, Any]:
        data = {
            "format_version": FORMAT_VERSION, "name": self.name, "modality": self.modality,
            "description": self.description, "model": self.model.to_dict(),
            "diffusion": vars(self.diffusion).copy(), "preprocessing": self.preprocessing.to_dict(),
            "patch": {"size_px": self.patch_size_px, "spacing_mm": self.patch_spacing_mm}
            | ({"rows": self.patch_rows} if self.patch_rows != "axial" else {}),
            "presets": {k: vars(p).copy() for k, p in self.presets.items()},
        }
        return data | ({"trained_on": self.trained_on.to_dict()} if self.trained_on else {})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BundleConfig":
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported format_version {data.get('format_version')!r} (expected {FORMAT_VERSION})")
        return cls(
            name=str(data["name"]), modality=str(data["modality"]), description=str(data.get("description", "")),
            model=DAEConfig.from_dict(data["model"]), diffusion=DiffusionConfig(**data["diffusion"]),
            preprocessing=Preprocessing.from_dict(data["preprocessing"]),
            patch_size_px=int(data["patch"]["size_px"]), patch_spacing_mm=float(data["patch"]["spacing_mm"]),
            patch_rows=str(data["patch"].get("rows", "axial")),
            presets={k: StepPreset(**v) for k, v in data["presets"].items()},
            trained_on=TrainingDomain.from_dict(data["trained_on"]) if "trained_on" in data else None,
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
    real_data: RealDataCheck | None = None  # its acceptance on real patients, where measured

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
    def caution(self) -> str:
        """What every grade of this task must be shown with: "" unless its real-patient figures miss a target."""
        return self.real_data.caution if self.real_data else ""

    @property
    def positive_rule(self) -> str:
        return f"grade >= {self.positive_min_grade} ({self.grade_names[self.positive_min_grade]})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "grade_names": list(self.grade_names),
                "positive_min_grade": self.positive_min_grade, "positive_rule": self.positive_rule,
                "probe": self.probe.to_dict(), "calibration": self.calibration.to_dict(), "metrics": self.metrics,
                "edit_gain": self.edit_gain} | ({"real_data": self.real_data.to_dict()} if self.real_data else {})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TaskSpec":
        return cls(name=str(data["name"]), description=str(data.get("description", "")),
                   grade_names=tuple(str(g) for g in data["grade_names"]),
                   positive_min_grade=int(data["positive_min_grade"]), probe=LinearProbe.from_dict(data["probe"]),
                   calibration=Calibration.from_dict(data["calibration"]), metrics=dict(data.get("metrics", {})),
                   edit_gain=float(data.get("edit_gain", 1.0)),
                   real_data=RealDataCheck.from_dict(data["real_data"]) if "real_data" in data else None)


@dataclass
class Bundle:
    path: Path
    config: BundleConfig
    latent_stats: LatentStats
    tasks: dict[str, TaskSpec]
    model_card: str
    manifest_sha256: str
    model: Any = None  # DiffusionAutoencoder (float32, eval, CPU); None when loaded without weights
    ood_detector: MahalanobisDetector | None = None  # ood.json + ood.safetensors, where the bundle has them
    centring_detector: CentringDetector | None = None  # centring.json + centring.safetensors, where it has them

    @property
    def ood(self) -> LatentStats | MahalanobisDetector:
        """What flags out-of-distribution latents: the bundle's detector, or (older bundles) its z-score statistics."""
        return self.latent_stats if self.ood_detector is None else self.ood_detector

    @property
    def ood_fitted_on(self) -> str:
        """What the flagging latents are of, in words, for a flag's reason ("": the training images)."""
        return "" if self.ood_detector is None else self.ood_detector.fitted_on

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
