"""Issue 21's acceptance of a vertebra bundle (CT or MRI), on real data only: hold out every series of one patient,
fit the probe and the calibration on the other patients' real patches (intact bodies and their simulated
fractures), grade the held-out series.

Per series and pooled: the share of healthy real vertebrae (morphometric G0, body whole in the patch) graded G0;
the AUC of the probe for simulated G2-G3 fractures against those healthy bodies; the share of simulated fractures
graded within one grade of their simulated grade. Intervals resample vertebrae. The bundle's own probe is graded
on the same patches beside it, so "the shipped task" and "probes that saw real anatomy" can be told apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from DAECounterfactualLib.bundle.real_data import RealDataCheck
from DAECounterfactualLib.bundle.spec import Bundle, TaskSpec
from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualLib.inference.geometry import extract_sagittal_patch

from .bootstrap import bootstrap_intervals
from .dataset_building import (CaseSpec, Settings, body_centred, case_samples, ct_case_specs, data_source,
                               mri_case_specs, tilts_by_label)
from .patch_fractures import body_masks, whole_in_patch
from .synthesis import FRACTURE_KINDS
from .task_fitting import TaskRecipe, fit_recipe

LOSSES = (0.22, 0.32, 0.45)  # one simulated fracture per Genant grade G1-G3
TARGETS = {"healthy_g0": 0.90, "fracture_auc": 0.95, "within_one_grade": 0.90}


@dataclass
class RealPatches:
    images: np.ndarray      # (N, 1, H, W) model range
    case: np.ndarray        # series
    group: np.ndarray       # patient: held out together
    vertebra: np.ndarray    # series:level
    grade: np.ndarray       # morphometric grade of the real body, or the simulated grade
    simulated: np.ndarray   # bool
    whole: np.ndarray       # the body lies whole in the patch
    contrast: np.ndarray | None = None  # CT, T1, T2, TIRM, water-fat (dataset_building.contrast_family)


def case_specs(bundle: Bundle, data_root: Path) -> list[CaseSpec]:
    """The real series of the bundle's modality: the CTs of spine_ct/ or the lumbar MRIs of spine_mri/."""
    modality = bundle.config.modality.upper()
    if modality not in ("CT", "MR", "MRI"):
        raise InputError(f"bundle {bundle.config.name!r}: no real vertebra series of modality {modality!r} here")
    return ct_case_specs(data_root) if modality == "CT" else mri_case_specs(data_root)


def real_patches(bundle: Bundle, specs: list[CaseSpec], kinds: tuple[str, ...] = FRACTURE_KINDS,
                 margin_px: int = 0, centre_on_body: bool = False) -> RealPatches:
    """Every real vertebra of ``specs`` in the bundle's patch geometry and preprocessing (no lateral offset; rows
    along the spine if the bundle's are), plus every kind of simulated fracture at each grade of each intact body;
    ``margin_px`` more on every side of each patch (for crops of it; ``whole`` still says whether the body lies
    whole in the bundle's patch); ``centre_on_body``: at each body's centroid, not the centroid file's point."""
    config = bundle.config
    along_spine = config.patch_rows == "spine"
    settings = Settings(config.patch_size_px + 2 * margin_px, config.patch_spacing_mm, [0.0], config.preprocessing,
                        list(LOSSES), list(kinds), along_spine=along_spine)
    rows: list[dict] = []
    for spec in specs:
        case = spec.load()
        case = body_centred(case) if centre_on_body else case  # once, for the whole-body check and the patches
        tilts = tilts_by_label(case.positions) if along_spine else {}
        body_whole = _whole_bodies(case, config.patch_size_px, config.patch_spacing_mm, tilts)
        for sample in case_samples(case, settings, []):
            rows.append(sample | {"whole": body_whole.get(sample["label"], False), "group": spec.group})
    return RealPatches(
        images=np.stack([r["image"] for r in rows]).astype(np.float32),
        case=np.array([r["case_id"] for r in rows]),
        group=np.array([r["group"] for r in rows]),
        vertebra=np.array([f"{r['case_id']}:{r['level']}" for r in rows]),
        grade=np.array([r["grade"] for r in rows], dtype=np.int16),
        simulated=np.array([r["simulated"] for r in rows], dtype=bool),
        whole=np.array([r["whole"] for r in rows], dtype=bool),
        contrast=np.array([r["contrast"] for r in rows]),
    )


