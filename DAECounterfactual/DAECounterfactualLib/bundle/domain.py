"""What a bundle was trained on (target kind, spinal levels, intensity units) and whether a request falls outside.

The latent OOD score cannot tell a cervical vertebra from a lumbar one when both look like vertebrae, nor a disc
from a vertebra seen through the same patch; the level a request names can. A request whose level is known (a
label-map id, a centroid file, a point named ``L3`` or ``L4-L5``) and lies outside the trained levels is flagged
with the reason; with no known level (an unnamed click) the OOD score alone decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..io.volumes import BELOW, DISC_OFFSET, LABELS_BY_LEVEL, is_disc_label, level_name, target_kind

TARGET_KINDS = ("vertebra", "disc", "image")  # image: whole 2D images (e.g. fundus photographs), no levels


def level_kind(level: str | None) -> str | None:
    """'vertebra' or 'disc' for a level name ('L3', 'L4-L5'), None for anything else ('rank 3', a point's name)."""
    label = LABELS_BY_LEVEL.get((level or "").strip().upper())
    return None if label is None else target_kind(label)


def level_span(levels: tuple[str, ...]) -> str:
    """The levels as runs in anatomical order: 'T12–L5', 'C3–T1, T10–L5' with a gap, 'T12-L1 to L5-S1' for discs."""
    labels = sorted((LABELS_BY_LEVEL[name] for name in levels), key=_order)
    runs: list[list[int]] = []
    for label in labels:
        if runs and label in _following(runs[-1][-1]):
            runs[-1].append(label)
        else:
            runs.append([label])
    return ", ".join(_run_text(run) for run in runs)


def _vertebra(label: int) -> int:
    return label - DISC_OFFSET if is_disc_label(label) else label


def _order(label: int) -> float:
    """Craniocaudal position (a disc at the vertebra above it): T13 (28) between T12 and L1."""
    vertebra = _vertebra(label)
    return 19.5 if vertebra == 28 else vertebra


def _following(label: int) -> set[int]:
    """The levels that can come next below (discs for a disc): after T12, L1 or a T13, which few spines have."""
    vertebra = _vertebra(label)
    below = {BELOW.get(vertebra, vertebra + 1)} | ({28} if vertebra == 19 else set())
    return {b + DISC_OFFSET for b in below} if is_disc_label(label) else below


def _run_text(run: list[int]) -> str:
    names = [level_name(label) for label in run]
    if len(names) == 1:
        return names[0]
    return f"{names[0]} to {names[-1]}" if is_disc_label(run[0]) else f"{names[0]}–{names[-1]}"


@dataclass(frozen=True)
class TrainingDomain:
    """``trained_on`` of a bundle's config: what its probes were fitted on, so a request can be checked against it."""

    target_kind: str                 # one of TARGET_KINDS
    levels: tuple[str, ...] = ()     # level names the training patches were centred on; () for images
    units: str = ""                  # intensity units of the training images, e.g. "HU"

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tuple(self.levels))
        if self.target_kind not in TARGET_KINDS:
            raise ValueError(f"trained_on.target_kind must be one of {', '.join(TARGET_KINDS)}, "
                             f"got {self.target_kind!r}")
        wrong = [name for name in self.levels if name not in LABELS_BY_LEVEL or level_kind(name) != self.target_kind]
        if wrong:
            raise ValueError(f"trained_on.levels {wrong} are not {self.target_kind} level names (e.g. "
                             f"{'L4-L5' if self.target_kind == 'disc' else 'L4'})")
        object.__setattr__(self, "levels", tuple(sorted(set(self.levels), key=lambda n: _order(LABELS_BY_LEVEL[n]))))

    def outside(self, level: str | None) -> str:
        """Why a target at ``level`` lies outside the training data ("" if it does not, or the level is unknown)."""
        kind = level_kind(level)
        if kind is None or self.target_kind == "image":
            return ""
        name = level.strip().upper()
        if kind != self.target_kind:
            return f"{name} is a {kind}; this model grades {self.targets}"
        if self.levels and name not in self.levels:
            return f"level {name} lies outside the trained levels {level_span(self.levels)}"
        return ""

    @property
    def targets(self) -> str:
        """What the model grades, in words: 'vertebrae', 'discs' or 'images'."""
        return {"vertebra": "vertebrae", "disc": "discs", "image": "images"}[self.target_kind]

    def describe(self) -> str:
        """One line for reports: 'vertebrae T12–L5, HU'."""
        parts = [self.targets + (f" {level_span(self.levels)}" if self.levels else "")]
        return ", ".join(parts + ([self.units] if self.units else []))

    def to_dict(self) -> dict[str, Any]:
        return {"target_kind": self.target_kind, "levels": list(self.levels), "units": self.units}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainingDomain":
        return cls(target_kind=str(data["target_kind"]), levels=tuple(data.get("levels", ())),
                   units=str(data.get("units", "")))
