"""How a task graded real patients, as its acceptance measured it (``scripts/real_acceptance.py``), kept in the task.

A bundle can grade its test split well and real patients not at all (``vcf-ct``: phantoms stood in for patients).
The model card says so, but a grade is read in the panel, the strip and the scores table, not in the model card:
a task whose measured figures miss their targets gives every grade a caution naming them, and a retrained task
that meets them loses it when its acceptance is recorded again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FIGURE_NAMES = {"healthy_g0": "healthy vertebrae graded G0", "fracture_auc": "fractures told from healthy (AUC)",
                "within_one_grade": "fractures graded within one grade"}


@dataclass(frozen=True)
class RealDataCheck:
    measured_on: str                 # which real patients, e.g. "24 healthy vertebrae ... of 5 real CT series"
    figures: dict[str, float]        # FIGURE_NAMES keys -> measured value (the task as shipped)
    targets: dict[str, float]        # the same keys -> the least acceptable value
    command: str = ""                # how it was measured

    def __post_init__(self) -> None:
        unknown = sorted(set(self.figures) - set(FIGURE_NAMES))
        if unknown or not self.figures:
            raise ValueError(f"real_data.figures must name some of {', '.join(FIGURE_NAMES)}; got {unknown or 'none'}")
        if set(self.targets) != set(self.figures):
            raise ValueError("real_data.targets must name the same figures as real_data.figures")

    @property
    def missed(self) -> tuple[str, ...]:
        """The figures below their target (a NaN figure counts as missed)."""
        return tuple(k for k in self.figures if not self.figures[k] >= self.targets[k])

    @property
    def met(self) -> bool:
        return not self.missed

    @property
    def caution(self) -> str:
        """"" when every target is met; else one sentence with the figures missed, to show beside every grade."""
        if self.met:
            return ""
        figures = ", ".join(f"{FIGURE_NAMES[k]} {self.figures[k]:.2f} (target {self.targets[k]:.2f})"
                            for k in self.missed)
        return (f"not valid on real patients: on {self.measured_on}, {figures}; read this grade as a "
                "demonstration, not a finding")

    def to_dict(self) -> dict[str, Any]:
        return {"measured_on": self.measured_on, "figures": dict(self.figures), "targets": dict(self.targets),
                "command": self.command}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RealDataCheck":
        return cls(measured_on=str(data["measured_on"]), figures={k: float(v) for k, v in data["figures"].items()},
                   targets={k: float(v) for k, v in data["targets"].items()}, command=str(data.get("command", "")))
