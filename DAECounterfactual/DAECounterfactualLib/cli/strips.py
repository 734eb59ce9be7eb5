"""The counterfactual strip as a PNG: original | reconstruction | one panel per grade, with difference maps below.

Images are shown in the model range [-1, 1] (for CT that is the bundle's HU window), greyscale or RGB;
differences use a diverging map centred on zero so a reader sees where the model adds or removes intensity.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from ..inference.explainer import Explanation
from ..inference.panel_labels import panel_names, panel_note
from ..inference.scores import latent_reason

BANNER_CHARS_PER_INCH = 16  # characters of the 8 pt banner per inch of figure width, for wrapping
BANNER_LINE_INCHES = 0.15  # height of one banner line
STRIP_INCHES = (1.7, 4.6)  # width per panel column, and height of the two rows with their titles and a 2-line title
UNREACHED_COLOR = "tab:orange"  # the title of a panel the model grades otherwise than the grade it was made for


def to_display(image: np.ndarray) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> (H, W) or (H, W, 3) in [0, 1]."""
    image = (np.clip(image, -1, 1) + 1) / 2
    return image[0] if image.shape[0] == 1 else np.transpose(image, (1, 2, 0))


def show_image(ax, image: np.ndarray, title: str, highlight: bool = False, title_color: str = "black") -> None:
    shown = to_display(image)
    ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=8, fontweight="bold" if highlight else "normal", color=title_color)
    ax.set_xticks([])
    ax.set_yticks([])
    if highlight:
        for spine in ax.spines.values():
            spine.set_edgecolor("tab:red")
            spine.set_linewidth(2)


def save_strip(path: str | Path, original: np.ndarray, explanation: Explanation, title: str = "",
               ood_reason: str = "") -> Path:
    """Write the strip; the panel of the predicted grade is outlined. A flagged grade gets a red banner across the
    top with ``ood_reason`` (a score row's, ``scores.grade_row``; by default the latent's own), and so does a task
    with a caution (``TaskSpec.caution``), so the strip cannot be shown without its warning. A panel the model
    reads as another grade says so in its title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    names = explanation.grade_names
    predicted = int(explanation.grades.grade[0])
    columns = 2 + len(names)
    reason = ood_reason or latent_reason(explanation.grades, 0)
    warnings = ([f"out of distribution: {reason} — do not trust this grade"] if reason else []) + (
        [f"task {explanation.task}: {explanation.grades.caution}"] if explanation.grades.caution else [])
    banner = textwrap.wrap(" · ".join(warnings), int(STRIP_INCHES[0] * columns * BANNER_CHARS_PER_INCH))
    note = textwrap.wrap(panel_note(explanation), int(2 * columns * BANNER_CHARS_PER_INCH))
    extra_lines = (len(banner) + 0.6 if banner else 0) + len(note)
    fig, axes = plt.subplots(2, columns, figsize=(STRIP_INCHES[0] * columns,
                                                  STRIP_INCHES[1] + BANNER_LINE_INCHES * extra_lines),
                             squeeze=False)
    show_image(axes[0, 0], original, "original")
    show_image(axes[0, 1], explanation.reconstruction, "reconstruction")
    differences = explanation.differences.mean(axis=1)  # over channels
    limit = max(float(np.abs(differences).max()), 1e-6)
    unreached = set(explanation.unreached)
    for g, (name, label) in enumerate(zip(names, panel_names(explanation))):
        show_image(axes[0, 2 + g], explanation.counterfactuals[g], f"{label}\nd={explanation.target_distances[g]:+.2f}",
                   highlight=g == predicted, title_color=UNREACHED_COLOR if g in unreached else "black")
        axes[1, 2 + g].imshow(differences[g], cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        axes[1, 2 + g].set_title(f"{name} − recon.", fontsize=7)
    for ax in axes[1]:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[1, :2]:
        ax.axis("off")
    g = explanation.grades
    summary = (f"predicted {names[predicted]} (score {g.score[0]:.2f}, distance {g.distance[0]:+.2f}, "
               f"p={g.probability[0]:.2f}{', OUT OF DISTRIBUTION' if reason else ''}); "
               f"steps {explanation.preset.invert}/{explanation.preset.decode}")
    top = 1 - BANNER_LINE_INCHES * (len(banner) + 0.6) / fig.get_figheight() if banner else 1.0
    summary = "\n".join([summary, *note])
    fig.suptitle(f"{title}\n{summary}" if title else summary, fontsize=8, y=top - 0.08 / fig.get_figheight())
    if banner:  # a red band across the whole strip, above the title
        fig.patches.append(Rectangle((0, top), 1, 1 - top, transform=fig.transFigure, facecolor="tab:red",
                                     edgecolor="none"))
        fig.text(0.5, (1 + top) / 2, "\n".join(banner), ha="center", va="center", fontsize=8, fontweight="bold",
                 color="white")
    fig.tight_layout(rect=(0, 0, 1, top))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
