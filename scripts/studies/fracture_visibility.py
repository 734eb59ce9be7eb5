#!/usr/bin/env python
"""Can a simulated fracture on a real vertebra be seen, at a given patch resolution and intensity window?

Issue 21's first step, before any training: on every real intact vertebra whose body lies whole in the image,
simulate wedge, biconcave and crush fractures of each Genant grade and measure, per (size, spacing, window):
- whether the superior endplate seen in the image moves with the deformed body mask (whose morphometry reads
  the requested loss within MAX_LOSS_ERROR, or the fracture is dropped, as the dataset builder does);
- how much of the patch the fracture changes (pixels moving by more than 5 % of the window) and by how much;
- whether a logistic regression on the pixels separates fractured from intact patches (cross-validated by
  vertebra: no body is scored by a model that saw it), and how often it ranks each fractured patch above its own
  intact twin;
- how well the endplate ruler (``endplate_ruler``, which reads counterfactuals of real bodies) reads the height
  loss from the image, following the intact body's endplates, against the deformed mask's.
Writes a JSON record and one PNG strip per setting (intact, then G1-G3 of each kind, for three vertebrae).

    python scripts/studies/fracture_visibility.py --data-root DATA --out docs/results/ct-real
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.inference.geometry import extract_sagittal_patch
from DAECounterfactualLib.io.volumes import Volume
from DAECounterfactualLib.model.preprocessing import Preprocessing
from DAECounterfactualResearch.dataset_building import (MAX_LOSS_ERROR, body_centred, ct_case_specs,
                                                        tilts_by_label)
from DAECounterfactualResearch.endplate_ruler import EndplateRuler
from DAECounterfactualResearch.evaluation import out_of_fold_scores
from DAECounterfactualResearch.patch_fractures import body_masks, fracture_in_patch, whole_in_patch
from DAECounterfactualResearch.real_acceptance import twin_move
from DAECounterfactualResearch.synthesis import FRACTURE_KINDS, achieved_height_loss, genant_grade, simulate_fracture

LOSSES = {1: 0.22, 2: 0.32, 3: 0.45}  # mid-grade Genant height losses
SETTINGS = {  # name: (size px, spacing mm, window HU)
    "64px-1.5mm-wide": (64, 1.5, (-1000.0, 1500.0)),
    "64px-1.5mm-bone": (64, 1.5, (-200.0, 800.0)),
    "96px-1mm-bone": (96, 1.0, (-200.0, 800.0)),
    "96px-1mm-wide": (96, 1.0, (-1000.0, 1500.0)),
    "64px-1mm-bone": (64, 1.0, (-200.0, 800.0)),     # a tighter field of view: 64 mm instead of 96
    "64px-0.8mm-bone": (64, 0.8, (-200.0, 800.0)),   # 51 mm, about one lumbar body and its discs
}
VISIBLE_CHANGE = 0.05  # of the model range [-1, 1]: 2.5 % of the window


def intact_bodies(data_root: Path, centre_on_body: bool, along_spine: bool, excluded: set[str]
                  ) -> list[tuple[str, str, object, float, Volume, Volume, Volume]]:
    """(case, patient, position, tilt, volume, that body's mask, the other bodies' mask) for every real vertebra
    graded G0, placed as the dataset builder places it with the same options."""
    bodies = []
    for spec in ct_case_specs(data_root):
        if spec.case in excluded:
            continue
        case = spec.load()
        case = body_centred(case) if centre_on_body else case
        tilts = tilts_by_label(case.positions) if along_spine else {}
        for position in case.positions:
            if case.grades.get(position.label) == 0 and case.body_mask is not None and (
                    position.label in tilts or not along_spine):
                bodies.append((case.case, spec.group, position, tilts.get(position.label, 0.0), case.volume,
                               *body_masks(case.body_mask, position.label)))
    return bodies


def simulate(model: str, volume, body, others, ras, tilt, size, spacing, loss, kind):
    """``stretch``: the simulation before issue 21 (the disc above stretches, into the next body if thin);
    ``disc``: the stretch stops short of the next body (the dataset builder's default now);
    ``follows``: the spine above follows a wedge or crush collapse, the disc fills a biconcave one."""
    if model in ("disc", "follows"):
        return fracture_in_patch(volume, body, others, ras, size, spacing, 0.0, loss, kind, model == "follows", tilt)
    patch = extract_sagittal_patch(volume, ras, size, spacing, tilt_deg=tilt).pixels
    mask = extract_sagittal_patch(body, ras, size, spacing, 0.0, 0.0, tilt).pixels >= 0.5
    return simulate_fracture(patch, mask, loss, kind, spacing)


def fractures_of(model, volume, body, others, ras, tilt, size, spacing) -> list[dict]:
    """Every kind at every grade that the simulation achieves within MAX_LOSS_ERROR of the request."""
    made = []
    for grade, loss in LOSSES.items():
        for kind in FRACTURE_KINDS:
            try:
                fracture = simulate(model, volume, body, others, ras, tilt, size, spacing, loss, kind)
            except InputError:
                continue
            measured = achieved_height_loss(kind, fracture.heights_before, fracture.heights)
            if abs(measured - loss) <= MAX_LOSS_ERROR:
                made.append({"grade": grade, "kind": kind, "loss": loss, "mask_loss": measured,
                             "image": fracture.image, "mask": fracture.mask})
    return made


def endplate_offset_mm(image_hu: np.ndarray, mask: np.ndarray, spacing: float) -> float:
    """Median distance between the superior endplate the image shows and the mask's, over the middle 80 % of
    the body's columns: per column, the strongest dark-to-bright step (disc to bone, going down) within 8 mm of
    the mask's top. Small for an intact body; stays small after a fracture only if the image moved with the mask."""
    smooth = ndimage.gaussian_filter1d(image_hu.astype(np.float64), 1.0, axis=0)
    step = np.diff(smooth, axis=0)  # row r: image[r + 1] - image[r]
    columns = np.flatnonzero(mask.any(axis=0))
    inner = columns[int(0.1 * len(columns)): max(int(0.9 * len(columns)), int(0.1 * len(columns)) + 1)]
    reach = int(round(8.0 / spacing))
    offsets = []
    for c in inner:
        top = int(np.flatnonzero(mask[:, c])[0])
        low, high = max(top - reach, 0), min(top + reach, step.shape[0])
        offsets.append(abs(low + int(np.argmax(step[low:high, c])) + 1 - top) * spacing)
    return float(np.median(offsets))


def measure_setting(bodies, size: int, spacing: float, window: tuple[float, float], model: str) -> tuple[dict, list]:
    preprocessing = Preprocessing("ct_window", *window)
    images, labels, groups, patients, pair_of, rows, strips, intact_offsets = [], [], [], [], [], [], [], []
    for case, patient, position, tilt, volume, body, others in bodies:
        try:
            patch = extract_sagittal_patch(volume, position.ras, size, spacing, tilt_deg=tilt)
        except InputError:
            continue
        body_patch = extract_sagittal_patch(body, position.ras, size, spacing, 0.0, 0.0, tilt).pixels >= 0.5
        if not whole_in_patch(body_patch):
            continue  # no whole body to measure
        key = f"{case}:{position.level}"
        intact = preprocessing.apply(patch.pixels)
        intact_index = len(images)
        images.append(intact), labels.append(0), groups.append(key), patients.append(patient), pair_of.append(-1)
        intact_offsets.append(endplate_offset_mm(patch.pixels, body_patch, spacing))
        ruler = EndplateRuler(intact[None], body_patch, spacing)
        fractures = fractures_of(model, volume, body, others, position.ras, tilt, size, spacing)
        for fracture in fractures:
            fractured = preprocessing.apply(fracture["image"])
            change = np.abs(fractured - intact)
            rows.append({"body": key, "grade": fracture["grade"], "kind": fracture["kind"], "loss": fracture["loss"],
                         "mask_loss": fracture["mask_loss"], "ruler_loss": ruler.height_loss(fractured[None]),
                         "endplate_offset_mm": endplate_offset_mm(fracture["image"], fracture["mask"], spacing),
                         "changed_mm2": float((change > VISIBLE_CHANGE).sum() * spacing ** 2),
                         "mean_change_in_changed": float(change[change > VISIBLE_CHANGE].mean())
                         if (change > VISIBLE_CHANGE).any() else 0.0})
            images.append(fractured), labels.append(1), groups.append(key), patients.append(patient)
            pair_of.append(intact_index)
        if len(strips) < 3 and fractures:
            strips.append([intact] + [preprocessing.apply(f["image"]) for f in fractures if f["kind"] == "wedge"])
    return _summary(np.array(images), np.array(labels), np.array(groups), np.array(patients), np.array(pair_of), rows,
                    intact_offsets), strips


def _summary(images, labels, groups, patients, pair_of, rows, intact_offsets) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    features = images.reshape(len(images), -1)

    def pixel_model(x, y):
        model = LogisticRegression(C=0.01, max_iter=2000).fit(x, y)
        return model.decision_function

    scores = out_of_fold_scores(features, labels, groups, pixel_model)
    fractured = np.flatnonzero(labels == 1)
    auc = float(roc_auc_score(labels, scores))
    by_patient = float(roc_auc_score(labels, out_of_fold_scores(features, labels, patients, pixel_model)))
    move, shared = pixel_twin_move(features, pair_of, np.isin([r["grade"] for r in rows], (2, 3)))
    paired = float(np.mean(scores[fractured] > scores[pair_of[fractured]]))  # above its own intact twin
    by_grade = {g: [r for r in rows if r["grade"] == g] for g in LOSSES}
    read = [r for r in rows if r["ruler_loss"] is not None]
    return {
        "bodies": int((labels == 0).sum()), "fractures": int((labels == 1).sum()),
        "pixel_auc_grouped": auc, "pixel_auc_by_patient": by_patient, "pair_ordering": paired,
        "twin_move_g2_g3": move, "twin_move_shared": shared,
        "endplate_offset_mm_intact_median": float(np.median(intact_offsets)),
        "endplate_offset_mm_median_by_kind": {
            kind: float(np.median([r["endplate_offset_mm"] for r in rows if r["kind"] == kind])) for kind in FRACTURE_KINDS},
        "changed_mm2_median_by_grade": {g: float(np.median([r["changed_mm2"] for r in rs])) for g, rs in by_grade.items() if rs},
        "mean_change_in_changed": float(np.mean([r["mean_change_in_changed"] for r in rows])),
        "ruler_read": len(read),
        "ruler_mean_abs_error": float(np.mean([abs(r["ruler_loss"] - r["mask_loss"]) for r in read])),
        "ruler_grade_agreement": float(np.mean([genant_grade(r["ruler_loss"]) == genant_grade(r["mask_loss"])
                                                for r in read])),
        "ruler_median_by_grade": {g: float(np.median([r["ruler_loss"] for r in read if r["grade"] == g]))
                                  for g in LOSSES if any(r["grade"] == g for r in read)},
    }


def pixel_twin_move(features: np.ndarray, pair_of: np.ndarray, severe: np.ndarray,
                    pairs: int = 2000) -> tuple[float, float]:
    """The acceptance's twin move (``real_acceptance.twin_move``) of the G2-G3 fractures on the pixels, against
    random pairs of patches: a geometry judged by the figure a latent is judged by."""
    fractured = np.flatnonzero(pair_of >= 0)[severe]
    rng = np.random.default_rng(0)
    a, b = rng.choice(len(features), pairs), rng.choice(len(features), pairs)
    return twin_move(features, fractured, pair_of[fractured], a, b)


def write_strip(strips: list[list[np.ndarray]], path: Path) -> None:
    from PIL import Image

    rows = [np.concatenate(row, axis=1) for row in strips]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 2), (0, width - r.shape[1])), constant_values=-1) for r in rows]
    pixels = np.clip((np.concatenate(rows) + 1) * 127.5, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).resize((pixels.shape[1] * 2, pixels.shape[0] * 2), Image.NEAREST).save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, required=True, help="the shared data folder (holds spine_ct/)")
    parser.add_argument("--out", type=Path, required=True, help="folder for fracture_visibility.json and strips")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--model", choices=("disc", "follows", "stretch"), default="disc",
                        help="fracture model (see simulate()): disc (default), follows, or stretch (before issue 21)")
    parser.add_argument("--centre-on-body", action="store_true",
                        help="cut at each body's centroid, not the centroid file's point (build_dataset's option)")
    parser.add_argument("--along-spine", action="store_true",
                        help="rows along the spine between the neighbouring vertebrae (build_dataset's option)")
    parser.add_argument("--exclude-cases", default="", help="comma-separated series left out (build_dataset's option)")
    parser.add_argument("--tag", default="", help="appended to the output names (e.g. what --exclude-cases left out)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    excluded = {c for c in args.exclude_cases.split(",") if c}
    bodies = intact_bodies(args.data_root, args.centre_on_body, args.along_spine, excluded)
    suffix = "".join(f"_{part}" for part in (args.model, "body" * args.centre_on_body, "spine" * args.along_spine,
                                             args.tag) if part)
    record = {"losses": LOSSES, "visible_change": VISIBLE_CHANGE, "fracture_model": args.model,
              "centre_on_body": args.centre_on_body, "along_spine": args.along_spine,
              "excluded_cases": sorted(excluded), "settings": {}}
    for name in args.settings:
        size, spacing, window = SETTINGS[name]
        summary, strips = measure_setting(bodies, size, spacing, window, args.model)
        record["settings"][name] = {"size_px": size, "spacing_mm": spacing, "window_hu": window, **summary}
        write_strip(strips, args.out / f"fracture_strip_{name}{suffix}.png")
        print(f"{name}: {json.dumps(summary)}", flush=True)
    (args.out / f"fracture_visibility{suffix}.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
