"""Explainer: grade and explain preprocessed 2D patches with a loaded bundle. Arrays in, arrays out.

The Slicer Logic, the CLI, the demo, the scripts and the tests all call this one implementation. Images are
float32 (N, C, H, W) already in the model range [-1, 1] (see ``preprocessing.py``).
An explanation inverts the patch once (x_T is cached per patch; again with twice the steps where a step did not
reach the preset's tolerance, as coarse steps fail on some real patches) and decodes the reconstruction, one
counterfactual per grade, the binary reflection and the sweep together in one batch that shares x_T; it then
grades its own counterfactuals, so a panel the model does not read as its grade can say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..bundle.spec import Bundle, StepPreset, TaskSpec
from ..model.diffusion import StepCallback, ddim_invert, ddim_sample, unconverged_steps
from ..model.schedule import NoiseSchedule
from ..errors import InputError


@dataclass
class Grades:
    """Per-image read-out of one task; every array has shape (N,)."""

    distance: np.ndarray
    probability: np.ndarray
    score: np.ndarray
    grade: np.ndarray
    ood_score: np.ndarray
    ood: np.ndarray
    ood_threshold: float = float("nan")  # the score above which ``ood`` is set (the bundle's detector)
    ood_fitted_on: str = ""  # what the detector's latents are of, for the flag's reason ("": the training images)
    caution: str = ""  # the task's, for every image: its grades missed their targets on real patients (TaskSpec)


@dataclass
class Explanation:
    task: str
    grade_names: tuple[str, ...]
    grades: Grades                    # of the input patch
    reconstruction: np.ndarray        # (C, H, W)
    counterfactuals: np.ndarray       # (n_grades, C, H, W), index = target grade
    target_distances: np.ndarray      # (n_grades,)
    reflection: np.ndarray            # (C, H, W), binary counterfactual
    sweep: np.ndarray                 # (n_sweep, C, H, W)
    sweep_distances: np.ndarray       # (n_sweep,)
    preset: StepPreset                # the steps drawn with: the preset asked for, or twice its steps (``retraced``)
    reencoded: Grades                 # the model's grades of what it drew: each grade's counterfactual, the reflection
    reencoded_latents: np.ndarray     # (n_grades + 1, z_dim): their z_sem
    retraced: bool = True             # every inversion step reached its tolerance, so decoding retraces the image

    @property
    def differences(self) -> np.ndarray:
        """Counterfactual minus reconstruction, per grade: what the model changes to reach each grade."""
        return self.counterfactuals - self.reconstruction[None]

    @property
    def panel_grades(self) -> np.ndarray:
        """The grade the model gives each grade's counterfactual, encoded again (index = the grade it was made for)."""
        return self.reencoded.grade[:len(self.grade_names)]

    @property
    def unreached(self) -> list[int]:
        """Grades whose counterfactual the model itself grades otherwise: panels not to be read as that grade."""
        return [g for g, read in enumerate(self.panel_grades) if read != g]


