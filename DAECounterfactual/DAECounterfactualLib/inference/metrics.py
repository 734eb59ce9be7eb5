"""Image similarity metrics for reconstructions and counterfactuals, on images in the model range [-1, 1]."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, laplace

DATA_RANGE = 2.0  # [-1, 1]


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = mse(a, b)
    return float("inf") if error == 0 else float(10 * np.log10(DATA_RANGE**2 / error))


def ssim(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> float:
    """Mean structural similarity (Wang et al. 2004, Gaussian window σ=1.5) over the last two axes,
    averaged over channels and images."""
    a = np.asarray(a, np.float64).reshape(-1, *np.shape(a)[-2:])
    b = np.asarray(b, np.float64).reshape(-1, *np.shape(b)[-2:])
    c1, c2 = (0.01 * DATA_RANGE) ** 2, (0.03 * DATA_RANGE) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return gaussian_filter(x, sigma=(0, sigma, sigma), mode="reflect", truncate=3.5)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(index.mean())


def fine_texture(images: np.ndarray) -> float:
    """Mean absolute Laplacian over the last two axes: the energy of pixel-scale texture (grain, noise, sharp
    edges)."""
    x = np.asarray(images, np.float64).reshape(-1, *np.shape(images)[-2:])
    return float(np.mean([np.abs(laplace(image, mode="reflect")).mean() for image in x]))


def grain(image: np.ndarray, reference: np.ndarray) -> float:
    """Fine texture of ``image`` relative to ``reference`` (its reconstruction): about 1 when an edit changes
    anatomy, well above 1 when it reaches its grade by adding grain the encoder reads as pathology."""
    base = fine_texture(reference)
    return float("nan") if base == 0 else fine_texture(image) / base
