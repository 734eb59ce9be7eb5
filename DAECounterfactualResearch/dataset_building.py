"""Building a 2D training set (one .npz + manifest.json) of sagittal vertebra patches or 2D images; the command is
scripts/build_dataset.py.

The .npz follows the project's training-set format (loadable with allow_pickle=False): images (N, C, H, W)
float16 in the model range [-1, 1], grades int16 (-1 = not graded), split, case_id, and per patch level,
label, group, lateral_offset_mm, patch_to_ras (N, 4, 4), simulated, fracture_kind, requested/measured height loss.
Splits are patient-level: all patches of a case, and all cases of one subject group, land in one split.
The manifest records every input file with its sha256, the settings, and counts per split and grade.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.inference.geometry import extract_sagittal_patch, fill_fraction
from DAECounterfactualLib.inference.spine_axis import tilts_along_spine
from DAECounterfactualLib.io.files import sha256_file
from DAECounterfactualLib.io.volumes import (
    Volume,
    VertebraPosition,
    centroids_from_mask,
    read_grade_table,
    read_verse_centroids,
    read_volume,
    vertebral_bodies,
)
from DAECounterfactualLib.model.preprocessing import Preprocessing

from .datasets import REQUIRED, TrainingSet, medmnist_training_set
from .patch_fractures import body_masks, fracture_in_patch
from .scanner_augmentation import draw_augmentations
from .synthesis import achieved_height_loss, genant_grade, make_spine_phantom

SPLITS = ("train", "val", "test")
MAX_LOSS_ERROR = 0.05  # simulated fractures whose measured height loss misses the request by more are dropped


# ----------------------------------------------------------------------------------------------------------------
# Cases: one scan with its vertebra positions and grades, loaded lazily


@dataclass
class SpineCase:
    case: str
    volume: Volume
    positions: list[VertebraPosition]
    grades: dict[int, int | None]
    body_mask: Volume | None = None  # vertebral-body instance mask, needed to simulate fractures
    origin: str = "real"  # real / phantom
    kinds: dict[int, str] = field(default_factory=dict)  # fracture kind already in the scan (phantoms)
    requested_loss: dict[int, float] = field(default_factory=dict)
    contrast: str = ""  # image contrast (contrast_family): lets training balance sequences


@dataclass
class CaseSpec:
    case: str
    group: str
    inputs: list[Path]
    load: Callable[[], SpineCase]


def ct_case_specs(root: Path) -> list[CaseSpec]:
    """Every spine_ct/<case>/ with ct.nii.gz, vert_msk.nii.gz and ctd.json; grades from spine_ct/vertebrae.csv."""
    folder = root / "spine_ct"
    table_path = folder / "vertebrae.csv"
    if not table_path.exists():
        raise InputError(f"{table_path}: no such file (is --data-root right?)")
    table = read_grade_table(table_path, label_column="label", grade_column="morph_grade")
    specs = []
    for case_dir in sorted(d for d in folder.iterdir() if (d / "ct.nii.gz").exists()):
        inputs = [case_dir / name for name in ("ct.nii.gz", "vert_msk.nii.gz", "ctd.json", "subreg_msk.nii.gz")]
        inputs = [p for p in inputs if p.exists()] + [table_path]
        specs.append(CaseSpec(case_dir.name, f"ct:{subject_of(case_dir.name)}", inputs, _ct_loader(case_dir, table)))
    return specs


def data_source(group: str) -> str:
    """The data source of a patient group ``SOURCE:subject`` (``VB1``, ``VB3``, ``ct``, ``phantom``)."""
    return group.split(":")[0]


def subject_of(case: str) -> str:
    """The patient of a series (BIDS ``..._ses-...`` names one session): sessions of one patient share a split."""
    return case.split("_ses-")[0]


def _ct_loader(case_dir: Path, table: dict) -> Callable[[], SpineCase]:
    def load() -> SpineCase:
        volume = read_volume(case_dir / "ct.nii.gz")
        mask = read_volume(case_dir / "vert_msk.nii.gz")
        positions = read_verse_centroids(case_dir / "ctd.json", volume)
        if (case_dir / "subreg_msk.nii.gz").exists():  # whole-vertebra mask: keep the body sub-regions only
            mask = vertebral_bodies(mask, read_volume(case_dir / "subreg_msk.nii.gz"))
        grades = {p.label: table.get((case_dir.name, p.label)) for p in positions}
        return SpineCase(case_dir.name, volume, positions, grades, body_mask=mask, contrast="CT")

    return load


def mri_case_specs(root: Path) -> list[CaseSpec]:
    """The lumbar MRIs listed in spine_mri/cases.csv (duplicates skipped), grouped by subject."""
    folder = root / "spine_mri"
    table_path = folder / "vertebrae_morphometry.csv"
    cases_path = folder / "cases.csv"
    for path in (table_path, cases_path):
        if not path.exists():
            raise InputError(f"{path}: no such file (is --data-root right?)")
    table = read_grade_table(table_path, label_column="mask_label", grade_column="morph_grade")
    with cases_path.open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if not r.get("duplicate_of")]
    specs = []
    for row in rows:
        case, dataset = row["case"], row["dataset"]
        base = folder / dataset.lower() / case
        inputs = [Path(f"{base}_{name}") for name in ("img.nii.gz", "msk.nii.gz", "ctd.json")] + [table_path, cases_path]
        group = f"{dataset}:{row['subject_group'].split(' (')[0]}"
        loader = _mri_loader(base, case, dataset == "VB1", table, contrast_family(row.get("sequence", "")))
        specs.append(CaseSpec(case, group, inputs, loader))
    return specs


def contrast_family(sequence: str) -> str:
    """The contrast of an MRI sequence as cases.csv names it ("T1 FSE", "TIRM", "per repo table: T1 FFE
    (chemical-shift water-fat); ..."): T1, T2, TIRM or water-fat; "" when the text names none of them."""
    if "TIRM" in sequence:
        return "TIRM"
    if "water-fat" in sequence:
        return "water-fat"
    return next((family for family in ("T1", "T2") if sequence.startswith(family)), "")


def _mri_loader(base: Path, case: str, rank_labels: bool, table: dict, contrast: str) -> Callable[[], SpineCase]:
    def load() -> SpineCase:
        volume = read_volume(f"{base}_img.nii.gz")
        positions = read_verse_centroids(f"{base}_ctd.json", volume, rank_labels=rank_labels)
        body_mask = read_volume(f"{base}_msk.nii.gz")  # vertebral bodies only: fractures can be simulated
        return SpineCase(case, volume, positions, {p.label: table.get((case, p.label)) for p in positions},
                         body_mask=body_mask, contrast=contrast)

    return load


def phantom_case_specs(count: int, seed: int, losses: list[float], kinds: list[str],
                       max_fractures: int = 2) -> list[CaseSpec]:
    """``count`` phantoms of three vertebrae, fractured as ``draw_phantom_fractures`` says."""
    rng = np.random.default_rng(seed)
    specs = []
    for n in range(count):
        labels = (19, 20, 21) if n % 2 else (20, 21, 22)
        fractures = draw_phantom_fractures(rng, labels, losses, kinds, max_fractures)
        case = f"phantom_{seed}_{n:03d}"
        specs.append(CaseSpec(case, f"phantom:{case}", [], _phantom_loader(seed * 1000 + n, labels, fractures, case)))
    return specs


def draw_phantom_fractures(rng: np.random.Generator, labels: tuple[int, ...], losses: list[float], kinds: list[str],
                           max_fractures: int) -> dict[int, tuple[float, str]]:
    """Fracture 0..``max_fractures`` (uniformly many) of the vertebrae, each with a random loss and kind.
    Of three vertebrae, 3 fractures half of all bodies on average and 2 a third."""
    if not 0 <= max_fractures <= len(labels):
        raise InputError(f"a phantom has {len(labels)} vertebrae: --phantom-max-fractures must be 0-{len(labels)}, "
                         f"got {max_fractures}")
    chosen = rng.choice(labels, size=int(rng.integers(0, max_fractures + 1)), replace=False)
    return {int(l): (float(rng.choice(losses)), str(rng.choice(kinds))) for l in chosen}


def _phantom_loader(seed: int, labels: tuple[int, ...], fractures: dict, case: str) -> Callable[[], SpineCase]:
    def load() -> SpineCase:
        phantom = make_spine_phantom(seed=seed, labels=labels, fractures=fractures, case=case)
        return SpineCase(case, phantom.volume, phantom.positions, dict(phantom.grades), body_mask=None,
                         origin="phantom", kinds=phantom.kinds, requested_loss=phantom.height_loss, contrast="CT")

    return load


# ----------------------------------------------------------------------------------------------------------------
# Patches


@dataclass
class Settings:
    size_px: int
    spacing_mm: float
    lateral_offsets_mm: list[float]
    preprocessing: Preprocessing
    fracture_losses: list[float]  # simulated on intact (grade 0) real vertebrae; empty = none
    fracture_kinds: list[str]
    simulations_per_body: int = 0  # (loss, kind) pairs drawn per intact body and offset; 0 = every pair
    seed: int = 0
    spine_follows: bool = False  # the spine above moves down with a wedge/crush collapse (patch_fractures)
    augmentations: int = 0  # scanner augmentations per patch, beside the patch as it is (scanner_augmentation)
    max_fill: float = 1.0  # patches with more of their area beyond the scan are left out
    superior_offsets_mm: tuple[float, ...] = (0.0,)  # each point moved up the spine (RAS), as clicks off a centre
    centre_on_body: bool = False  # cut at the centroid of each body's mask (CT centroid files name the whole vertebra)
    along_spine: bool = False  # rows along the line between the neighbouring bodies (spine_axis), not RAS -z


def tilts_by_label(positions: list[VertebraPosition]) -> dict[int, float]:
    """{label: tilt along the spine} of the vertebrae that have a neighbour (``spine_axis.tilts_along_spine``)."""
    return {p.label: tilt for p, tilt in zip(positions, tilts_along_spine(positions)) if tilt is not None}


def body_centred(spine: SpineCase) -> SpineCase:
    """The case with each vertebra's position moved to the centroid of its body in the body mask (kept where the mask
    has no such body). VerSe/TPTBox centroid files give the whole vertebra's centroid, about 10 mm posterior of the
    body's, in the spinal canal's direction; a radiologist clicks the body."""
    if spine.body_mask is None:
        return spine
    bodies = {p.label: p.ras for p in centroids_from_mask(spine.body_mask)}
    return replace(spine, positions=[replace(p, ras=bodies[p.label]) if p.label in bodies else p
                                     for p in spine.positions])


def case_samples(spine: SpineCase, settings: Settings, skipped: list[str]) -> Iterator[dict]:
    """Every patch of a case: each vertebra at each lateral offset (and each point moved up or down the spine by
    ``settings.superior_offsets_mm``), plus simulated fractures of intact bodies, each as it is and in
    ``settings.augmentations`` scanner augmentations (the same draw for a body's intact patch and its fractures:
    one ``pair``). A patch with more than ``settings.max_fill`` of its area beyond the scan is left out with its
    fractures, so a scan border cannot stand in for a class."""
    value_range = settings.preprocessing.volume_range(spine.volume.array)
    spine = body_centred(spine) if settings.centre_on_body else spine
    tilts = tilts_by_label(spine.positions) if settings.along_spine else {}
    for centred in spine.positions:
        if settings.along_spine and centred.label not in tilts:
            skipped.append(f"{spine.case} {centred.level}: no neighbouring vertebra to give the spine's axis")
            continue
        for superior in settings.superior_offsets_mm:
            position = replace(centred, ras=np.asarray(centred.ras, dtype=np.float64) + [0.0, 0.0, superior])
            yield from _position_samples(spine, position, superior, tilts.get(centred.label, 0.0), value_range,
                                         settings, skipped)


def _position_samples(spine, position, superior: float, tilt: float, value_range, settings: Settings,
                      skipped: list[str]) -> Iterator[dict]:
    """``case_samples`` of one point, ``superior`` mm above its body's centre, its rows tilted by ``tilt``."""
    size, spacing = settings.size_px, settings.spacing_mm
    grade = spine.grades.get(position.label)
    moved = f" moved {superior:+g} mm superior" if superior else ""
    for offset in settings.lateral_offsets_mm:
        try:
            patch = extract_sagittal_patch(spine.volume, position.ras, size, spacing, offset, tilt_deg=tilt)
        except InputError as error:
            skipped.append(f"{spine.case} {position.level}{moved} offset {offset}: {error}")
            continue
        fill = fill_fraction(spine.volume, patch)
        if fill > settings.max_fill:
            skipped.append(f"{spine.case} {position.level}{moved} offset {offset}: {fill:.0%} of the patch lies "
                           f"beyond the scan (more than {settings.max_fill:.0%})")
            continue
        kind = spine.kinds.get(position.label, "")
        requested = spine.requested_loss.get(position.label, 0.0)
        versions = [(patch.pixels, {"grade": -1 if grade is None else grade, "simulated": bool(kind),
                                    "kind": kind, "requested": requested if kind else np.nan,
                                    "measured": np.nan})]
        if grade == 0 and spine.body_mask is not None and settings.fracture_losses:
            versions += list(_simulated(spine, position, offset, tilt, settings, skipped))
        key = _body_seed(settings, spine.case, position.label, offset)
        for number, augment in enumerate(draw_augmentations(settings.augmentations, key)):
            pair = f"{spine.case}:{position.label}:{offset:g}{f':{superior:g}' if superior else ''}:{number}"
            for pixels, fields in versions:
                yield _sample(spine, position, offset, patch.patch_to_ras, augment(pixels), value_range,
                              settings, fill_fraction=fill, pair=pair, augmentation=number,
                              superior_offset_mm=superior, tilt_deg=tilt, **fields)


def fracture_pairs(settings: Settings, case: str, label: int, offset: float) -> list[tuple[float, str]]:
    """Every (loss, kind) pair to simulate on one intact body at one offset, in the order to try them: as set when
    every pair is kept, else shuffled by a seed drawn from the settings' seed and the body (a rebuild repeats it)."""
    pairs = [(loss, kind) for loss in settings.fracture_losses for kind in settings.fracture_kinds]
    if settings.simulations_per_body <= 0:
        return pairs
    return [pairs[i] for i in np.random.default_rng(_body_seed(settings, case, label, offset)).permutation(len(pairs))]


def _body_seed(settings: Settings, case: str, label: int, offset: float) -> list[int]:
    """A seed for one body at one offset, from the dataset seed: a rebuild repeats every draw made with it."""
    return [settings.seed, label, int(round(offset * 10)) % 1000, *case.encode()]


def _simulated(spine, position, offset, tilt, settings, skipped) -> Iterator[tuple[np.ndarray, dict]]:
    """(image, fields) of simulated fractures of one intact body: every pair, or the first
    ``simulations_per_body`` that succeed. Keeping only a few keeps the real patches from being mostly fractured,
    which would teach a probe that 'looks like a real scan' means 'fractured'."""
    body, others = body_masks(spine.body_mask, position.label)
    wanted = settings.simulations_per_body if settings.simulations_per_body > 0 else None
    made = 0
    for loss, kind in fracture_pairs(settings, spine.case, position.label, offset):
        if made == wanted:
            return
        try:
            fracture = fracture_in_patch(spine.volume, body, others, position.ras, settings.size_px,
                                         settings.spacing_mm, offset, loss, kind, settings.spine_follows, tilt)
        except InputError as error:
            skipped.append(f"{spine.case} {position.level} offset {offset} {kind} {loss}: {error}")
            continue
        measured = achieved_height_loss(kind, fracture.heights_before, fracture.heights)
        if abs(measured - loss) > MAX_LOSS_ERROR:  # the body's shape defeated the simulation: no label to trust
            skipped.append(f"{spine.case} {position.level} offset {offset} {kind} {loss}: measured {measured:.3f}")
            continue
        made += 1
        yield fracture.image, {"grade": genant_grade(measured), "simulated": True, "kind": kind,
                               "requested": loss, "measured": measured}


def _sample(spine, position, offset, patch_to_ras, pixels, value_range, settings, **fields) -> dict:
    return {
        "image": settings.preprocessing.apply(pixels, value_range)[None],
        "case_id": spine.case,
        "label": position.label,
        "level": position.level,
        "lateral_offset_mm": offset,
        "patch_to_ras": patch_to_ras,
        "origin": spine.origin,
        "contrast": spine.contrast,
        **fields,
    }


# ----------------------------------------------------------------------------------------------------------------
# Splits, output


def assign_splits(groups: list[str], fractions: tuple[float, float, float], seed: int,
                  train_only: tuple[str, ...] = ()) -> dict[str, str]:
    """Shuffle the distinct groups (seeded) and cut them into train/val/test by the fractions; groups whose name
    starts with a ``train_only`` prefix go to train whatever the draw (two real CTs among hundreds of phantoms
    are too few to hold one out: the DAE needs both to learn what real bone looks like)."""
    pinned = sorted({g for g in groups if g.startswith(train_only)}) if train_only else []
    unique = sorted(set(groups) - set(pinned))
    order = np.random.default_rng(seed).permutation(len(unique))
    cuts = np.round(np.cumsum(fractions) / sum(fractions) * len(unique)).astype(int)
    split = {unique[g]: SPLITS[int(np.searchsorted(cuts, rank, side="right"))] for rank, g in enumerate(order)}
    return split | {g: "train" for g in pinned}


def to_arrays(samples: list[dict], split_of_case: dict[str, str], group_of_case: dict[str, str]) -> dict[str, np.ndarray]:
    cases = [s["case_id"] for s in samples]
    return {
        "images": np.stack([s["image"] for s in samples]).astype(np.float16),
        "grades": np.array([s["grade"] for s in samples], dtype=np.int16),
        "split": np.array([split_of_case[c] for c in cases], dtype=str),
        "case_id": np.array(cases, dtype=str),
        "group": np.array([group_of_case[c] for c in cases], dtype=str),
        "level": np.array([s["level"] for s in samples], dtype=str),
        "label": np.array([s["label"] for s in samples], dtype=np.int16),
        "lateral_offset_mm": np.array([s["lateral_offset_mm"] for s in samples], dtype=np.float32),
        "patch_to_ras": np.stack([s["patch_to_ras"] for s in samples]).astype(np.float32),
        "simulated": np.array([s["simulated"] for s in samples], dtype=bool),
        "fracture_kind": np.array([s["kind"] for s in samples], dtype=str),
        "requested_height_loss": np.array([s["requested"] for s in samples], dtype=np.float32),
        "measured_height_loss": np.array([s["measured"] for s in samples], dtype=np.float32),
        "origin": np.array([s["origin"] for s in samples], dtype=str),
        "contrast": np.array([s["contrast"] for s in samples], dtype=str),
        "fill_fraction": np.array([s["fill_fraction"] for s in samples], dtype=np.float32),
        "pair": np.array([s["pair"] for s in samples], dtype=str),
        "augmentation": np.array([s["augmentation"] for s in samples], dtype=np.int16),
        "superior_offset_mm": np.array([s.get("superior_offset_mm", 0.0) for s in samples], dtype=np.float32),
        "tilt_deg": np.array([s.get("tilt_deg", 0.0) for s in samples], dtype=np.float32),
    }


def counts(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        chosen = arrays["split"] == split
        if chosen.any():
            grade_counts = Counter(int(g) for g in arrays["grades"][chosen])
            table[split] = {str(g): grade_counts[g] for g in sorted(grade_counts)}
            table[split]["cases"] = len(set(arrays["case_id"][chosen]))
    return table


def write_outputs(out: Path, arrays: dict[str, np.ndarray], manifest: dict) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    npz_path, manifest_path = out / "dataset.npz", out / "manifest.json"
    extra = {k: v for k, v in arrays.items() if k not in REQUIRED}
    TrainingSet(*(arrays[k] for k in REQUIRED), extra=extra).save(npz_path)
    manifest["output"] = {"file": npz_path.name, "sha256": sha256_file(npz_path), "samples": int(len(arrays["images"]))}
    manifest["counts"] = counts(arrays)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return npz_path, manifest_path


def input_records(paths: list[Path], root: Path) -> list[dict]:
    unique = sorted(set(paths))
    return [{"path": str(p.relative_to(root)) if p.is_relative_to(root) else p.name, "sha256": sha256_file(p),
             "bytes": p.stat().st_size} for p in unique]


# ----------------------------------------------------------------------------------------------------------------
# Presets


def build_spine(specs: list[CaseSpec], settings: Settings, fractions, seed: int,
                train_only: tuple[str, ...] = ()) -> tuple[dict, list[str]]:
    split_of_group = assign_splits([s.group for s in specs], fractions, seed, train_only)
    samples, skipped = [], []
    for spec in tqdm(specs, desc="cases", unit="case"):
        samples.extend(case_samples(spec.load(), settings, skipped))
    if not samples:
        raise InputError("no patch could be extracted from the inputs")
    split_of_case = {s.case: split_of_group[s.group] for s in specs}
    return to_arrays(samples, split_of_case, {s.case: s.group for s in specs}), skipped


def build_retina(root: Path) -> tuple[dict, list[Path]]:
    """RetinaMNIST's own train/val splits (the test split is withheld); each image is its own case."""
    path = root / "retinamnist" / "retinamnist.npz"
    data = medmnist_training_set(path, ("train", "val"))
    n = len(data)
    arrays = {
        "images": data.images, "grades": data.grades, "split": data.split, "case_id": data.case_id,
        "group": data.case_id,
        "level": np.full(n, ""),
        "label": np.full(n, -1, dtype=np.int16),
        "lateral_offset_mm": np.zeros(n, dtype=np.float32),
        "patch_to_ras": np.broadcast_to(np.eye(4, dtype=np.float32), (n, 4, 4)).copy(),  # pixel units, no anatomy
        "simulated": np.zeros(n, dtype=bool),
        "fracture_kind": np.full(n, ""),
        "requested_height_loss": np.full(n, np.nan, dtype=np.float32),
        "measured_height_loss": np.full(n, np.nan, dtype=np.float32),
        "origin": np.full(n, "real"),
    }
    return arrays, [path]


PRESET_DEFAULTS = {
    "ct": {"offsets": "-6,-3,0,3,6", "preprocessing": ("ct_window", -1000.0, 1500.0), "losses": "0.22,0.3,0.45"},
    "mri": {"offsets": "-3,0,3", "preprocessing": ("percentile", 1.0, 99.0), "losses": "0.22,0.32,0.45"},
    "retina": {"offsets": "0", "preprocessing": ("fixed_range", 0.0, 255.0), "losses": ""},
}


def parse_floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]
