"""The sets an OOD detector of one shipped bundle is measured on (issue 23), from ../shared/data and generated data.

In distribution: the bundle's training split (``fit``, what a detector learns from) and its held-out split
(``id``: thresholds and false flags), cut as the experiment config's ``data.build`` command cut them. The vertebra
bundles' real CTs are the two that existed when they were trained; the FX-Grader series came to ../shared/data
later (issue 21), so no shipped bundle has seen them. ``vcf-ct`` holds no real scan out (its real CTs are all in
training; its held-out splits are phantoms), so its transformed shifts are made from those unseen real lumbar
series, which are reported as a set of their own (the intended use, not counted as a shift).

Shifts: see ``ood_shifts``; what could not be built for a bundle is returned with the reason.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy import ndimage

from DAECounterfactualLib.bundle.spec import BundleConfig
from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.io.sampledata import sample_files
from DAECounterfactualLib.io.slices import slice_patch
from DAECounterfactualLib.io.volumes import centroids_from_mask, read_volume
from DAECounterfactualLib.inference.slice_table import read_slice_image
from DAECounterfactualLib.model.preprocessing import Preprocessing

from .dataset_building import (PRESET_DEFAULTS, CaseSpec, Settings, SpineCase, assign_splits, ct_case_specs,
                               data_source, mri_case_specs, parse_floats, phantom_case_specs)
from .datasets import medmnist_training_set
from .disc_dataset import PREPROCESSING as DISC_PREPROCESSING
from .disc_dataset import build_discs, disc_samples, read_discs, spacing_of
from .experiment import Experiment
from .ood_shifts import (BLUR_FRACTION, CROP_FRACTION, NOISE_FRACTION, PatchSet, as_model_input, at_discs, blurred,
                         crop_cut_cases, cut_cases, is_crop_cut, masked, noisy, only_labels, photo_blur, photo_cut,
                         photo_gain, photo_noise, rescaled, samples_set, transformed)
from .synthesis import FRACTURE_KINDS

SERIES_ADDED_LATER = "fxgrader_"  # in ../shared/data since issue 21: after the shipped bundles were trained
METAL = ("fxgrader_ctfu00001_ses-20080508", (22, 23))  # pedicle screws at L3 and L4 (FX-Grader code 6)
CERVICAL_CT = "fxgrader_ctfu00001_ses-20140908_split-1"  # C1-T1
FRACTURE_BEYOND = 0.6  # height loss; the training sets simulate at most 0.45
CT_UNITS = {"units_offset": (1.0, 1024.0, "stored values without the rescale intercept (HU + 1024)"),
            "units_gain": (1 / 16, 64.0, "raw 8-bit storage without slope and intercept ((HU + 1024) / 16)")}
SPINE_CT_WINDOW = Preprocessing("ct_window", -1000.0, 1500.0)  # spine CT shown to an image bundle
SPINE_MRI_SCALING = Preprocessing("percentile", 1.0, 99.0)
DISC_AUGMENTATIONS = 8  # copies per training disc in the fit set (the bundle trained on 48)
DESCRIPTIONS = {  # (fit, held out) per kind of bundle
    "vertebra": ("its training split, cut as its config's data.build cut it", "its held-out splits (val, test)"),
    "disc": (f"the SPIDER training discs, {DISC_AUGMENTATIONS} augmented copies each",
             "the SPIDER validation discs (8 patients)"),
    "image": ("the RetinaMNIST training split", "the RetinaMNIST validation split (the test split is withheld)"),
}


@dataclass(frozen=True)
class Cut:
    """How a vertebra bundle's training set was cut (from its config's ``data.build`` command)."""

    settings: Settings
    preset: str
    phantoms: int
    phantom_max_fractures: int
    train_only: tuple[str, ...]
    fractions: tuple[float, ...]
    seed: int


def target_of(experiment: Experiment) -> str:
    """What the bundle grades: "image" (whole 2D images), "disc" or "vertebra" (sagittal volume patches)."""
    if experiment.data["kind"] == "medmnist":
        return "image"
    return "disc" if "build_disc_dataset" in experiment.data.get("build", "") else "vertebra"


def training_cut(experiment: Experiment, config: BundleConfig) -> Cut:
    """The settings of the config's ``build_dataset.py`` command (its preset's defaults where it names none)."""
    parser = argparse.ArgumentParser(add_help=False)
    for name in ("preset", "lateral-offsets", "fracture-losses", "fracture-kinds", "train-only"):
        parser.add_argument(f"--{name}", default=None)
    for name in ("phantoms", "phantom-max-fractures", "seed", "simulations-per-body"):
        parser.add_argument(f"--{name}", type=int, default=0)
    parser.add_argument("--split-fractions", default="0.7,0.15,0.15")
    parser.add_argument("--superior-offsets", default="0")
    parser.add_argument("--centre-on-body", action="store_true")
    parser.add_argument("--along-spine", action="store_true")
    args, _ = parser.parse_known_args(shlex.split(experiment.data["build"]))
    defaults = PRESET_DEFAULTS[args.preset]
    settings = Settings(config.patch_size_px, config.patch_spacing_mm,
                        parse_floats(args.lateral_offsets or defaults["offsets"]), config.preprocessing,
                        parse_floats(args.fracture_losses or defaults["losses"]),
                        (args.fracture_kinds or ",".join(FRACTURE_KINDS)).split(","), args.simulations_per_body,
                        args.seed, superior_offsets_mm=tuple(parse_floats(args.superior_offsets)),
                        centre_on_body=args.centre_on_body, along_spine=args.along_spine)
    return Cut(settings, args.preset, args.phantoms, args.phantom_max_fractures,
               tuple(p for p in (args.train_only or "").split(",") if p), tuple(parse_floats(args.split_fractions)),
               args.seed)


def spread(items: list, limit: int | None) -> list:
    """At most ``limit`` items, evenly spread over the list (all when no limit)."""
    if limit is None or len(items) <= limit:
        return list(items)
    return [items[int(k)] for k in np.linspace(0, len(items) - 1, limit).round()]


# ----------------------------------------------------------------------------------------------------------------
# In distribution


def vertebra_splits(cut: Cut, root: Path, limit: int | None) -> tuple[list[CaseSpec], list[CaseSpec]]:
    """(training, held-out) cases as the builder split them; ``limit`` caps real and phantom cases of each."""
    real = ct_case_specs(root) if cut.preset == "ct" else mri_case_specs(root)
    real = [s for s in real if not s.case.startswith(SERIES_ADDED_LATER)]
    phantoms = phantom_case_specs(cut.phantoms, cut.seed, cut.settings.fracture_losses or [0.3],
                                  cut.settings.fracture_kinds, cut.phantom_max_fractures) if cut.phantoms else []
    split = assign_splits([s.group for s in real + phantoms], cut.fractions, cut.seed, cut.train_only)

    def part(held: bool) -> list[CaseSpec]:
        return [s for specs in (real, phantoms)
                for s in spread([s for s in specs if (split[s.group] != "train") == held], limit)]

    return part(False), part(True)


def descriptions(target: str, sources: tuple[str, ...] = ()) -> tuple[str, str]:
    """(fit, held out) in words for a bundle that grades ``target``, limited to ``sources`` where given."""
    if sources and target != "vertebra":
        raise InputError(f"the config's ood.fit_sources are read from vertebra patients' groups; a {target} "
                         "bundle has none")
    only = f"; data sources {', '.join(sources)} only" if sources else ""
    return tuple(text + only for text in DESCRIPTIONS[target])


def within_sources(specs: list[CaseSpec], sources: tuple[str, ...]) -> tuple[list[CaseSpec], list[CaseSpec]]:
    """(cases from ``sources``, the others); every case is within when no source is named."""
    within = [not sources or data_source(s.group) in sources for s in specs]
    return [s for s, w in zip(specs, within) if w], [s for s, w in zip(specs, within) if not w]


def vertebra_in_distribution(cut: Cut, root: Path, limit: int | None, sources: tuple[str, ...] = ()
                             ) -> tuple[PatchSet, PatchSet, list[CaseSpec], list[CaseSpec]]:
    """Fit and held-out sets of the cases from ``sources`` (all if none), their held-out cases, and the cases of
    other sources (training and held out: what a detector fitted on ``sources`` should flag)."""
    train, held = vertebra_splits(cut, root, limit)
    (train, other_train), (held, other_held) = within_sources(train, sources), within_sources(held, sources)
    fit_text, held_text = descriptions("vertebra", sources)
    fit = samples_set("fit", fit_text, cut_cases((s.load() for s in train), cut.settings))
    held_set = samples_set("id", held_text, cut_cases((s.load() for s in held), cut.settings))
    return fit, held_set, held, other_train + other_held


def disc_in_distribution(config: BundleConfig, root: Path) -> tuple[PatchSet, PatchSet]:
    arrays, _ = build_discs(root / "spider_discs", config.patch_size_px, config.patch_spacing_mm,
                            DISC_AUGMENTATIONS, seed=0)

    def part(split: str, description: str) -> PatchSet:
        chosen = arrays["split"] == split
        return PatchSet("fit" if split == "train" else "id", description, arrays["images"][chosen],
                        arrays["case_id"][chosen])

    fit_text, held_text = DESCRIPTIONS["disc"]
    return part("train", fit_text), part("val", held_text)


def retina_images(root: Path, split: str) -> np.ndarray:
    data = medmnist_training_set(root / "retinamnist" / "retinamnist.npz")
    return data.subset(split).images.astype(np.float32)


def image_in_distribution(root: Path) -> tuple[PatchSet, PatchSet]:
    data = medmnist_training_set(root / "retinamnist" / "retinamnist.npz")
    train, val = data.subset("train"), data.subset("val")
    fit_text, held_text = DESCRIPTIONS["image"]
    return (PatchSet("fit", fit_text, train.images, train.case_id),
            PatchSet("id", held_text, val.images, val.case_id))


# ----------------------------------------------------------------------------------------------------------------
# Cases the shifts are cut from


@dataclass
class ShiftCases:
    """Real cases loaded once for every shift of one bundle."""

    lumbar_ct: list[SpineCase]   # the unseen FX-Grader lumbar series, screwed levels left out
    metal: SpineCase
    cervical_ct: SpineCase
    cervical_mri: SpineCase
    mri: list[SpineCase]         # lumbar MRI cases (other modality for CT bundles)


def shift_cases(root: Path, mri_specs: list[CaseSpec]) -> ShiftCases:
    ct = {s.case: s for s in ct_case_specs(root)}
    metal_case, metal_labels = METAL
    lumbar = []
    for name, spec in ct.items():
        if name.startswith(SERIES_ADDED_LATER) and name != CERVICAL_CT:
            case = spec.load()
            lumbar.append(only_labels(case, lambda label: not (name == metal_case and label in metal_labels)))
    metal = only_labels(ct[metal_case].load(), lambda label: label in metal_labels)
    return ShiftCases(lumbar, metal, ct[CERVICAL_CT].load(), sample_mri_case(), [s.load() for s in mri_specs])


def sample_mri_case() -> SpineCase:
    """The tptbox sample T2w MRI: a cervical crop, vertebrae C5-C7 (VerSe ids 5-7; its discs and endplates are
    left out, their centroids recomputed as midpoints where needed)."""
    files = sample_files("spine-mri")
    volume, mask = read_volume(files["image"]), read_volume(files["vertebra_mask"])
    positions = centroids_from_mask(mask, skip=lambda label: label >= 100)
    return SpineCase("tptbox_sample_mri", volume, positions, {}, body_mask=None)


# ----------------------------------------------------------------------------------------------------------------
# Shifts cut from volumes


def kind_shifts(config: BundleConfig, settings: Settings, cases: ShiftCases, base: list[SpineCase], base_source: str,
                retina: np.ndarray, discs: bool) -> tuple[list[PatchSet], dict[str, str]]:
    """Other kinds of input for a vertebra bundle (``discs`` False) or a disc bundle: another modality, region,
    target, metal, a fundus photograph. ``base``: the real cases of the bundle's own kind (named ``base_source``)."""
    intact = replace(settings, fracture_losses=[])
    targets = at_discs if discs else (lambda case: case)
    ct_source = base_source if config.modality == "CT" else "id"
    sets, skipped = [], {}

    def add(name: str, description: str, cut_from: list[SpineCase], source: str = "id", counted: bool = True):
        sets.append(samples_set(name, description, cut_cases([targets(c) for c in cut_from], intact),
                                source=source, counted=counted))

    if config.modality == "CT":
        add("modality", "lumbar MRI (VB1/VB3) in the CT window", cases.mri)
    else:
        add("modality", "unseen lumbar CT series, percentile-scaled", cases.lumbar_ct)
    add("region_ct", "cervical CT, C1-T1", [cases.cervical_ct], ct_source)
    add("region_mri", "cervical T2w MRI, C5-C7 (tptbox sample)", [cases.cervical_mri])
    if discs:
        sets.append(samples_set("target", "vertebra-centred lumbar MRI patches (VB1/VB3)", cut_cases(cases.mri, intact)))
        add("collection", "lumbar MRI discs of other collections and sequences (VB1, VB3)", cases.mri, counted=False)
    else:
        sets.append(samples_set("target", "disc-centred patches of the same cases",
                                cut_cases([at_discs(c) for c in base], intact), source=base_source))
    if config.modality == "CT" and not discs:
        add("metal", "pedicle screws at L3 and L4 (CT)", [cases.metal], ct_source)
    else:
        skipped["metal"] = "no MRI with metal in ../shared/data (the screwed CT would be a modality shift here)"
    sets.append(PatchSet("non_spine", "RetinaMNIST fundus photographs, grey, upsampled",
                         as_model_input(retina, config.patch_size_px, config.model.in_channels),
                         np.arange(len(retina)).astype(str)))
    return sets, skipped


