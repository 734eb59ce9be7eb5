"""Panel labels: a counterfactual the model grades otherwise than the grade it was made for says so."""

import numpy as np

from bundle_fixtures import read_as
from DAECounterfactualLib.bundle.spec import StepPreset
from DAECounterfactualLib.inference.explainer import Explanation
from DAECounterfactualLib.inference.panel_labels import panel_names, panel_note, panel_readings

NAMES = ("G0", "G1", "G2", "G3")


def drawn_and_read_as(panels, retraced: bool = True) -> Explanation:
    """A made-up explanation whose grade panels the model reads as ``panels`` (the reflection as G0)."""
    blank = np.zeros((1, 4, 4), np.float32)
    return Explanation(task="t", grade_names=NAMES, grades=read_as([1]), reconstruction=blank,
                       counterfactuals=np.stack([blank] * 4), target_distances=np.arange(4.0), reflection=blank,
                       sweep=np.zeros((0, 1, 4, 4), np.float32), sweep_distances=np.zeros(0), preset=StepPreset(2, 2),
                       reencoded=read_as([*panels, 0]), reencoded_latents=np.zeros((5, 3)), retraced=retraced)


def test_panels_read_as_their_grade_are_plain_grade_names():
    e = drawn_and_read_as([0, 1, 2, 3])
    assert e.unreached == [] and panel_names(e) == list(NAMES) and panel_note(e) == ""
    assert panel_readings(e) == {name: name for name in NAMES}


def test_a_panel_read_as_another_grade_names_it():
    e = drawn_and_read_as([0, 1, 2, 2])
    assert e.unreached == [3]
    assert panel_names(e) == ["G0", "G1", "G2", "G3 (reads G2)"]
    assert panel_readings(e)["G3"] == "G2"
    assert panel_note(e) == ("counterfactual panel G3 reads as G2: the model cannot draw G3 for this image; "
                             "do not read it as that grade")


def test_several_panels_are_named_together():
    note = panel_note(drawn_and_read_as([1, 1, 2, 2]))
    assert note.startswith("counterfactual panels G0 reads as G1, G3 reads as G2: the model cannot draw G0 or G3")
    assert note.endswith("do not read them as that grade")


def test_an_image_the_inversion_did_not_retrace_warns_of_every_panel_after_the_unread_ones():
    note = panel_note(drawn_and_read_as([0, 1, 2, 2], retraced=False))
    assert note.startswith("counterfactual panel G3 reads as G2")
    assert note.endswith("the inversion did not retrace this image even at 2 steps: the reconstruction and every "
                         "panel differ from it by more than the model's own error; compare the panels with the "
                         "reconstruction, not with the image")