def _whole_bodies(case, size_px: int, spacing_mm: float, tilts: dict[int, float]) -> dict[int, bool]:
    whole = {}
    for position in case.positions:
        if case.body_mask is None:
            continue
        body, _ = body_masks(case.body_mask, position.label)
        try:
            mask = extract_sagittal_patch(body, position.ras, size_px, spacing_mm, 0.0, 0.0,
                                          tilts.get(position.label, 0.0)).pixels >= 0.5
        except InputError:
            continue
        whole[position.label] = whole_in_patch(mask)
    return whole


def leave_one_patient_out(z: np.ndarray, patches: RealPatches, recipe: TaskRecipe, C: float) -> np.ndarray:
    """Out-of-patient grades and distances: (N, 2) columns distance, grade; each patient's series by a probe and
    calibration that saw none of them (two FX-Grader sessions are one patient)."""
    out = np.full((len(z), 2), np.nan)
    usable = patches.grade >= 0
    for group in np.unique(patches.group):
        train = usable & (patches.group != group)
        probe, calibration = fit_recipe(recipe, z[train], patches.grade[train], C)
        held = patches.group == group
        distance = probe.distance(z[held])
        out[held] = np.stack([distance, calibration.grade(distance)], axis=1)
    return out


def shipped_grades(z: np.ndarray, spec: TaskSpec) -> np.ndarray:
    distance = spec.probe.distance(z)
    return np.stack([distance, spec.calibration.grade(distance)], axis=1)


def healthy_and_fractured(patches: RealPatches, positive_min_grade: int) -> tuple[np.ndarray, np.ndarray]:
    """The two groups every figure compares: real morphometric-G0 bodies whole in the patch, and simulated
    fractures of grade ``positive_min_grade`` and up."""
    healthy = (~patches.simulated) & (patches.grade == 0) & patches.whole
    return healthy, patches.simulated & (patches.grade >= positive_min_grade)


def figures(graded: np.ndarray, patches: RealPatches, indices: np.ndarray, positive_min_grade: int) -> dict[str, float]:
    """The three acceptance figures on the samples ``indices``."""
    from sklearn.metrics import roc_auc_score

    grade, simulated = patches.grade[indices], patches.simulated[indices]
    healthy, fractured = (mask[indices] for mask in healthy_and_fractured(patches, positive_min_grade))
    distance, predicted = graded[indices, 0], graded[indices, 1]
    labels = np.concatenate([np.zeros(healthy.sum()), np.ones(fractured.sum())])
    scores = np.concatenate([distance[healthy], distance[fractured]])
    return {
        "healthy_g0": float(np.mean(predicted[healthy] == 0)) if healthy.any() else float("nan"),
        "fracture_auc": float(roc_auc_score(labels, scores)) if 0 < labels.sum() < len(labels) else float("nan"),
        "within_one_grade": float(np.mean(np.abs(predicted[simulated] - grade[simulated]) <= 1))
        if simulated.any() else float("nan"),
        "healthy_n": int(healthy.sum()), "fractures_n": int(simulated.sum()),
    }


def data_sources(patches: RealPatches) -> np.ndarray:
    """Each patch's data source (``dataset_building.data_source`` of its patient group)."""
    return np.array([data_source(group) for group in patches.group])


def source_parts(patches: RealPatches) -> list[tuple[str, np.ndarray]]:
    """(name, rows) of each data source and, where a source mixes contrasts, of each contrast in it ("VB1 T2"): a
    source's figure can hide a contrast the model fails on."""
    sources = data_sources(patches)
    contrast = patches.contrast if patches.contrast is not None else np.full(len(sources), "")
    parts = []
    for source in np.unique(sources):
        rows = sources == source
        parts.append((str(source), rows))
        kinds = np.unique(contrast[rows])
        if len(kinds) > 1:
            parts += [(f"{source} {kind}", rows & (contrast == kind)) for kind in kinds]
    return parts


