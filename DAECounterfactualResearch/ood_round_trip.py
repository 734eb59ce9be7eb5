"""The DDIM round trip as an OOD score (issue 23): an image is inverted to x_T and decoded back with its own z_sem,
and the mean squared difference is its score; an image unlike the training set should come back worse. It costs
two network calls per step and image where the latent scores cost one encoder call, so it is measured on an even
subsample of each set, with few steps and no refinement.
"""

from __future__ import annotations

import numpy as np
import torch

from DAECounterfactualLib.model.diffusion import ddim_invert, ddim_sample

STEPS = 5


def subsample(count: int, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` items evenly spread over ``count``."""
    return np.unique(np.linspace(0, count - 1, min(count, limit)).round().astype(int)) if count else np.zeros(0, int)


@torch.inference_mode()
def round_trip_errors(explainer, images: np.ndarray, steps: int = STEPS, batch_size: int = 32) -> np.ndarray:
    """Mean squared difference between each image and its DDIM reconstruction (``steps`` each way)."""
    errors = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size], dtype=np.float32))
        z = torch.from_numpy(explainer.encode(x.numpy()).astype(np.float32))
        x_T = ddim_invert(explainer.model, x, z, explainer.schedule, steps)
        back = ddim_sample(explainer.model, x_T, z, explainer.schedule, steps).clamp(-1, 1)
        errors.append(((back - x) ** 2).mean(dim=(1, 2, 3)).double().numpy())
    return np.concatenate(errors) if errors else np.zeros(0)


def round_trip_sets(explainer, sets, limit: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Errors and cases of an even subsample of every held-out and shift set (four times ``limit`` of the held-out
    set, whose quantiles set the thresholds)."""
    errors, groups = {}, {}
    for patch_set in [sets.held_out, *sets.shifts]:
        chosen = subsample(len(patch_set), 4 * limit if patch_set.name == "id" else limit)
        errors[patch_set.name] = round_trip_errors(explainer, patch_set.images[chosen])
        groups[patch_set.name] = patch_set.groups[chosen]
    return errors, groups