def transform_shifts(config: BundleConfig, settings: Settings, base: list[SpineCase], base_source: str
                     ) -> tuple[list[PatchSet], dict[str, str]]:
    """The vertebra bundle's real cases transformed: other units, a masked export, a crop that cuts the vertebra,
    heavy noise or blur, and fractures beyond the training range."""
    intact = replace(settings, fracture_losses=[])
    field_mm = config.patch_size_px * config.patch_spacing_mm
    sets, skipped = [], {}

    def add(name: str, description: str, cut_from: list[SpineCase], keep=lambda s: True, how: Settings = intact):
        sets.append(samples_set(name, description, cut_cases(cut_from, how, keep), source=base_source))

    if config.preprocessing.kind == "percentile":
        skipped["units"] = "percentile scaling (1-99 %) removes any gain and offset: not a shift for this bundle"
    else:
        for name, (gain, offset, description) in CT_UNITS.items():
            add(name, description, [transformed(c, lambda v, g=gain, o=offset: rescaled(v, g, o)) for c in base])
    add("masked", "outside the vertebral-body masks set to the minimum (a masked export)",
        [transformed(c, lambda v, m=c.body_mask: masked(v, m)) for c in base if c.body_mask is not None])
    add("crop", f"volume cropped to +-{CROP_FRACTION:.0%} of the field of view around each vertebra "
        f"(patches with >= 30 % fill)", [p for c in base for p in crop_cut_cases(c, field_mm)], keep=is_crop_cut)
    add("noise", f"Gaussian noise, sd {NOISE_FRACTION:.0%} of the 1-99 % range",
        [transformed(c, lambda v, n=n: noisy(v, seed=n)) for n, c in enumerate(base)])
    add("blur", f"Gaussian blur, sd {BLUR_FRACTION * field_mm:.1f} mm",
        [transformed(c, lambda v: blurred(v, BLUR_FRACTION * field_mm)) for c in base])
    beyond = replace(settings, fracture_losses=[FRACTURE_BEYOND], simulations_per_body=0)
    add("fracture", f"simulated fractures at height loss {FRACTURE_BEYOND} ({', '.join(settings.fracture_kinds)}; "
        f"training at most {max(settings.fracture_losses)})", base, keep=lambda s: s["simulated"], how=beyond)
    return sets, skipped


