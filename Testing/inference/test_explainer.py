import numpy as np
import pytest

from DAECounterfactualLib.bundle.spec import StepPreset
from DAECounterfactualLib.bundle.store import load_bundle
from DAECounterfactualLib.errors import InputError
from DAECounterfactualLib.inference.explainer import Explainer
from DAECounterfactualLib.inference.panel_labels import panel_note


@pytest.fixture(scope="module")
def explainer(overfit_dae, blob_bundle):
    return Explainer(load_bundle(blob_bundle)), overfit_dae[1].numpy()


def test_grade_reads_out_every_field(explainer):
    ex, images = explainer
    g = ex.grade(images, "size")
    assert g.distance.shape == g.probability.shape == g.grade.shape == g.ood.shape == (4,)
    assert np.all((g.probability > 0) & (g.probability < 1))
    np.testing.assert_array_equal(g.distance > 0, np.array([1, 3, 0, 2]) >= 2)  # probe separates its training set
    assert not g.ood.any()
    np.testing.assert_array_equal(g.ood_score, ex.bundle.latent_stats.ood_score(ex.encode(images)))


def test_explanation_has_every_grade_and_reconstructs(explainer):
    ex, images = explainer
    e = ex.explain(images[1], "size", preset="reference", sweep_count=5)
    assert e.counterfactuals.shape == (4, 1, 16, 16) and e.sweep.shape == (5, 1, 16, 16)
    assert e.reflection.shape == (1, 16, 16)
    assert np.mean((e.reconstruction - images[1]) ** 2) < 5e-3
    np.testing.assert_allclose(e.differences, e.counterfactuals - e.reconstruction[None])
    spec = ex.bundle.task("size")
    np.testing.assert_array_equal(spec.calibration.grade(e.target_distances), [0, 1, 2, 3])
    np.testing.assert_allclose(np.diff(e.sweep_distances), np.diff(e.sweep_distances)[0])
    # moving along the normal changes the image, more for far targets than near ones
    change = np.abs(e.differences).mean(axis=(1, 2, 3))
    own = int(e.grades.grade[0])
    assert change[own] == change.min()


def test_an_explanation_grades_what_it_drew(explainer):
    """Each grade's counterfactual and the reflection, encoded again: what each panel reads as."""
    ex, images = explainer
    e = ex.explain(images[1], "size", preset="fast", sweep_count=0)
    drawn = np.concatenate([e.counterfactuals, e.reflection[None]])
    again = ex.grade(drawn, "size")
    np.testing.assert_array_equal(e.reencoded.grade, again.grade)
    np.testing.assert_allclose(e.reencoded.distance, again.distance, atol=1e-4)
    np.testing.assert_allclose(e.reencoded_latents, ex.encode(drawn), atol=1e-4)
    np.testing.assert_array_equal(e.panel_grades, again.grade[:4])
    assert e.unreached == [g for g in range(4) if again.grade[g] != g]


def test_inversion_is_cached_per_patch(explainer, monkeypatch):
    ex, images = explainer
    import DAECounterfactualLib.inference.explainer as explainer_module

    calls = []
    original = explainer_module.ddim_invert
    monkeypatch.setattr(explainer_module, "ddim_invert", lambda *a, **k: calls.append(1) or original(*a, **k))
    first = ex.explain(images[2], "size", preset="fast", sweep_count=0)
    second = ex.explain(images[2], "size", preset="fast", sweep_count=0)
    assert len(calls) == 1
    np.testing.assert_array_equal(first.counterfactuals, second.counterfactuals)
    ex.explain(images[3], "size", preset="fast", sweep_count=0)
    assert len(calls) == 2