def acceptance(graded: np.ndarray, patches: RealPatches, positive_min_grade: int, resamples: int) -> dict:
    """Figures per series, per data source (``data_sources``) and pooled, the last two with intervals over
    vertebrae: a pooled figure can hide a source the model fails on."""
    per_case = {case: figures(graded, patches, np.flatnonzero(patches.case == case), positive_min_grade)
                for case in np.unique(patches.case)}
    sources = data_sources(patches)
    per_source = {source: with_intervals(graded, patches, np.flatnonzero(sources == source), positive_min_grade,
                                          resamples) for source in np.unique(sources)}
    return {"per_case": per_case, "per_source": per_source,
            **with_intervals(graded, patches, np.arange(len(patches.grade)), positive_min_grade, resamples)}


def with_intervals(graded: np.ndarray, patches: RealPatches, indices: np.ndarray, positive_min_grade: int,
                    resamples: int) -> dict:
    """The figures of ``indices`` (``pooled``), their intervals resampling vertebrae, and which targets they meet."""
    pooled = figures(graded, patches, indices, positive_min_grade)

    def statistics(drawn):
        values = figures(graded, patches, indices[drawn], positive_min_grade)
        return {name: values[name] for name in TARGETS}

    intervals = bootstrap_intervals(statistics, patches.vertebra[indices], n_resamples=resamples)
    return {"pooled": pooled, "pooled_intervals": intervals,
            "meets": {name: bool(pooled[name] >= target) for name, target in TARGETS.items()}}


def visibility(z: np.ndarray, patches: RealPatches, positive_min_grade: int) -> dict[str, dict[str, float]]:
    """Per data source (and contrast, ``source_parts``): can a linear model tell the simulated G2-G3 fractures from
    the healthy bodies on the pixels, and on z_sem? Logistic regressions scored out of patient (folds by patient). A
    fracture the pixels show and the latent does not is the DAE's limit, not the probe's or the simulation's."""
    from .evaluation import grouped_auc

    healthy, fractured = healthy_and_fractured(patches, positive_min_grade)
    pixels = patches.images.reshape(len(patches.images), -1)
    result = {}
    for name, part in source_parts(patches):
        rows = part & (healthy | fractured)
        labels = fractured[rows].astype(int)
        if len(set(patches.group[rows])) < 2 or len(set(labels)) < 2:
            continue
        result[name] = {space: grouped_auc(features[rows], labels, patches.group[rows], linear_scorer)
                        for space, features in (("pixels", pixels), ("latent", z))}
    return result


