"""Do a bundle's counterfactuals of real vertebrae change the body's height as their grade says (issue 21)?

On real patients the DAE never trained on (held out of its training split, within the data sources its OOD
detector is fitted on): every intact body whole in the patch is explained, and each grade's counterfactual is
measured by ``EndplateRuler`` against the reconstruction; each simulated G2-G3 fracture of those bodies is
explained too, and its G0 counterfactual is measured against the intact body (is the height restored?). The ruler
is first checked on the simulated fractures themselves, whose height loss the deformed mask measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from DAECounterfactualLib.bundle.spec import Bundle, TaskSpec
from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.inference.explainer import Explainer, Explanation
from DAECounterfactualLib.inference.geometry import extract_sagittal_patch

from .dataset_building import CaseSpec, Settings, case_samples, data_source
from .endplate_ruler import EndplateRuler
from .evaluation import proximity
from .experiment import Experiment
from .ood_sets import training_cut, vertebra_splits
from .patch_fractures import body_masks, whole_in_patch
from .real_acceptance import LOSSES, case_specs
from .synthesis import FRACTURE_KINDS, genant_grade

BODY_MARGIN_PX = 3  # the body's mask dilated by this much is "the body" when a change is placed inside or outside


@dataclass
class Fractured:
    kind: str
    loss: float          # measured on the deformed mask when it was simulated
    grade: int
    image: np.ndarray    # (C, H, W) model range


@dataclass
class RealBody:
    """One intact real vertebral body, whole in its patch, with the fractures simulated on it."""

    case: str
    group: str
    level: str
    image: np.ndarray    # (C, H, W) model range
    mask: np.ndarray     # (H, W) bool
    fractures: list[Fractured] = field(default_factory=list)


def unseen_specs(experiment: Experiment, bundle: Bundle, root: Path) -> list[CaseSpec]:
    """The bundle's real series that its DAE did not train on, within the data sources its OOD detector is fitted
    on (all sources where none are named)."""
    train, _ = vertebra_splits(training_cut(experiment, bundle.config), root, None)
    trained = {s.case for s in train}
    sources = experiment.ood_sources
    return [s for s in case_specs(bundle, root)
            if s.case not in trained and (not sources or data_source(s.group) in sources)]


def real_bodies(bundle: Bundle, specs: list[CaseSpec], kinds: tuple[str, ...] = FRACTURE_KINDS) -> list[RealBody]:
    """Every intact (morphometric G0) body whole in the bundle's patch (no lateral offset), with one simulated
    fracture of each kind at each grade G1-G3 that the simulation could make."""
    config = bundle.config
    size, spacing = config.patch_size_px, config.patch_spacing_mm
    settings = Settings(size, spacing, [0.0], config.preprocessing, list(LOSSES), list(kinds))
    bodies = []
    for spec in specs:
        case = spec.load()
        if case.body_mask is None:
            continue
        samples = list(case_samples(case, settings, []))
        for position in case.positions:
            mine = [s for s in samples if s["label"] == position.label]
            intact = [s for s in mine if not s["simulated"] and s["grade"] == 0]
            if not intact:
                continue
            try:
                mask = extract_sagittal_patch(body_masks(case.body_mask, position.label)[0], position.ras, size,
                                              spacing, 0.0, 0.0).pixels >= 0.5
            except InputError:
                continue
            if not whole_in_patch(mask):
                continue
            bodies.append(RealBody(spec.case, spec.group, position.level, intact[0]["image"], mask, [
                Fractured(s["kind"], float(s["measured"]), int(s["grade"]), s["image"]) for s in mine
                if s["simulated"]]))
    return bodies


def ruler_check(bodies: list[RealBody], spacing_mm: float) -> dict:
    """The ruler read on each simulated fracture against its intact body, beside the loss its deformed mask
    measured (mean absolute difference, the share read in the fracture's grade, medians by grade, how many it could
    not read), and on the intact bodies themselves (their natural shape reads as a small loss)."""
    read, truth, grades, unread = [], [], [], 0
    intact = []
    for body in bodies:
        ruler = EndplateRuler(body.image, body.mask, spacing_mm)
        intact.append(ruler.height_loss(body.image))
        for fracture in body.fractures:
            loss = ruler.height_loss(fracture.image)
            if loss is None:
                unread += 1
                continue
            read.append(loss)
            truth.append(fracture.loss)
            grades.append(fracture.grade)
    read, truth, grades = np.array(read), np.array(truth), np.array(grades)
    intact = np.array([v for v in intact if v is not None])
    if not len(read):
        return {"n": 0, "unread": unread}
    return {"n": int(len(read)), "unread": unread, "mean_abs_error": float(np.mean(np.abs(read - truth))),
            "mean_error": float(np.mean(read - truth)),
            "grade_agreement": float(np.mean([genant_grade(r) == genant_grade(t) for r, t in zip(read, truth)])),
            "correlation": float(np.corrcoef(read, truth)[0, 1]) if len(read) > 2 else float("nan"),
            "by_grade": {int(g): {"n": int((grades == g).sum()), "median_read": float(np.median(read[grades == g])),
                                  "median_measured": float(np.median(truth[grades == g]))}
                         for g in np.unique(grades)},
            "intact_median_read": float(np.median(intact)) if len(intact) else float("nan"),
            "intact_read_g0": float(np.mean([genant_grade(v) == 0 for v in intact])) if len(intact) else float("nan")}


def healthy_counterfactuals(explainer: Explainer, bodies: list[RealBody], task: TaskSpec, preset: str
                            ) -> list[dict]:
    """Per intact body: its grade, and each grade counterfactual's height loss against the reconstruction (the
    ruler's) with the change inside the body and outside it."""
    rows = []
    for body in bodies:
        explanation = _explain(explainer, body.image, task, preset)
        ruler = EndplateRuler(explanation.reconstruction, body.mask, explainer.config.patch_spacing_mm)
        region = _body_region(body.mask)
        rows.append({"case": body.case, "level": body.level, "grade": int(explanation.grades.grade[0]),
                     "cf_losses": [ruler.height_loss(cf) for cf in explanation.counterfactuals],
                     "cf_change": [proximity(cf, explanation.reconstruction, region, dilate_px=0)
                                   for cf in explanation.counterfactuals]})
    return rows


