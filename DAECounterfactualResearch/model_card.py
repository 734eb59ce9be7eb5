"""The model card of a bundle (MODEL_CARD.md): written whole by make_bundle.py, its task lines and edit-gain section
rewritten by refit_tasks.py and fit_edit_gain.py, the rest kept as it was.
"""

from __future__ import annotations

from pathlib import Path

from DAECounterfactualLib.bundle.domain import TrainingDomain, level_span
from DAECounterfactualLib.bundle.spec import BundleConfig
from DAECounterfactualLib.cli.bench import preset_label

from .experiment import Experiment
from .task_fitting import MIN_RESPONSE_CORRELATION, MIN_RESPONSE_SLOPE

GAIN_HEADING = "## Counterfactual edit gain"
DOMAIN_HEADING = "## Trained on"
INTENDED_USE_HEADING = "## Intended use"
VALIDATION_HEADING = "## Validation"
TASK_LINE = "- Task"  # "- Task `name` (...)" lines, and the "- Tasks refitted ..." line this script adds


def render_model_card(experiment: Experiment, config: BundleConfig, run_meta: dict, tasks, parameters: int,
                      recon_mse: float, fp16_delta: float, reliance: float,
                      checked_on: str = "validation images") -> str:
    data, train = run_meta.get("data", {}), run_meta.get("train_config", {})
    hours = run_meta.get("elapsed_s", 0) / 3600
    lines = [
        f"# {config.name}", "", config.description, "",
        "**Not for clinical use.** A research model that explains its own grading; its grades are not diagnoses.", "",
        "## Model",
        f"- Diffusion autoencoder, {parameters / 1e6:.2f} M parameters, z_sem {config.model.z_dim}-d, "
        f"input {config.model.in_channels}×{config.patch_size_px}×{config.patch_size_px} px at "
        f"{config.patch_spacing_mm} mm/px; modality: {config.modality}.",
        f"- Preprocessing: {config.preprocessing.to_dict()}.",
        presets_card_line(config),
        "", "## Training data",
        f"- File `{data.get('file')}` (sha256 `{str(data.get('sha256'))[:16]}…`), {data.get('train_images')} training "
        f"images, {data.get('val_images')} validation images. Experiment config `{data.get('experiment')}`.",
        "", "## Compute",
        f"- {run_meta.get('samples_seen', 0):,} samples seen (batch {train.get('batch_size')}, lr {train.get('lr')}, "
        f"EMA {train.get('ema_decay')}), {hours:.2f} h on {run_meta.get('device')} "
        f"(world size {run_meta.get('world_size')}), precision {train.get('precision')}, loss weighting "
        f"{train.get('loss_weighting', 'eps')}.",
    ]
    if run_meta.get("warm_start"):
        lines.append(f"- Warm start from `{Path(run_meta['warm_start']['file']).name}` (sha256 "
                     f"`{run_meta['warm_start']['sha256'][:16]}…`); its own compute is not counted above.")
    if experiment.bundle.get("compute_note"):
        lines.append(f"- {experiment.bundle['compute_note']}")
    lines += [
        "", "## Validation",
        f"- EMA reconstruction MSE on {checked_on} (model range [-1, 1], 'standard' preset): {recon_mse:.2e}.",
        f"- z_sem reliance (clean-image error at t in [400, 800) with another image's z_sem minus with its own; "
        f"0 = the decoder ignores z_sem): {reliance:.4f}.",
        f"- Weights stored as fp16: max |Δ signed distance| vs fp32 on the latents of {checked_on} "
        f"{fp16_delta:.2e}.",
    ]
    lines += task_card_lines(experiment, tasks)
    if experiment.bundle.get("limitations"):
        lines += ["", "## Limitations", experiment.bundle["limitations"]]
    if config.trained_on:
        lines += ["", domain_card_section(config).rstrip("\n")]
    lines += ["", INTENDED_USE_HEADING,
              "Research on counterfactual explanations: showing how this model's latent direction for the "
              "pathology changes an image. Out-of-distribution inputs are flagged from the latent statistics of the "
              "training set.", ""]
    return "\n".join(lines)


def task_card_lines(experiment: Experiment, tasks) -> list[str]:
    """The model card's lines on each task: its recipe, validation metrics and latent geometry."""
    lines = []
    recipes = {t["name"]: t for t in experiment.tasks}
    for task in tasks:
        m, g = task.metrics, task.metrics["latent_geometry"]
        where = "validation" if m.get("split", "val") == "val" else f"out-of-fold ({m['split']})"
        recipe = recipes[task.name]
        ordinal = " ordering every grade" if recipe.get("ordinal") else ""
        lines += [f"- Task `{task.name}` ({task.positive_rule} positive; probe {task.probe.kind}{ordinal}, "
                  f"C={m.get('C')}, "
                  f"calibration {task.calibration.method}): {where} AUC {m['auc']:.3f}, grading MAE "
                  f"{m['mae']:.3f}, macro-F1 {m['macro_f1']:.3f}, accuracy {m['accuracy']:.3f} (n={m['n']}). "
                  f"Training latents in the probe's space: effective rank {g['effective_rank']:.2f}, variance along "
                  f"the probe normal {g['direction_variance']:.3g} (1 = an average direction; far below 1, the "
                  "decoder is unlikely to draw edits along it)."]
        if task.probe.edit_direction is not None:
            edit_components = recipe.get("edit_components")
            cos = float(task.probe.edit_axis @ task.probe.unit_normal)
            lines.append(f"  Counterfactual edits move along the normal's projection on the latents' top "
                         f"{edit_components} principal directions (cos {cos:.3f} with the normal), which the decoder "
                         "draws; grades use the whole normal.")
    return lines