def fracture_moves(z: np.ndarray, patches: RealPatches, positive_min_grade: int, pairs: int = 2000,
                   seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """Per data source (and contrast, ``source_parts``), in z_sem and in the pixels: how far a simulated G2-G3
    fracture moves its intact twin (the same body, in the patch as it is), as a share of how far two patches of
    that part lie apart (median of random pairs), and how much of each move lies along the twins' mean move (median
    cosine). A latent holds the fracture where the move is large and shared; where the pixels move and the latent
    does not, the encoder is blind to it there, and no probe or calibration can fix that."""
    healthy, fractured = healthy_and_fractured(patches, positive_min_grade)
    twin = {v: i for i, v in zip(np.flatnonzero(healthy), patches.vertebra[healthy])}
    result: dict[str, dict[str, dict[str, float]]] = {}
    for source, part in source_parts(patches):
        rng = np.random.default_rng(seed)  # the same draws for a part whatever parts come before it
        moved = [(i, twin[v]) for i, v in zip(np.flatnonzero(fractured & part), patches.vertebra[fractured & part])
                 if v in twin]
        if len(moved) < 2:
            continue
        members = np.flatnonzero(part)
        a, b = rng.choice(members, pairs), rng.choice(members, pairs)
        fractures, twins = (np.array(column) for column in zip(*moved))
        result[str(source)] = {
            name: {"twins": len(moved), **dict(zip(("move", "shared"), twin_move(features, fractures, twins, a, b)))}
            for name, features in (("latent", z), ("pixels", patches.images.reshape(len(z), -1)))}
    return result


def twin_move(features: np.ndarray, fractures: np.ndarray, twins: np.ndarray, a: np.ndarray,
              b: np.ndarray) -> tuple[float, float]:
    """How far each fracture's features lie from its twin's, as a share of how far the pairs (a, b) lie apart
    (medians), and how much of each move lies along the mean move (median cosine)."""
    moves = (features[fractures] - features[twins]).astype(np.float64)
    spread = float(np.median(np.linalg.norm(features[a] - features[b], axis=1)))
    mean = moves.mean(axis=0)
    lengths = np.linalg.norm(moves, axis=1)
    return (float(np.median(lengths) / spread),
            float(np.median(moves @ mean / (lengths * np.linalg.norm(mean) + 1e-12))))


def flagged(z: np.ndarray, patches: RealPatches, bundle: Bundle, positive_min_grade: int) -> dict[str, dict]:
    """Per data source: the share of healthy bodies, simulated fractures and all patches whose latent the bundle's
    OOD detector flags. Where the figures above fail, the user should be told not to trust the grade."""
    is_ood = bundle.ood.is_ood(z)
    sources = data_sources(patches)
    healthy, fractured = healthy_and_fractured(patches, positive_min_grade)
    return {str(source): {name: float(is_ood[rows & (sources == source)].mean())
                          for name, rows in (("healthy", healthy), ("fractured", fractured),
                                             ("all", np.ones(len(z), dtype=bool)))
                          if (rows & (sources == source)).any()}
            for source in np.unique(sources)}


def real_data_check(record: dict, source: str, command: str) -> RealDataCheck:
    """The shipped task's figures on one data source (or "pooled") of an acceptance ``record`` (``run``), as the
    task keeps them (``RealDataCheck``): what its grades are shown with from then on."""
    shipped = record["shipped_task"]
    part = shipped["pooled"] if source == "pooled" else shipped["per_source"].get(source, {}).get("pooled")
    if part is None:
        raise InputError(f"no figures for source {source!r} (sources: {', '.join(record['sources'])}, pooled)")
    sources = record["sources"].values() if source == "pooled" else [record["sources"][source]]
    series, patients = (sum(s[key] for s in sources) for key in ("series", "patients"))
    where = "" if source == "pooled" else f" ({source})"
    return RealDataCheck(
        measured_on=(f"{part['healthy_n']} healthy vertebrae and {part['fractures_n']} simulated fractures of them in "
                     f"{series} real series of {patients} patients{where}"),
        figures={k: float(part[k]) for k in TARGETS}, targets=dict(TARGETS), command=command)


def linear_scorer(x: np.ndarray, y: np.ndarray):
    """Standardised, class-balanced, strongly regularised logistic regression: the same linear model for pixels
    and latents."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    model = LogisticRegression(C=0.01, max_iter=3000, class_weight="balanced").fit((x - mean) / scale, y)
    return lambda held: model.decision_function((held - mean) / scale)


def run(bundle: Bundle, task: str, recipe: TaskRecipe, data_root: Path, C: float = 0.01,
        resamples: int = 1000, kinds: tuple[str, ...] = FRACTURE_KINDS, centre_on_body: bool = False) -> dict:
    patches = real_patches(bundle, case_specs(bundle, data_root), kinds, centre_on_body=centre_on_body)
    z = Explainer(bundle).encode(patches.images)
    spec = bundle.task(task)
    sources = data_sources(patches)
    return {
        "bundle": bundle.bundle_id, "task": task, "patches": int(len(z)), "patients": int(len(set(patches.group))),
        "fracture_kinds": list(kinds), "centre_on_body": centre_on_body, "patch_rows": bundle.config.patch_rows,
        "targets": TARGETS, "probe_C": C, "calibration": recipe.calibration,
        "leave_one_patient_out": acceptance(leave_one_patient_out(z, patches, recipe, C), patches,
                                            recipe.positive_min_grade, resamples),
        "shipped_task": acceptance(shipped_grades(z, spec), patches, spec.positive_min_grade, resamples),
        "visibility_auc": visibility(z, patches, recipe.positive_min_grade),
        "fracture_moves": fracture_moves(z, patches, recipe.positive_min_grade),
        "sources": {str(source): {"series": int(len(set(patches.case[sources == source]))),
                                  "patients": int(len(set(patches.group[sources == source])))}
                    for source in np.unique(sources)},
        "flagged_out_of_distribution": flagged(z, patches, bundle, recipe.positive_min_grade),
    }
