"""Centring clicks along the spine, for research: the latents of every crop around each body's centre, the centring
detector a bundle ships (``model.centring_detector``: two Ledoit-Wolf Gaussians of the centred and the off-centre
crops' latents) with its model-card section, and the ways of centring a study compares."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from DAECounterfactualLib.inference.centring import best_row, centring_scores, crops_along_rows
from DAECounterfactualLib.model.centring_detector import CentringDetector

from .model_card import with_section
from .ood_detectors import fit_mahalanobis

CENTRING_HEADING = "## Centring a click"
OFF_MM = 3.0  # a crop this far from the centroid counts as off it (1.5, 3 and 4.5 mm were tried: docs/RESULTS.md)
COMPONENTS = 128  # principal directions the Gaussians live in (16-512 were tried: docs/RESULTS.md)


def crop_latents(explainer, wide: np.ndarray, margin: int) -> np.ndarray:
    """z_sem of every crop along the rows of each patch of ``wide`` ((N, 1, size + 2 margin, size + 2 margin)),
    cut in the middle columns: (N, 2 margin + 1, z_dim), the middle crop at index ``margin``."""
    size = wide.shape[-1] - 2 * margin
    crops = np.stack([crops_along_rows(image[0, :, margin:margin + size], size) for image in wide])
    z = explainer.encode(crops.reshape(-1, *crops.shape[2:]))
    return z.reshape(len(wide), 2 * margin + 1, -1)


def crop_offsets_mm(crops: int, spacing_mm: float) -> np.ndarray:
    """How far each of ``crops`` crops along the rows lies from the middle one, in mm (positive: inferior)."""
    return (np.arange(crops) - crops // 2) * spacing_mm


def fit_centring_detector(z_crops: np.ndarray, spacing_mm: float, off_mm: float = OFF_MM,
                          components: int = COMPONENTS, fitted_on: str = "") -> CentringDetector:
    """Gaussians of the middle crops' latents and of those ``off_mm`` or more from the middle (``z_crops`` as
    ``crop_latents`` gives them, each patch cut at a body's centroid), in the ``components`` leading principal
    directions of all the crops."""
    offsets = crop_offsets_mm(z_crops.shape[1], spacing_mm)
    off = np.abs(offsets) >= off_mm - 1e-9
    if not off.any():
        raise ValueError(f"no crop lies {off_mm} mm from the middle; the crops reach {offsets.max():g} mm")
    every = z_crops.reshape(-1, z_crops.shape[-1]).astype(np.float64)
    mean = every.mean(axis=0)
    basis = np.linalg.svd(every - mean, full_matrices=False)[2][:components]

    def project(z: np.ndarray) -> np.ndarray:
        return (z - mean) @ basis.T

    centred = fit_mahalanobis(project(z_crops[:, len(offsets) // 2]))
    away = fit_mahalanobis(project(z_crops[:, off].reshape(-1, z_crops.shape[-1])))
    return CentringDetector(mean, basis, centred.mean, centred.precision, away.mean, away.precision, off_mm,
                            fitted_on)


def centring_card_section(detector: CentringDetector, fit: str, command: str) -> str:
    return "\n".join([
        CENTRING_HEADING,
        "- A clicked point is moved along the spine, by whole patch pixels within 9 mm, to the crop this detector "
        f"finds most centred (`centring.json`, `centring.safetensors`; `{command}`): a Ledoit-Wolf Gaussian of the "
        f"latents of crops cut at each body's centroid, against one of crops {detector.off_mm:g} mm or more above or "
        f"below it, both in the crops' {len(detector.basis)} leading principal directions and of {fit}. "
        "docs/RESULTS.md (\"Does a grade hold when the click is off the centre?\") measures it on patients this "
        "bundle never saw.", ""])


def with_centring_section(card: str, section: str) -> str:
    return with_section(card, CENTRING_HEADING, section)


def centring_ways(bundle, z_crops: np.ndarray) -> dict[str, np.ndarray]:
    """Rows each patch's point is moved by (positive: inferior), per way: as clicked, centred as the bundle centres
    (``centring_scores``), and, where that is its centring detector, by the OOD score it replaced. ``z_crops`` as
    ``crop_latents`` gives them."""
    n, k, dim = z_crops.shape

    def moved(scores: np.ndarray) -> np.ndarray:
        return np.array([best_row(row) for row in scores.reshape(n, k)])

    flat = z_crops.reshape(-1, dim)
    ways = {"as clicked": np.zeros(n, int), "centred": moved(centring_scores(bundle, flat))}
    if bundle.centring_detector is not None:
        ways["centred by the OOD score"] = moved(bundle.ood.ood_score(flat))
    return ways


def chosen_latents(z_crops: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """Each patch's latent of the crop ``moved`` rows from the middle."""
    return z_crops[np.arange(len(z_crops)), z_crops.shape[1] // 2 + moved]


@dataclass(frozen=True)
class Placement:
    """What one way of centring does to the clicks of one shift: the latents of the crops it picks, and how far it
    moved the median click (mm)."""

    latents: np.ndarray
    median_move_mm: float


def placements(bundle, z_crops: dict[str, np.ndarray]) -> dict[str, dict[str, Placement]]:
    """Per way of centring (``centring_ways``), per shift of ``z_crops`` (shift name -> ``crop_latents``): the
    crops it picks; the ways in the order ``centring_ways`` gives them."""
    spacing = bundle.config.patch_spacing_mm
    moves = {name: centring_ways(bundle, z) for name, z in z_crops.items()}
    return {way: {name: Placement(chosen_latents(z_crops[name], moves[name][way]),
                                  float(np.median(np.abs(moves[name][way]))) * spacing) for name in z_crops}
            for way in next(iter(moves.values()))}


def write_placement_study(path: Path, record: dict, columns: dict[str, str]) -> None:
    """Write a click-placement study's record as JSON and print a line per way and shift: each figure of
    ``columns`` (label: key), with its interval where the record has one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1), encoding="utf-8")

    def shown(row: dict, key: str) -> str:
        interval = row.get("intervals", {}).get(key)
        return f"{row[key]:.2f}" + (f" ({interval[0]:.2f}-{interval[1]:.2f})" if interval else "")

    for way, rows in record["figures"].items():
        for name, row in rows.items():
            print(f"{way:28s} {name:18s} " + "  ".join(f"{label} {shown(row, key)}" for label, key in columns.items()))
    print(f"wrote {path}")