# ----------------------------------------------------------------------------------------------------------------
# Shifts of the disc bundle on its own slices, and of the image bundle


def spider_slices(root: Path, split: str) -> list[tuple[np.ndarray, list[dict]]]:
    folder = root / "spider_discs"
    return [(read_slice_image(folder / "images" / name), rows)
            for name, rows in sorted(read_discs(folder / "discs.csv").items()) if rows[0]["split"] == split]


def slice_sets(config: BundleConfig, slices: list[tuple[np.ndarray, list[dict]]]) -> list[PatchSet]:
    """Noise, blur and crop-cut versions of the disc bundle's held-out slices."""
    size, spacing_mm = config.patch_size_px, config.patch_spacing_mm
    field_mm = size * spacing_mm
    rng = np.random.default_rng(0)

    def cut(images_rows) -> tuple[np.ndarray, np.ndarray]:
        samples = [s for image, rows in images_rows for s in disc_samples(image, rows, size, spacing_mm, 0, rng)]
        return (np.stack([s["image"] for s in samples]),
                np.array([f"spider_{s['row']['patient']}" for s in samples]))

    def noise(image: np.ndarray, seed: int) -> np.ndarray:
        low, high = np.percentile(image, [1, 99])
        return image + np.random.default_rng(seed).normal(0.0, NOISE_FRACTION * (high - low), image.shape)

    def blur(image: np.ndarray, rows) -> np.ndarray:
        spacing = spacing_of(rows)
        sigma = BLUR_FRACTION * field_mm / np.array([spacing.row_mm, spacing.column_mm])
        return ndimage.gaussian_filter(image, sigma)

    sets = [PatchSet("noise", f"Gaussian noise, sd {NOISE_FRACTION:.0%} of the 1-99 % range",
                     *cut([(noise(image, n), rows) for n, (image, rows) in enumerate(slices)])),
            PatchSet("blur", f"Gaussian blur, sd {BLUR_FRACTION * field_mm:.1f} mm",
                     *cut([(blur(image, rows), rows) for image, rows in slices]))]
    crops = [cropped_disc(image, rows, row, config) for image, rows in slices for row in rows]
    sets.append(PatchSet("crop", f"slice cropped to +-{CROP_FRACTION:.0%} of the field of view around the disc",
                         np.stack([c for c, _ in crops]), np.array([g for _, g in crops])))
    return sets


