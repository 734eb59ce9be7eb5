"""Measuring step presets: the inversion's network calls and the reconstruction error of a candidate preset, and
where fixed-point refinement of the inversion converges (scripts/tune_presets.py prints them).
"""

from __future__ import annotations

import numpy as np
import torch

from DAECounterfactualLib.bundle.spec import StepPreset
from DAECounterfactualLib.cli.bench import counting_unet_calls
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualLib.model.diffusion import ddim_invert, ddim_sample


def parse_candidate(text: str) -> StepPreset:
    """INVERT,DECODE,REFINE[,TOL[,SPACING[,ANDERSON]]] (scripts/tune_presets.py)."""
    fields = text.split(",")
    numbers = [int(f) for f in fields[:3]] + [float(f) for f in fields[3:4]]
    return StepPreset(*numbers, *fields[4:5], *[int(f) for f in fields[5:6]])


@torch.inference_mode()
def measure(explainer: Explainer, images: np.ndarray, preset: StepPreset) -> dict[str, float]:
    """Mean inversion calls per image (one image at a time, as in the module) and mean reconstruction MSE."""
    model, calls, errors = explainer.model, 0, []
    for image in images:
        x = torch.from_numpy(image[None])
        z = model.encode(x)
        with counting_unet_calls(model) as counts:
            x_T = ddim_invert(model, x, z, explainer.schedule, preset.invert, **preset.inversion_options())
        calls += counts["calls"]
        decoded = ddim_sample(model, x_T, z, explainer.schedule, preset.decode, spacing=preset.spacing)
        errors.append(float(((decoded.clamp(-1, 1) - x) ** 2).mean()))
    return {"inversion_calls": calls / len(images), "recon_mse": float(np.mean(errors))}


@torch.inference_mode()
def refinement_residuals(explainer: Explainer, images: np.ndarray, steps: int, iterations: int = 8) -> None:
    """Change of x (RMS, worst image) made by each fixed-point iteration at each inversion step (uniform spacing):
    shows which steps need refinement and which have converged after two or three iterations."""
    model, log = explainer.model, []
    x = torch.from_numpy(images)
    ddim_invert(model, x, model.encode(x), explainer.schedule, steps, refine=iterations, refine_log=log)
    for t, changes in log:
        print(f"t={t:4d} " + " ".join(f"{r:.1e}" for r in changes), flush=True)
