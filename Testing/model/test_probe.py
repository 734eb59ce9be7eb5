import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from DAECounterfactualLib.model.probe import Calibration, CalibrationError, LinearProbe, sweep_distances
from DAECounterfactualResearch.probe_fitting import balanced_weights, fit_calibration, fit_ordinal_probe, fit_probe

DIM = 6
finite = st.floats(-5, 5, allow_nan=False, allow_infinity=False)
vectors = arrays(np.float64, DIM, elements=finite)
positive = arrays(np.float64, DIM, elements=st.floats(0.1, 4))


@st.composite
def probes(draw):
    normal = draw(vectors.filter(lambda n: np.linalg.norm(n) > 0.1))
    return LinearProbe(normal=normal, bias=draw(finite), mean=draw(vectors), scale=draw(positive))


@st.composite
def monotone_calibrations(draw):
    slope = draw(st.floats(0.2, 3)) * draw(st.sampled_from([1, -1]))
    return Calibration(coefficients=(draw(st.floats(-2, 2)), slope), min_grade=0, max_grade=draw(st.integers(1, 4)))


@settings(max_examples=200, deadline=None)
@given(probes(), arrays(np.float64, (3, DIM), elements=finite))
def test_reflection_flips_sign_and_keeps_distance(probe, z):
    d = probe.distance(z)
    d_reflected = probe.distance(probe.reflect(z))
    np.testing.assert_allclose(d_reflected, -d, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(probes(), arrays(np.float64, (2, DIM), elements=finite), st.floats(-6, 6))
def test_edits_move_only_along_the_normal_in_the_probe_space(probe, z, target):
    edited = probe.move_to_distance(z, target)
    np.testing.assert_allclose(probe.distance(edited), target, atol=1e-9)
    step = probe.standardize(edited) - probe.standardize(z)
    orthogonal = step - np.outer(step @ probe.unit_normal, probe.unit_normal)
    np.testing.assert_allclose(orthogonal, 0, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(probes(), monotone_calibrations(), vectors, st.data())
def test_edited_latent_gets_its_target_grade(probe, calibration, z, data):
    target = data.draw(st.integers(calibration.min_grade, calibration.max_grade))
    edited = probe.move_to_distance(z, calibration.inverse(target))
    assert calibration.grade(probe.distance(edited))[0] == target
    np.testing.assert_allclose(calibration.score(probe.distance(edited)), target, atol=1e-9)


def test_distance_divides_the_bias_by_the_norm():
    probe = LinearProbe(normal=[3.0, 4.0], bias=10.0, mean=[0, 0], scale=[1, 1])
    # (3*1 + 4*1 + 10) / 5: the reference code's defect would give 3*1/5 + 4*1/5 + 10
    assert probe.distance([1.0, 1.0])[0] == pytest.approx(17 / 5)
    assert probe.distance([-2.0, -1.0])[0] == pytest.approx(0.0)


def test_standardisation_is_part_of_the_probe():
    probe = LinearProbe(normal=[1.0, 0.0], bias=0.0, mean=[10.0, -3.0], scale=[2.0, 5.0])
    assert probe.distance([14.0, 99.0])[0] == pytest.approx(2.0)  # u = (14 - 10) / 2
    edited = probe.move_to_distance(np.array([[14.0, 99.0]]), -1.0)
    np.testing.assert_allclose(edited, [[8.0, 99.0]])  # u: 2 -> -1 is z: 14 -> 8; the other axis untouched


def _two_blobs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=16)
    direction /= np.linalg.norm(direction)
    y = rng.integers(0, 2, n)
    z = rng.normal(size=(n, 16)) * rng.uniform(0.5, 3, 16) + np.outer(2.0 * y - 1, 2.5 * direction) + 7.0
    return z, y, direction


@pytest.mark.parametrize("kind", ["svm", "logistic"])
def test_fitted_probe_separates_and_orders_probabilities(kind):
    z, y, _ = _two_blobs()
    probe = fit_probe(z, y, kind=kind)
    d = probe.distance(z)
    assert np.mean((d > 0) == y) > 0.95
    p = probe.probability(z)
    assert np.all((p > 0) & (p < 1))
    order = np.argsort(d)
    assert np.all(np.diff(p[order]) >= -1e-12)  # probability is monotone in the distance
    assert p[y == 1].mean() > 0.8 and p[y == 0].mean() < 0.2


def test_logistic_probability_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    z, y, _ = _two_blobs()
    probe = fit_probe(z, y, kind="logistic", C=0.5)
    u = (z - z.mean(0)) / z.std(0)
    reference = LogisticRegression(C=0.5, class_weight="balanced", max_iter=5000).fit(u, y)
    np.testing.assert_allclose(probe.probability(z), reference.predict_proba(u)[:, 1], atol=1e-6)


def test_probe_fitting_refuses_bad_labels():
    z, y, _ = _two_blobs()
    with pytest.raises(ValueError, match="both classes"):
        fit_probe(z, np.zeros_like(y))
    with pytest.raises(ValueError, match="latents but"):
        fit_probe(z, y[:-1])
    with pytest.raises(ValueError, match="unknown probe kind"):
        fit_probe(z, y, kind="tree")


def _shared_factor_latents(n=400, seed=3):
    """Latents whose variance lies in two shared factors, plus a faint signal in one dimension of its own."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n, 2))
    z = factors @ rng.normal(size=(2, DIM)) + 0.05 * rng.normal(size=(n, DIM))
    return z, factors


@pytest.mark.parametrize("kind", ["svm", "logistic"])
def test_probe_restricted_to_principal_directions(kind):
    from sklearn.metrics import roc_auc_score

    z, factors = _shared_factor_latents()
    y = factors[:, 0] > 0
    probe = fit_probe(z, y, kind=kind, components=2)
    u = probe.standardize(z)
    top2 = np.linalg.svd(u - u.mean(0), full_matrices=False)[2][:2]
    residual = probe.unit_normal - top2.T @ (top2 @ probe.unit_normal)
    assert np.linalg.norm(residual) < 1e-8  # the normal lies in the span of the top two directions
    assert roc_auc_score(y, probe.distance(z)) > 0.98


def test_restricted_probe_cannot_see_a_low_variance_signal():
    """The trade-off the option makes: a label carried by a direction the latents hardly vary in is lost."""
    from sklearn.metrics import roc_auc_score

    z, factors = _shared_factor_latents()
    y = z[:, 5] - (factors @ np.linalg.lstsq(factors, z[:, 5], rcond=None)[0]) > 0  # dim 5's own noise
    assert roc_auc_score(y, fit_probe(z, y, components=0).distance(z)) > 0.8
    assert roc_auc_score(y, fit_probe(z, y, components=2).distance(z)) < 0.7


def test_edit_components_keep_the_grading_and_move_edits_into_the_top_directions():
    """A probe wider than the rendered subspace grades on all of z; its edits stay in the top directions and
    still land on the requested distance."""
    z, factors = _shared_factor_latents()
    own = z[:, 5] - factors @ np.linalg.lstsq(factors, z[:, 5], rcond=None)[0]
    y = factors[:, 0] + 20 * own > 0
    plain, split = fit_probe(z, y), fit_probe(z, y, edit_components=2)
    np.testing.assert_array_equal(split.distance(z), plain.distance(z))
    u = split.standardize(z)
    top2 = np.linalg.svd(u - u.mean(0), full_matrices=False)[2][:2]
    assert np.linalg.norm(split.edit_axis - top2.T @ (top2 @ split.edit_axis)) < 1e-8
    assert 0.05 < split.edit_axis @ split.unit_normal < 0.99  # a real projection, not n̂ itself
    targets = np.linspace(-2, 2, 5)
    moved = split.move_to_distance(z[:5], targets)
    np.testing.assert_allclose(split.distance(moved), targets, atol=1e-9)
    step = split.standardize(moved) - u[:5]
    np.testing.assert_allclose(step - (step @ top2.T) @ top2, 0, atol=1e-9)
    again = LinearProbe.from_dict(split.to_dict())
    np.testing.assert_allclose(again.edit_axis, split.edit_axis)
    assert plain.edit_direction is None and "edit_direction" not in plain.to_dict()


def test_edit_direction_across_the_normal_is_a_clear_error():
    with pytest.raises(ValueError, match="edit direction is at cos 0.000 to the normal"):
        LinearProbe(normal=[1.0, 0.0], bias=0.0, mean=[0, 0], scale=[1, 1], edit_direction=[0.0, 1.0])
    with pytest.raises(ValueError, match="edit direction must be finite, non-zero"):
        LinearProbe(normal=[1.0, 0.0], bias=0.0, mean=[0, 0], scale=[1, 1], edit_direction=[0.0, 0.0])


def test_probe_components_out_of_range_is_a_clear_error():
    z, y, _ = _two_blobs()
    with pytest.raises(ValueError, match="probe components must be in 1.."):
        fit_probe(z, y, components=z.shape[1] + 1)
    with pytest.raises(ValueError, match="probe components must be in 1.."):
        fit_probe(z, y, components=-1)


def test_balanced_weights_match_scikit_learn_and_balance_each_stratum():
    from sklearn.utils.class_weight import compute_sample_weight

    y = np.array([1, 1, 1, 0, 1, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(balanced_weights(y), compute_sample_weight("balanced", y))
    strata = np.array(["a"] * 6 + ["b"] * 4)
    w = balanced_weights(y, strata)
    cells = [w[(strata == s) & (y == c)].sum() for s in "ab" for c in (0, 1)]
    np.testing.assert_allclose(cells, cells[0])
    assert w.mean() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="3 strata for 10 labels"):
        balanced_weights(y, strata[:3])


def _confounded(seed: int = 0, n: int = 2000):
    """Latents where dim 0 marks 'real' (20 %, 85 % positive) against 'phantom' (40 % positive), dim 1 the label."""
    rng = np.random.default_rng(seed)
    real = rng.random(n) < 0.2
    y = np.where(real, rng.random(n) < 0.85, rng.random(n) < 0.4)
    z = rng.normal(size=(n, DIM))
    z[:, 0] += 2.0 * real
    z[:, 1] += 1.0 * y
    return z, y, np.where(real, "real", "phantom")


@pytest.mark.parametrize("kind", ["svm", "logistic"])
def test_stratified_probe_does_not_read_the_stratum_as_the_label(kind):
    z, y, origin = _confounded()
    plain = fit_probe(z, y, kind).unit_normal
    stratified = fit_probe(z, y, kind, strata=origin).unit_normal
    assert abs(plain[0]) > 0.3 * abs(plain[1])  # the confound leaks into the plain probe ...
    assert abs(stratified[0]) < 0.05 * abs(stratified[1])  # ... and not into the stratified one


def test_probe_round_trips_through_json_dict():
    z, y, _ = _two_blobs()
    probe = fit_probe(z, y)
    again = LinearProbe.from_dict(probe.to_dict())
    np.testing.assert_array_equal(again.distance(z), probe.distance(z))
    np.testing.assert_array_equal(again.probability(z), probe.probability(z))


def test_probe_refuses_latents_of_the_wrong_size():
    probe = LinearProbe(normal=[1.0, 0.0], bias=0.0, mean=[0, 0], scale=[1, 1])
    with pytest.raises(ValueError, match="latent has 3 dimensions, probe expects 2"):
        probe.distance(np.zeros(3))


def test_calibration_fits():
    d = np.array([-2.0, -1.8, -2.2, 0.1, 0.0, 1.0, 1.2, 2.0, 2.1])
    g = np.array([0, 0, 0, 1, 1, 2, 2, 3, 3])
    linear = fit_calibration(d, g, "linear")
    slope, intercept = np.polyfit(d, g, 1)
    np.testing.assert_allclose(linear.coefficients, [intercept, slope])
    extremes = fit_calibration(d, g, "extremes")
    assert extremes.score(d[g == 0].mean()) == pytest.approx(0)
    assert extremes.score(d[g == 3].mean()) == pytest.approx(3)
    cubic = fit_calibration(d, g, "poly", degree=3)
    np.testing.assert_allclose(cubic.coefficients[::-1], np.polyfit(d, g, 3), atol=1e-8)
    assert (linear.min_grade, linear.max_grade) == (0, 3)


def test_grade_rounds_and_clips():
    cal = Calibration(coefficients=(1.0, 1.0), min_grade=0, max_grade=3)
    np.testing.assert_array_equal(cal.grade([-5, -1.4, -0.6, 0.4, 0.6, 9]), [0, 0, 0, 1, 2, 3])


def test_polynomial_inverse_on_a_monotone_cubic():
    cal = Calibration(coefficients=(1.5, 0.3, 0.0, 0.2), min_grade=0, max_grade=3)  # derivative > 0 everywhere
    for grade in range(4):
        assert cal.score(cal.inverse(grade)) == pytest.approx(grade)


def test_cubic_is_inverted_on_its_monotone_branch_around_the_data():
    # p(d) = d^3 - 3d + 1.5 has critical points at +-1; on d > 1 it is increasing from -0.5 upwards
    cal = Calibration(coefficients=(1.5, -3.0, 0.0, 1.0), min_grade=0, max_grade=3, anchor=2.0)
    for grade in range(4):
        d = cal.inverse(grade)
        assert d > 1 and cal.score(d) == pytest.approx(grade)


def test_non_monotone_calibration_is_a_clear_error():
    # p(d) = -d^2 + 2: peaks at 2 < max grade 3, so grade 3 has no preimage
    cal = Calibration(coefficients=(2.0, 0.0, -1.0), min_grade=0, max_grade=3, anchor=-0.5)
    with pytest.raises(CalibrationError, match="not monotone over grades 0..3"):
        cal.inverse(1)
    flat = Calibration(coefficients=(1.0,), min_grade=0, max_grade=3)
    with pytest.raises(CalibrationError, match="flat"):
        flat.inverse(1)
    with pytest.raises(CalibrationError, match="outside the calibrated range"):
        Calibration(coefficients=(0.0, 1.0), min_grade=0, max_grade=3).inverse(4)


def test_sweep_places_one_latent_at_each_distance():
    probe = LinearProbe(normal=[1.0, 2.0], bias=-1.0, mean=[0.5, 0.5], scale=[1.0, 2.0])
    distances = sweep_distances(-3, 3, 7)
    swept = probe.sweep(np.array([0.2, 0.9]), distances)
    assert swept.shape == (7, 2)
    np.testing.assert_allclose(probe.distance(swept), distances, atol=1e-12)
    with pytest.raises(ValueError):
        sweep_distances(0, 1, 1)


def test_edit_gain_scales_the_latent_step_but_not_its_direction():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(3, 6))
    probe = LinearProbe(normal=rng.normal(size=6), bias=0.3, mean=rng.normal(size=6), scale=rng.uniform(0.5, 2, 6))
    target = np.array([1.0, -2.0, 0.5])
    plain, doubled = probe.move_to_distance(z, target), probe.move_to_distance(z, target, gain=2.0)
    np.testing.assert_allclose(probe.distance(plain), target)
    np.testing.assert_allclose(probe.distance(doubled) - probe.distance(z), 2 * (target - probe.distance(z)))
    np.testing.assert_allclose(probe.standardize(doubled) - probe.standardize(z),
                               2 * (probe.standardize(plain) - probe.standardize(z)))
    np.testing.assert_allclose(probe.distance(probe.reflect(z[:1], gain=3.0)), -5 * probe.distance(z[:1]))


def _graded_latents(n=600, seed=5):
    """Grades 0-4 where one latent direction (dim 0) marks grade 0 against all others strongly and another
    (dim 1) orders the grades 1-4 among themselves: what a binary 0-vs-rest probe leaves to chance."""
    rng = np.random.default_rng(seed)
    grades = rng.integers(0, 5, n)
    z = rng.normal(size=(n, DIM))
    z[:, 0] += 4.0 * (grades >= 1)
    z[:, 1] += 1.5 * np.maximum(grades - 1, 0)
    return z, grades


@pytest.mark.parametrize("kind", ["svm", "logistic"])
def test_ordinal_probe_orders_the_grades_a_binary_probe_leaves_to_chance(kind):
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    z, grades = _graded_latents()
    positives = grades >= 1
    binary = fit_probe(z, positives, kind=kind, C=1.0)
    ordinal = fit_ordinal_probe(z, grades, positive_min_grade=1, kind=kind, C=1.0)
    order = {name: spearmanr(probe.distance(z[positives]), grades[positives])[0]
             for name, probe in (("binary", binary), ("ordinal", ordinal))}
    assert order["ordinal"] > 0.8 > order["binary"]
    # it still detects (its order costs a little of the binary margin), and its bias is the positive_min_grade
    # threshold's: the sign and the probability separate grade 0 from the rest
    assert roc_auc_score(positives, ordinal.distance(z)) > 0.95
    assert np.mean((ordinal.distance(z) > 0) == positives) > 0.85
    assert np.mean((ordinal.probability(z) > 0.5) == positives) > 0.85


def test_ordinal_probe_keeps_the_binary_probe_options():
    z, grades = _graded_latents()
    probe = fit_ordinal_probe(z, grades, positive_min_grade=2, components=3, edit_components=2)
    u = probe.standardize(z)
    top3 = np.linalg.svd(u - u.mean(0), full_matrices=False)[2][:3]
    assert np.linalg.norm(probe.unit_normal - top3.T @ (top3 @ probe.unit_normal)) < 1e-8
    assert probe.edit_direction is not None and probe.edit_axis @ probe.unit_normal < 0.999
    assert np.mean((probe.distance(z) > 0) == (grades >= 2)) > 0.8


def test_ordinal_probe_needs_grades_on_both_sides_of_the_positive_threshold():
    z, grades = _graded_latents()
    with pytest.raises(ValueError, match="grades on both sides of 5"):
        fit_ordinal_probe(z, grades, positive_min_grade=5)
    with pytest.raises(ValueError, match="grades on both sides of 1"):
        fit_ordinal_probe(z, np.ones_like(grades), positive_min_grade=1)