def cropped_disc(image: np.ndarray, rows: list[dict], row: dict, config: BundleConfig) -> tuple[np.ndarray, str]:
    """The model input of one disc of a slice cropped close around it (scaled over the crop, as inference
    scales the image it is given)."""
    spacing = spacing_of(rows)
    half_mm = CROP_FRACTION * config.patch_size_px * config.patch_spacing_mm
    x, y = float(row["x_px"]), float(row["y_px"])
    x0, y0 = int(max(0, np.floor(x - half_mm / spacing.column_mm))), int(max(0, np.floor(y - half_mm / spacing.row_mm)))
    x1, y1 = int(np.ceil(x + half_mm / spacing.column_mm)) + 1, int(np.ceil(y + half_mm / spacing.row_mm)) + 1
    crop = image[y0:y1, x0:x1]
    patch = slice_patch(crop, (x - x0, y - y0), spacing, config.patch_size_px, config.patch_spacing_mm)
    scaled = DISC_PREPROCESSING.apply(patch, DISC_PREPROCESSING.intensity_range(crop))
    return scaled[None], f"spider_{row['patient']}"


def image_shifts(config: BundleConfig, held: PatchSet, cases: ShiftCases) -> list[PatchSet]:
    """Shifts of an image bundle: its held-out photographs changed, and spine patches of the same field."""
    size, channels = config.patch_size_px, config.model.in_channels
    images, groups = held.images, held.groups
    spine = {"spine_ct": (cases.lumbar_ct, SPINE_CT_WINDOW, "unseen lumbar CT patches (96 mm, -1000..1500 HU)"),
             "spine_mri": (cases.mri, SPINE_MRI_SCALING, "lumbar MRI patches (96 mm, percentile-scaled)")}
    sets = []
    for name, (spine_cases, preprocessing, description) in spine.items():
        settings = Settings(64, 1.5, [0.0], preprocessing, [], [])  # the vertebra bundles' field of view
        cut = samples_set(name, description, cut_cases(spine_cases, settings))
        sets.append(PatchSet(name, description + ", grey in every channel",
                             as_model_input(cut.images, size, channels), cut.groups))
    sets += [PatchSet("noise", f"Gaussian noise, sd {NOISE_FRACTION:.0%} of the range", photo_noise(images, 0), groups),
             PatchSet("blur", f"Gaussian blur, sd {BLUR_FRACTION * size:.1f} px", photo_blur(images, BLUR_FRACTION * size),
                      groups),
             PatchSet("units_gain", "a darker photograph (values x 0.5)", photo_gain(images, 0.5), groups),
             PatchSet("crop", "the lower half of the photograph cut off (black)", photo_cut(images, 0.5), groups),
             PatchSet("grey", "the photograph in grey (luminance in every channel)",
                      as_model_input(images, size, channels), groups)]
    return sets


