"""The severity sweep as an animation (``daecf explain --animate``): the original patch beside the sweep, from the
most severe grade to healthy and back, every frame labelled with its distance and calibrated grade.

A moving edit shows where the model's grade lives in the image better than a row of stills (the latent-shift /
Gifsplanation idea). Frames are drawn with Pillow alone, in the model range like the strip (for CT, the bundle's
window); the ends of the sweep are held a little longer so the eye can compare them with the original.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .video import write_animation

if TYPE_CHECKING:  # the constants are read by the parser, which must not import torch
    from ..bundle.spec import TaskSpec
    from ..inference.explainer import Explainer, Explanation

SWEEP_FRAMES = 15    # sweep images decoded for an animation: 28 frames there and back
FRAME_MS = 150       # per frame; the most severe and the healthy end are held END_HOLD times as long
END_HOLD = 4
PANEL_PX = 256       # patches are scaled up by a whole factor to about this size
TEXT_PX = 15


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=TEXT_PX)
    except (TypeError, OSError):  # Pillow without FreeType: its small bitmap font
        return ImageFont.load_default()


def _panel(image: np.ndarray, scale: int):
    from PIL import Image

    from .strips import to_display

    shown = np.round(to_display(image) * 255).astype(np.uint8)
    panel = Image.fromarray(shown, "L" if shown.ndim == 2 else "RGB")
    return panel.resize((panel.width * scale, panel.height * scale), Image.NEAREST)


def sweep_order(explanation: Explanation, spec: TaskSpec) -> list[int]:
    """Sweep indices in distance order from the end with the higher calibrated score (the more severe) to the
    other, and back (ends not repeated)."""
    order = [int(i) for i in np.argsort(explanation.sweep_distances, kind="stable")]
    if len(order) > 1 and spec.calibration.score(explanation.sweep_distances[order[-1]]) > \
            spec.calibration.score(explanation.sweep_distances[order[0]]):
        order.reverse()
    return order + order[-2:0:-1]


def sweep_frames(original: np.ndarray, explanation: Explanation, spec: TaskSpec, title: str = "",
                 frame_ms: int = FRAME_MS):
    """(Pillow frames, durations in ms): original | sweep image, with a caption and a severity bar."""
    from PIL import Image, ImageDraw

    order = sweep_order(explanation, spec)
    scale = max(1, round(PANEL_PX / original.shape[-1]))
    left = _panel(original, scale)
    width, height = left.size
    font, line = _font(), TEXT_PX + 6
    names = explanation.grade_names
    grades = spec.calibration.grade(explanation.sweep_distances)
    scores = spec.calibration.score(explanation.sweep_distances)
    g = explanation.grades
    low, high = float(explanation.sweep_distances.min()), float(explanation.sweep_distances.max())
    frames = []
    for index in order:
        frame = Image.new(left.mode, (2 * width + 12, height + 4 * line + 14), 0)
        draw = ImageDraw.Draw(frame)
        draw.text((4, 2), title, fill=_white(frame), font=font)
        draw.text((4, 2 + line), f"original: {names[int(g.grade[0])]} (d = {g.distance[0]:+.2f})", fill=_white(frame),
                  font=font)
        draw.text((width + 16, 2 + line), "counterfactual sweep", fill=_white(frame), font=font)
        frame.paste(left, (4, 2 * line + 6))
        frame.paste(_panel(explanation.sweep[index], scale), (width + 8, 2 * line + 6))
        distance = float(explanation.sweep_distances[index])
        caption = f"d = {distance:+.2f}   calibrated grade {names[int(grades[index])]} (score {scores[index]:.2f})"
        draw.text((4, height + 2 * line + 10), caption, fill=_white(frame), font=font)
        _severity_bar(draw, font, (width + 8, height + 3 * line + 12, 2 * width + 8), (low, high),
                      [names[int(spec.calibration.grade(d))] for d in (low, high)], distance,
                      float(g.distance[0]), _white(frame))
        frames.append(frame)
    ends = {0, len(order) // 2}
    return frames, [frame_ms * END_HOLD if n in ends else frame_ms for n in range(len(frames))]


def _white(frame):
    return 255 if frame.mode == "L" else (255, 255, 255)


def _severity_bar(draw, font, box, span, end_names, distance: float, original: float, colour) -> None:
    """A line over the sweep's distances (low to high, left to right), named by the calibrated grades at its ends:
    a tick at the original's distance, a block at this frame's."""
    left, y, right = box
    low, high = span
    x0, x1 = left + 4 + TEXT_PX * 2, right - 4 - TEXT_PX * 2

    def x(d: float) -> float:
        return x0 + (x1 - x0) * (d - low) / (high - low) if high > low else (x0 + x1) / 2

    draw.text((left, y - TEXT_PX // 2 - 2), end_names[0], fill=colour, font=font)
    draw.text((x1 + 6, y - TEXT_PX // 2 - 2), end_names[1], fill=colour, font=font)
    draw.line((x0, y, x1, y), fill=colour, width=1)
    draw.line((x(original), y - 5, x(original), y + 5), fill=colour, width=1)
    draw.rectangle((x(distance) - 3, y - 4, x(distance) + 3, y + 4), fill=colour)


def write_sweep_animation(path: str | Path, explainer: Explainer, original: np.ndarray, explanation: Explanation,
                          title: str = "", frame_ms: int = FRAME_MS) -> Path:
    frames, durations = sweep_frames(original, explanation, explainer.bundle.task(explanation.task), title,
                                     frame_ms)
    return write_animation(Path(path), frames, durations)