def test_the_cpu_explainer_runs_channels_last_with_the_contiguous_models_results(explainer, blob_bundle):
    import torch

    ex, images = explainer
    convolutions = [m.weight for m in ex.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convolutions and all(w.is_contiguous(memory_format=torch.channels_last) for w in convolutions)
    contiguous = load_bundle(blob_bundle).require_model()
    x = torch.from_numpy(images)
    with torch.inference_mode():
        z = contiguous.encode(x)
        np.testing.assert_allclose(ex.encode(images), z.double().numpy(), atol=1e-5)
        t = torch.full((len(x),), 500.0)
        np.testing.assert_allclose(ex.model.unet(x, t, z).numpy(), contiguous.unet(x, t, z).numpy(), atol=1e-5)
    e = ex.explain(images[0], "size", preset="fast", sweep_count=0)
    assert e.counterfactuals.flags.c_contiguous and e.reconstruction.flags.c_contiguous


def test_progress_runs_once_through_inversion_and_decoding(explainer):
    ex, images = explainer
    ex.forget_inversions()
    seen = []
    ex.explain(images[0], "size", preset="fast", sweep_count=0, callback=lambda i, n: seen.append((i, n)))
    assert seen == [(i, 10) for i in range(1, 11)]


def test_bad_inputs_are_clear_errors(explainer):
    ex, images = explainer
    with pytest.raises(InputError, match=r"expected images of shape \(N, 1, 16, 16\)"):
        ex.grade(np.zeros((2, 3, 16, 16)), "size")
    with pytest.raises(InputError, match="NaN"):
        ex.grade(np.full((1, 1, 16, 16), np.nan), "size")
    with pytest.raises(InputError, match="unknown quality preset 'turbo'"):
        ex.explain(images[0], "size", preset="turbo")
    from DAECounterfactualLib.errors import BundleError

    with pytest.raises(BundleError, match="no task 'genant'"):
        ex.grade(images, "genant")


def test_strip_png_has_a_panel_per_grade(explainer, tmp_path):
    from PIL import Image

    from DAECounterfactualLib.cli.strips import save_strip

    ex, images = explainer
    e = ex.explain(images[1], "size", preset="fast", sweep_count=0)
    path = save_strip(tmp_path / "strip.png", images[1], e, title="blobs")
    width, height = Image.open(path).size
    assert width > 2 * height  # six columns (original, reconstruction, S0..S3) in two rows
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red.sum() > 50  # the predicted grade's panel is outlined


def test_a_flagged_strip_carries_a_red_banner_with_the_reason(explainer, tmp_path):
    from dataclasses import replace

    from PIL import Image

    from DAECounterfactualLib.cli.strips import save_strip

    ex, images = explainer
    e = ex.explain(images[1], "size", preset="fast", sweep_count=0)
    e.grades = replace(e.grades, ood=np.array([False]))

    def banner_rows(path):
        pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
        red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
        return int(np.sum(red.mean(axis=1) > 0.6))  # rows red across most of the width

    plain = save_strip(tmp_path / "plain.png", images[1], e, title="blobs")
    flagged = save_strip(tmp_path / "flagged.png", images[1], e, title="blobs",
                         ood_reason="level C5 lies outside the trained levels T10–L5 " * 4)
    assert banner_rows(plain) == 0 and banner_rows(flagged) > 20  # two wrapped lines of text on red
    e.grades = replace(e.grades, ood=np.array([True]))  # the latent's own flag, when no reason is passed
    assert banner_rows(save_strip(tmp_path / "latent.png", images[1], e)) > 10
    e.grades = replace(e.grades, ood=np.array([False]), caution="not valid on real patients: on 24 healthy vertebrae")
    assert banner_rows(save_strip(tmp_path / "caution.png", images[1], e)) > 10  # a task's caution, unflagged


def test_a_panel_the_model_reads_as_another_grade_is_titled_so_in_the_strip(explainer, tmp_path):
    from dataclasses import replace

    from PIL import Image

    from bundle_fixtures import read_as
    from DAECounterfactualLib.cli.strips import save_strip

    ex, images = explainer
    e = ex.explain(images[1], "size", preset="fast", sweep_count=0)

    def orange(explanation, name):
        pixels = np.asarray(Image.open(save_strip(tmp_path / name, images[1], explanation)).convert("RGB")).astype(int)
        return int(np.sum((pixels[..., 0] > 220) & (np.abs(pixels[..., 1] - 127) < 30) & (pixels[..., 2] < 60)))

    assert orange(replace(e, reencoded=read_as([0, 1, 2, 3, 0])), "reached.png") == 0
    assert orange(replace(e, reencoded=read_as([0, 1, 2, 2, 0])), "missed.png") > 20  # "S3 (reads S2)"


def test_an_inversion_that_misses_its_tolerance_is_redone_once_with_twice_the_steps(explainer, monkeypatch):
    """One fixed-point iteration cannot change x by less than 1e-9: both inversions miss, and the explanation
    says it was drawn with twice the steps and does not retrace the image."""
    ex, images = explainer
    import DAECounterfactualLib.inference.explainer as explainer_module

    steps = []
    original = explainer_module.ddim_invert
    monkeypatch.setattr(explainer_module, "ddim_invert",
                        lambda model, x, z, schedule, n, *a, **k: steps.append(n) or original(model, x, z, schedule, n,
                                                                                              *a, **k))
    ex.forget_inversions()
    e = ex.explain(images[1], "size", preset=StepPreset(3, 3, refine=1, refine_tol=1e-9), sweep_count=0)
    assert steps == [3, 6]
    assert (e.preset.invert, e.preset.decode, e.retraced) == (6, 6, False)
    assert "did not retrace this image even at 6 steps" in panel_note(e)
    again = ex.explain(images[1], "size", preset=StepPreset(3, 3, refine=1, refine_tol=1e-9), sweep_count=0)
    assert steps == [3, 6]  # both inversions of the patch stay cached
    np.testing.assert_array_equal(again.counterfactuals, e.counterfactuals)


def test_an_inversion_within_its_tolerance_is_kept(explainer):
    ex, images = explainer
    ex.forget_inversions()
    e = ex.explain(images[1], "size", preset=StepPreset(3, 3, refine=2, refine_tol=0.5), sweep_count=0)
    assert (e.preset.invert, e.retraced) == (3, True)
    assert "retrace" not in panel_note(e)


def test_progress_counts_the_second_inversion_too(explainer):
    ex, images = explainer
    ex.forget_inversions()
    seen = []
    ex.explain(images[1], "size", preset=StepPreset(3, 3, refine=1, refine_tol=1e-9), sweep_count=0,
               callback=lambda i, n: seen.append((i, n)))
    assert seen[-1] == (3 + 6 + 6, 3 + 6 + 6)
    assert [i for i, _ in seen] == list(range(1, 16))
