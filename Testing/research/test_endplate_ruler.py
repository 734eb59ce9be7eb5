"""The endplate ruler: heights of a body followed from a reference image's mask into another image of the patch,
whichever way the disc-to-bone contrast runs."""

from __future__ import annotations

import numpy as np
import pytest

from DAECounterfactualLib.errors import InputError
from DAECounterfactualResearch.endplate_ruler import EndplateRuler, height_loss
from DAECounterfactualResearch.synthesis import Heights

TOP, BOTTOM, FRONT, BACK = 20, 45, 16, 48  # the body: rows 20-44 (25 px), columns 16-47; anterior at column 16


def patch(body: float, disc: float, lowered=lambda column: 0) -> np.ndarray:
    """A body between two discs; ``lowered(column)`` rows of its top turned to disc."""
    image = np.full((1, 64, 64), -0.8)
    image[0, TOP - 8:BOTTOM + 8, FRONT:BACK] = disc
    for column in range(FRONT, BACK):
        image[0, TOP + lowered(column):BOTTOM, column] = body
    return image


MASK = np.zeros((64, 64), bool)
MASK[TOP:BOTTOM, FRONT:BACK] = True


@pytest.mark.parametrize("body, disc", [(0.5, -0.2), (-0.3, 0.7)], ids=["bright bone (CT)", "bright disc (T2)"])
def test_wedge_and_crush_read_as_the_height_they_took(body, disc):
    intact = patch(body, disc)
    ruler = EndplateRuler(intact, MASK, 1.5)
    heights = ruler.heights(intact)
    assert heights.ha == pytest.approx(25 * 1.5, abs=1.0) and heights.hp == pytest.approx(25 * 1.5, abs=1.0)
    assert ruler.height_loss(intact) == pytest.approx(0.0, abs=0.02)
    wedge = patch(body, disc, lambda c: int(round(10 * (BACK - 1 - c) / (BACK - 1 - FRONT))))  # anterior loses 10
    assert ruler.height_loss(wedge) == pytest.approx(0.40, abs=0.05)
    crush = patch(body, disc, lambda c: 8)
    assert ruler.height_loss(crush) == pytest.approx(8 / 25, abs=0.03)


def test_an_image_without_the_endplates_cannot_be_read():
    ruler = EndplateRuler(patch(0.5, -0.2), MASK, 1.5)
    assert ruler.heights(np.zeros((1, 64, 64))) is None and ruler.height_loss(np.zeros((1, 64, 64))) is None
    with pytest.raises(InputError, match="at least 16 pixels"):
        EndplateRuler(patch(0.5, -0.2), np.zeros((64, 64), bool), 1.5)


def test_the_loss_is_the_genant_ratio_or_the_posterior_height_lost_whichever_is_larger():
    before = Heights(ha=30.0, hm=30.0, hp=30.0, height_loss=0.0, grade=0)
    wedge = Heights(ha=18.0, hm=24.0, hp=30.0, height_loss=0.4, grade=3)
    crush = Heights(ha=21.0, hm=21.0, hp=21.0, height_loss=0.0, grade=0)
    assert height_loss(wedge, before) == pytest.approx(0.4) and height_loss(crush, before) == pytest.approx(0.3)
