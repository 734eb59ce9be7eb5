"""The OOD detector a bundle ships (issue 23), as chosen on the shift sets: a Ledoit-Wolf Mahalanobis distance fitted
on the bundle's training latents, flagged above a quantile of its held-out in-distribution scores; and the model
card's section that says so.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from DAECounterfactualLib.model.ood import MahalanobisDetector

from .model_card import with_section
from .ood_detectors import fit_mahalanobis

OOD_HEADING = "## Out-of-distribution flag"
STATS_SENTENCE = "Out-of-distribution inputs are flagged from the latent statistics of the training set."
DETECTOR_SENTENCE = "Out-of-distribution inputs are flagged as the section above says."


def fit_detector(z_fit: np.ndarray, z_held: np.ndarray, quantile: float = 0.995) -> MahalanobisDetector:
    """Mean and shrunk precision of ``z_fit``; threshold = ``quantile`` of the held-out scores, computed with the
    arrays as stored."""
    draft = _unthresholded(z_fit, quantile)
    return replace(draft, ood_threshold=float(np.quantile(draft.ood_score(z_held), quantile)))


def fit_detector_cross_fitted(z: np.ndarray, groups: np.ndarray, quantile: float = 0.995) -> MahalanobisDetector:
    """For a bundle with no held-out patient (every one trained the DAE): mean and precision of all of ``z``;
    threshold = ``quantile`` of out-of-patient scores, each patient's latents scored by the detector of the others
    (what a new patient would see, rather than the training latents' own, smaller scores)."""
    groups = np.asarray(groups)
    if len(set(groups)) < 2:
        raise ValueError("cross-fitting the threshold needs latents of at least two patients")
    held = np.concatenate([_unthresholded(z[groups != g], quantile).ood_score(z[groups == g])
                           for g in np.unique(groups)])
    return replace(_unthresholded(z, quantile), ood_threshold=float(np.quantile(held, quantile)))


def _unthresholded(z_fit: np.ndarray, quantile: float) -> MahalanobisDetector:
    fitted = fit_mahalanobis(z_fit)
    return MahalanobisDetector(fitted.mean, fitted.precision, ood_threshold=1.0, ood_quantile=quantile)


def ood_card_section(detector: MahalanobisDetector, fit: str, held: str, command: str) -> str:
    fitted_on = ([f"- Its latents are those of {detector.fitted_on}: an image unlike them is flagged even where the "
                  "DAE was trained on its like, and the flag's reason says what it was compared with."]
                 if detector.fitted_on else [])
    return "\n".join([
        OOD_HEADING,
        f"- Flagged when the squared Mahalanobis distance of z_sem per dimension exceeds {detector.ood_threshold:.4g}: "
        f"the {100 * detector.ood_quantile:g}th percentile of {held}. Mean and Ledoit-Wolf covariance of {fit} "
        f"(`ood.json`, `ood.safetensors`; `{command}`).", *fitted_on,
        "- Chosen on shift sets (other modality, spine region, target, metal, units, crop-cut, noise, blur, "
        "non-spine images, fractures beyond the training range) over the per-dimension z-score of "
        "`latent_stats.json`, which is kept for older readers: docs/RESULTS.md (issue 23). What it cannot flag, "
        "e.g. heavy noise or fractures beyond the training range, is listed there.", ""])


def with_ood_section(card: str, section: str) -> str:
    """The model card with its OOD section replaced (or put before Intended use, else at the end), and the
    intended-use sentence that named the z-score statistics pointed at it."""
    return with_section(card.replace(STATS_SENTENCE, DETECTOR_SENTENCE), OOD_HEADING, section)