def restored_fractures(explainer: Explainer, bodies: list[RealBody], task: TaskSpec, preset: str,
                       min_grade: int) -> list[dict]:
    """Per chosen simulated fracture (``chosen_fractures``): its grade, and the height loss against the intact
    body of the fracture itself and of its G0 counterfactual (is the height restored?), both read by the ruler."""
    rows = []
    for number, body in enumerate(bodies):
        ruler = EndplateRuler(body.image, body.mask, explainer.config.patch_spacing_mm)
        for fracture in chosen_fractures(body, number, min_grade):
            explanation = _explain(explainer, fracture.image, task, preset)
            rows.append({"case": body.case, "level": body.level, "kind": fracture.kind,
                         "simulated_grade": fracture.grade, "simulated_loss": fracture.loss,
                         "grade": int(explanation.grades.grade[0]),
                         "read_loss": ruler.height_loss(fracture.image),
                         "g0_loss": ruler.height_loss(explanation.counterfactuals[0])})
    return rows


def chosen_fractures(body: RealBody, number: int, min_grade: int) -> list[Fractured]:
    """One simulated fracture of each grade from ``min_grade`` up, its kind taking turns from body to body (every
    fracture of every body would cost an explanation each)."""
    chosen = []
    for grade in sorted({f.grade for f in body.fractures if f.grade >= min_grade}):
        of_grade = sorted((f for f in body.fractures if f.grade == grade), key=lambda f: f.kind)
        chosen.append(of_grade[(number + grade) % len(of_grade)])
    return chosen


def _explain(explainer: Explainer, image: np.ndarray, task: TaskSpec, preset: str) -> Explanation:
    explanation = explainer.explain(image, task, preset=preset, sweep_count=0)
    explainer.forget_inversions()
    return explanation


def _body_region(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=BODY_MARGIN_PX)


def summary(healthy: list[dict], fractures: list[dict], n_grades: int) -> dict:
    """Per target grade: how many counterfactuals the ruler read, their median loss, the share whose loss falls in
    the target's Genant band, and the mean change inside and outside the body; for the fractures, the share whose
    G0 counterfactual the ruler reads as G0 (height restored)."""
    by_target = []
    for g in range(n_grades):
        losses = np.array([row["cf_losses"][g] for row in healthy if row["cf_losses"][g] is not None], dtype=float)
        changes = [row["cf_change"][g] for row in healthy]
        by_target.append({
            "read": int(len(losses)), "of": len(healthy),
            "median_loss": float(np.median(losses)) if len(losses) else float("nan"),
            "in_band": float(np.mean([genant_grade(v) == g for v in losses])) if len(losses) else float("nan"),
            "at_least_band": float(np.mean([genant_grade(v) >= g for v in losses])) if len(losses) else float("nan"),
            "change_inside": float(np.mean([c["inside"] for c in changes])) if changes else float("nan"),
            "change_outside": float(np.mean([c["outside"] for c in changes])) if changes else float("nan")})
    read = [row for row in fractures if row["g0_loss"] is not None and row["read_loss"] is not None]
    return {"healthy_bodies": len(healthy), "healthy_graded_g0": float(np.mean([r["grade"] == 0 for r in healthy]))
            if healthy else float("nan"), "by_target": by_target,
            "fractures": len(fractures), "fractures_read": len(read),
            "fracture_read_loss_median": float(np.median([r["read_loss"] for r in read])) if read else float("nan"),
            "g0_restored": float(np.mean([genant_grade(r["g0_loss"]) == 0 for r in read])) if read else float("nan"),
            "g0_loss_median": float(np.median([r["g0_loss"] for r in read])) if read else float("nan")}