# ----------------------------------------------------------------------------------------------------------------
# One bundle

DISC_OFFSETS = [-2.0, 0.0, 2.0]  # parallel sagittal planes for disc patches cut from volumes
IMAGE_SKIPPED = "a fundus bundle: spine images of either modality are its non-fundus shift (spine_ct, spine_mri)"


@dataclass
class BundleSets:
    fit: PatchSet
    held_out: PatchSet
    shifts: list[PatchSet]
    skipped: dict[str, str]


def bundle_sets(experiment: Experiment, config: BundleConfig, root: Path, limit: int | None = None,
                mri_cases: int = 8) -> BundleSets:
    """The fit, held-out and shift sets of one bundle; ``limit`` caps the cases of each in-distribution split,
    ``mri_cases`` the lumbar MRI cases the MRI shifts of CT, disc and image bundles are cut from. Where the
    experiment fits its detector on some data sources alone, the patients of the others are a shift of their own."""
    target = target_of(experiment)
    descriptions(target, experiment.ood_sources)  # refuses sources a disc or image bundle cannot be cut by
    cases = shift_cases(root, spread(mri_case_specs(root), mri_cases))
    retina = retina_images(root, "val")
    if target == "image":
        fit, held = image_in_distribution(root)
        return BundleSets(fit, held, image_shifts(config, held, cases),
                          {name: IMAGE_SKIPPED for name in ("modality", "region", "target", "metal", "fracture")})
    if target == "disc":
        fit, held = disc_in_distribution(config, root)
        settings = Settings(config.patch_size_px, config.patch_spacing_mm, DISC_OFFSETS, config.preprocessing, [], [])
        shifts, skipped = kind_shifts(config, settings, cases, [], "id", retina, discs=True)
        skipped |= {"units": "percentile scaling (1-99 %) removes any gain and offset: not a shift for this bundle",
                    "masked": "the SPIDER slices come without masks",
                    "fracture": "a disc bundle: vertebral fractures are not its target"}
        return BundleSets(fit, held, shifts + slice_sets(config, spider_slices(root, "val")), skipped)
    cut = training_cut(experiment, config)
    fit, held, held_specs, others = vertebra_in_distribution(cut, root, limit, experiment.ood_sources)
    base = [s.load() for s in held_specs if not s.group.startswith("phantom:")]
    base_source, extra = "id", []
    if not base:  # every real scan in training: the unseen real series stand in
        base, base_source = cases.lumbar_ct, "real_ct"
        extra = [samples_set("real_ct", "unseen real lumbar CT series (the intended use; not counted)",
                             cut_cases(base, replace(cut.settings, fracture_losses=[])), counted=False)]
    if others:
        names = ", ".join(sorted({data_source(s.group) for s in others}))
        extra.append(samples_set("other_sources", f"its own training and held-out patients of {names}, outside "
                                 "the sources the detector is fitted on", cut_cases((s.load() for s in others),
                                                                                     cut.settings)))
    shifts, skipped = kind_shifts(config, cut.settings, cases, base, base_source, retina, discs=False)
    transforms, more = transform_shifts(config, cut.settings, base, base_source)
    return BundleSets(fit, held, extra + shifts + transforms, skipped | more)


def in_distribution(experiment: Experiment, config: BundleConfig, root: Path, limit: int | None = None
                    ) -> tuple[PatchSet, PatchSet]:
    """The fit and held-out sets alone (what a detector is fitted and thresholded on), as ``bundle_sets`` cuts them."""
    target = target_of(experiment)
    descriptions(target, experiment.ood_sources)  # refuses sources a disc or image bundle cannot be cut by
    if target == "image":
        return image_in_distribution(root)
    if target == "disc":
        return disc_in_distribution(config, root)
    return vertebra_in_distribution(training_cut(experiment, config), root, limit, experiment.ood_sources)[:2]