def with_task_lines(card: str, lines: list[str]) -> str:
    """The model card with the task lines of its Validation section (and their indented continuations) replaced
    by ``lines``; the rest of the card (training data, compute, limitations) is kept as it was. A card without
    that section gets one at its end."""
    head, heading, rest = card.partition(f"\n{VALIDATION_HEADING}\n")
    if not heading:  # a hand-written card: the task lines get a section of their own
        return card.rstrip("\n") + f"\n\n{VALIDATION_HEADING}\n" + "\n".join(lines) + "\n"
    section, next_heading, tail = rest.partition("\n## ")
    kept = [line for line in section.split("\n") if not line.startswith((TASK_LINE, "  "))]
    while kept and not kept[-1].strip():
        kept.pop()
    return head + heading + "\n".join(kept + lines) + "\n" + ("\n## " + tail if next_heading else "")


def gain_card_section(tasks) -> str:
    lines = [GAIN_HEADING,
             "Latent steps along the probe normal are multiplied by the task's edit gain, fitted on validation images "
             "so that decoded counterfactuals re-encode to their target distance (the decoder renders only part of "
             "a latent step). Response slope = re-encoded step / requested step."]
    for task in tasks:
        rounds = task.metrics.get("edit_gain_fit", {}).get("rounds", [])
        fits = "; ".join(f"gain {r['gain']:.2f} → slope {r['response_slope']:.3f} (r={r['correlation']:.2f})"
                         for r in rounds)
        lines.append(f"- Task `{task.name}`: edit gain {task.edit_gain:.2f} ({fits}).")
        if task.metrics.get("edit_gain_fit", {}).get("no_response"):
            lines.append(f"  **The decoder does not follow this task's probe direction** (response below slope "
                         f"{MIN_RESPONSE_SLOPE} or correlation {MIN_RESPONSE_CORRELATION}): no gain can make valid "
                         "counterfactuals, so none is applied; its counterfactuals barely differ from the "
                         "reconstruction. Grades are unaffected.")
    return "\n".join(lines) + "\n"


def domain_card_section(config: BundleConfig) -> str:
    """What the bundle was trained on, and what is flagged for lying outside it (``BundleConfig.trained_on``)."""
    domain: TrainingDomain = config.trained_on
    where = f"{config.modality}, {domain.units or 'units not stated'}, patches of {config.patch_size_px} px at " \
            f"{config.patch_spacing_mm:g} mm (`config.json`, `trained_on`)"
    if domain.target_kind == "image":
        return "\n".join([DOMAIN_HEADING, f"- Whole images: {where}.", ""])
    levels = level_span(domain.levels) if domain.levels else "levels not stated"
    other = "disc" if domain.target_kind == "vertebra" else "vertebra"
    return "\n".join([
        DOMAIN_HEADING,
        f"- {domain.targets.capitalize()} {levels}: the levels of the graded "
        f"training patches; {where}.",
        f"- Flagged out of distribution, with the reason, wherever grades are shown: a target whose level is named "
        f"(label map, centroid file, a point named e.g. `L3` or `L4-L5`) and lies outside {levels}, or a {other} "
        f"given to this {domain.target_kind} model. A point with no level name is judged by the OOD score alone.",
        ""])


PRESETS_LINE = "- Step presets"


def presets_card_line(config: BundleConfig) -> str:
    mixing = "; AAm: Anderson mixing of m earlier iterates" if any(p.anderson for p in config.presets.values()) else ""
    return (f"{PRESETS_LINE} (inversion steps × (1 + fixed-point refinements) / decoding steps; ≤ where a tolerance "
            f"stops refinements early{mixing}): " + ", ".join(f"{k} {preset_label(vars(p))}"
                                                               for k, p in config.presets.items()))


def with_presets_line(card: str, config: BundleConfig) -> str:
    """The model card with its step-presets line rewritten for ``config`` (a card without one gets it at its end)."""
    lines = card.split("\n")
    if not any(line.startswith(PRESETS_LINE) for line in lines):
        return card.rstrip("\n") + "\n\n" + presets_card_line(config) + "\n"
    return "\n".join(presets_card_line(config) if line.startswith(PRESETS_LINE) else line for line in lines)


def with_section(card: str, heading: str, section: str, before: tuple[str, ...] = (INTENDED_USE_HEADING,)) -> str:
    """The model card with the section under ``heading`` replaced by ``section``; a card without it gets it before
    the first of the ``before`` headings it has, else at its end."""
    if heading in card:
        head, _, rest = card.partition(heading)
        _, next_heading, tail = rest.partition("\n## ")
        return head + section + ("\n## " + tail if next_heading else "")
    for marker in before:
        head, found, tail = card.partition(marker)
        if found:
            return head + section + "\n" + marker + tail
    return card.rstrip("\n") + "\n\n" + section


def with_gain_section(card: str, tasks) -> str:
    """The model card with its edit-gain section replaced (or appended)."""
    head = card.split(GAIN_HEADING)[0].rstrip("\n")
    return f"{head}\n\n{gain_card_section(tasks)}"
