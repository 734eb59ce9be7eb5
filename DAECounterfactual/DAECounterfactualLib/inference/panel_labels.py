"""What each counterfactual panel is called wherever it is shown (the strip, Slicer's views, summary.json).

A panel is made for a grade, but the decoder may not draw the edit far enough (Pfirrmann 5 on discs, G3 on CT):
the model then grades its own picture otherwise, and the panel says which grade it reads as instead of passing
for the grade it was made for. Nor is any panel the image's own when the inversion did not retrace it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the Slicer Logic imports these labels before torch is installed
    from .explainer import Explanation


def panel_names(explanation: Explanation) -> list[str]:
    """One title per grade panel: its grade, with "(reads G)" when the model grades the drawn image G."""
    names = explanation.grade_names
    return [name if read == g else f"{name} (reads {names[read]})"
            for g, (name, read) in enumerate(zip(names, explanation.panel_grades))]


def panel_note(explanation: Explanation) -> str:
    """What to know before reading the panels ("" when nothing): those the model does not read as their grade,
    and every one when the inversion did not retrace the image."""
    return " ".join(note for note in (_unreached_note(explanation), _retrace_note(explanation)) if note)


def _unreached_note(explanation: Explanation) -> str:
    missed = explanation.unreached
    if not missed:
        return ""
    names = explanation.grade_names
    listed = ", ".join(f"{names[g]} reads as {names[explanation.panel_grades[g]]}" for g in missed)
    which, it = ("panel", "it") if len(missed) == 1 else ("panels", "them")
    drawn = " or ".join(names[g] for g in missed)
    return (f"counterfactual {which} {listed}: the model cannot draw {drawn} for this image; "
            f"do not read {it} as that grade")


def _retrace_note(explanation: Explanation) -> str:
    if explanation.retraced:
        return ""
    return (f"the inversion did not retrace this image even at {explanation.preset.invert} steps: the "
            "reconstruction and every panel differ from it by more than the model's own error; compare the panels "
            "with the reconstruction, not with the image")


def panel_readings(explanation: Explanation) -> dict[str, str]:
    """Grade name -> the grade name the model reads its panel as (summary.json)."""
    names = explanation.grade_names
    return {name: names[read] for name, read in zip(names, explanation.panel_grades)}