def check_images(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[1:] != (channels, size, size):
        raise InputError(f"expected images of shape (N, {channels}, {size}, {size}), got {images.shape}")
    if not np.all(np.isfinite(images)):
        raise InputError("images contain NaN or infinite values")
    return images


@torch.inference_mode()
def encode_images(model, images: np.ndarray, batch_size: int = 64, device: str | torch.device = "cpu") -> np.ndarray:
    """z_sem of each image, float64 (N, z_dim), computed in batches."""
    parts = [model.encode(torch.from_numpy(np.asarray(images[i:i + batch_size], dtype=np.float32)).to(device))
             .double().cpu().numpy() for i in range(0, len(images), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, model.config.z_dim))


class Explainer:
    def __init__(self, bundle: Bundle, device: str = "cpu", batch_size: int = 64):
        self.bundle = bundle
        self.device = torch.device(device)
        self.model = bundle.require_model().to(self.device)
        if self.device.type == "cpu":  # oneDNN's convolutions are faster on NHWC tensors (docs/PERFORMANCE.md)
            self.model.to(memory_format=torch.channels_last)
        self.schedule = NoiseSchedule(bundle.config.diffusion)
        self.batch_size = batch_size
        self._x_T_cache: dict[tuple, torch.Tensor] = {}

    @property
    def config(self):
        return self.bundle.config

    def preset(self, name_or_preset: str | StepPreset) -> StepPreset:
        return self.config.preset(name_or_preset)

    def _tensor(self, images: np.ndarray) -> torch.Tensor:
        images = check_images(images, self.config.model.image_size, self.config.model.in_channels)
        return torch.from_numpy(images).to(self.device)

    def encode(self, images: np.ndarray) -> np.ndarray:
        images = check_images(images, self.config.model.image_size, self.config.model.in_channels)
        return encode_images(self.model, images, self.batch_size, self.device)

    def grade_latents(self, z: np.ndarray, task: str | TaskSpec) -> Grades:
        spec = task if isinstance(task, TaskSpec) else self.bundle.task(task)
        distance = spec.probe.distance(z)
        ood = self.bundle.ood
        return Grades(distance=distance, probability=spec.probe.probability(z),
                      score=spec.calibration.score(distance), grade=spec.calibration.grade(distance),
                      ood_score=ood.ood_score(z), ood=ood.is_ood(z), ood_threshold=float(ood.ood_threshold),
                      ood_fitted_on=self.bundle.ood_fitted_on, caution=spec.caution)

    def grade(self, images: np.ndarray, task: str | TaskSpec) -> Grades:
        return self.grade_latents(self.encode(images), task)

    def forget_inversions(self) -> None:
        """Drop the cached x_T (benchmarks time cold explanations; nothing else needs this)."""
        self._x_T_cache.clear()

    def invert(self, image: np.ndarray, z: np.ndarray, steps: StepPreset, callback: StepCallback | None = None):
        """x_T of one image, cached by (pixels, steps) so repeated explanations skip the inversion."""
        return self._invert(image, z, steps, callback)[0]

    @torch.inference_mode()
    def _invert(self, image: np.ndarray, z: np.ndarray, steps: StepPreset,
                callback: StepCallback | None = None) -> tuple[torch.Tensor, bool]:
        """x_T of one image, and whether every inversion step reached the preset's tolerance (always, without one)."""
        key = (np.ascontiguousarray(image, dtype=np.float32).tobytes(), steps.invert,
               *steps.inversion_options().values())
        if key not in self._x_T_cache:
            x = self._tensor(image)
            z_t = torch.from_numpy(np.asarray(z, dtype=np.float32)).to(self.device)
            # one patch at a time (with each step count it was inverted at): memory stays flat in long sessions
            self._x_T_cache = {k: v for k, v in self._x_T_cache.items() if k[0] == key[0]}
            log = []
            x_T = ddim_invert(self.model, x, z_t, self.schedule, steps.invert, callback,
                              refine_log=log if steps.refine_tol > 0 else None, **steps.inversion_options())
            self._x_T_cache[key] = (x_T, not unconverged_steps(log, steps.refine_tol))
        return self._x_T_cache[key]

    @torch.inference_mode()
    def decode(self, x_T: torch.Tensor, z: np.ndarray, steps: StepPreset, callback: StepCallback | None = None):
        z_t = torch.from_numpy(np.asarray(z, dtype=np.float32)).to(self.device)
        return ddim_sample(self.model, x_T, z_t, self.schedule, steps.decode, callback,
                           spacing=steps.spacing).clamp(-1, 1).cpu().contiguous().numpy()

    def explain(self, image: np.ndarray, task: str | TaskSpec, preset: str | StepPreset = "standard",
                sweep_count: int = 9, callback: StepCallback | None = None, batched: bool = True) -> Explanation:
        """Reconstruction, a counterfactual at every grade, the reflection and a sweep, from one x_T.

        ``batched=False`` decodes every latent on its own, as the paper's reference code does (benchmarks)."""
        spec = task if isinstance(task, TaskSpec) else self.bundle.task(task)
        steps = self.preset(preset)
        image = check_images(image, self.config.model.image_size, self.config.model.in_channels)[:1]
        z = self.encode(image)
        grades = self.grade_latents(z, spec)
        n_grades = len(spec.grade_names)
        targets = np.array([spec.calibration.inverse(g) for g in range(n_grades)])
        span = max(np.abs(targets).max(), abs(grades.distance[0])) * 1.25
        sweep_distances = np.linspace(-span, span, sweep_count) if sweep_count else np.zeros(0)
        gain = spec.edit_gain
        latents = np.concatenate([z, spec.probe.move_to_distance(np.repeat(z, n_grades, 0), targets, gain),
                                  spec.probe.reflect(z, gain), spec.probe.sweep(z, sweep_distances, gain)
                                  if sweep_count else np.zeros((0, z.shape[1]))])
        groups = [latents] if batched else [latents[i:i + 1] for i in range(len(latents))]
        total = steps.invert + steps.decode * len(groups)
        x_T, retraced = self._invert(image, z, steps, _offset(callback, 0, total))
        done = steps.invert
        if not retraced:  # a step too coarse for this image: halve every step, once
            steps = steps.doubled()
            total = done + steps.invert + steps.decode * len(groups)
            x_T, retraced = self._invert(image, z, steps, _offset(callback, done, total))
            done += steps.invert
        decoded = np.concatenate([self.decode(x_T, group, steps, _offset(callback, done + k * steps.decode, total))
                                  for k, group in enumerate(groups)])
        # an edit the decoder does not draw far enough would pass for the grade it was made for: grade what was drawn
        drawn = self.encode(decoded[1:2 + n_grades])
        return Explanation(task=spec.name, grade_names=spec.grade_names, grades=grades, reconstruction=decoded[0],
                           counterfactuals=decoded[1:1 + n_grades], target_distances=targets,
                           reflection=decoded[1 + n_grades], sweep=decoded[2 + n_grades:],
                           sweep_distances=sweep_distances, preset=steps,
                           reencoded=self.grade_latents(drawn, spec), reencoded_latents=drawn, retraced=retraced)


def _offset(callback: StepCallback | None, done: int, total: int) -> StepCallback | None:
    """Report inversion and decoding steps as one progress range 1..total."""
    if callback is None:
        return None
    return lambda i, _n: callback(done + i, total)
