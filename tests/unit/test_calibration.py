"""The "not a digit" rule: the energy and Mahalanobis tests, their weighing on made-up non-digits,
the record."""

import json
import math

import numpy as np
import pytest

from core import explain
from core.data import make_dataset
from core.models import build_model
from core.non_digits import make_non_digits
from tests.conftest import TINY_CONFIG


def spread_calibration(d: int = 6) -> explain.Calibration:
    """Ten digit means on the axes of a d-dimensional feature space, unit covariance."""
    rng = np.random.default_rng(0)
    means = rng.normal(size=(10, d)).astype(np.float32)
    centroids = explain._unit(means)
    return explain.Calibration(
        confidence_threshold=0.6,
        centroids=centroids,
        scales=np.full(10, 0.5, np.float32),
        distance_threshold=1.0,
        validation_accuracy=1.0,
        samples=10,
        means=means,
        precision=np.eye(d, dtype=np.float32) * 2.0,
        spread_threshold=4.0,
    )


def test_mahalanobis_agrees_with_the_distance_written_out():
    rng = np.random.default_rng(1)
    d = 40
    a = rng.normal(size=(d, d))
    cal = spread_calibration(d)
    cal.precision = (a @ a.T / d).astype(np.float32)
    f = rng.normal(size=(300, d)).astype(np.float32)
    by_hand = np.min(
        [[(v - m) @ cal.precision.astype(np.float64) @ (v - m) for m in cal.means] for v in f],
        axis=1,
    )
    assert np.allclose(cal.mahalanobis(f), by_hand, rtol=1e-4, atol=1e-3)
    assert cal.mahalanobis(cal.means[3])[0] == pytest.approx(0.0, abs=1e-4)


def test_mahalanobis_is_dropped_when_it_catches_no_more_non_digits():
    cal = spread_calibration()
    # Non-digits the confidence test flags already (every answer below 0.6), far from every mean.
    probs = np.full((50, 10), 0.1, np.float32)
    far = cal.means[0] * 10.0 + 5.0
    explain._weigh_tests(cal, probs, np.repeat(far[None], 50, axis=0))
    assert cal.means is None and cal.precision is None and math.isinf(cal.spread_threshold)
    assert cal.non_digits_flagged == 1.0


def test_mahalanobis_is_kept_when_only_it_catches_them():
    cal = spread_calibration()
    # Confident answers, in a digit's direction (cosine test passes) but three times too long.
    probs = np.zeros((50, 10), np.float32)
    probs[:, 2] = 1.0
    features = np.repeat(cal.means[2][None] * 3.0, 50, axis=0)
    assert not (cal.distance(features) > cal.distance_threshold).any()
    explain._weigh_tests(cal, probs, features)
    assert cal.means is not None and cal.spread_threshold == 4.0
    assert cal.non_digits_flagged == 1.0
    again = explain.Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again.non_digits_flagged == 1.0 and again.spread_threshold == 4.0


@pytest.fixture(scope="module")
def calibrated(mnist):
    """A tiny network trained for two epochs, 600 validation digits, and its calibration."""
    model = build_model(TINY_CONFIG)
    x, y = mnist.x_train[:512], mnist.y_train[:512]
    model.fit(make_dataset(x, y, 64, shuffle=True), epochs=2, shuffle=False, verbose=0)
    x_val, y_val = mnist.x_test[:600], mnist.y_test[:600]
    return model, x_val, y_val, explain.calibrate(model, x_val, y_val)


@pytest.mark.slow
def test_calibration_reports_the_share_of_made_up_non_digits_it_flags(calibrated):
    model, x_val, y_val, cal = calibrated
    # The same non-digits, read as the page reads them, judged by hand with the thresholds.
    made_up = make_non_digits(x_val, y_val, explain.NON_DIGIT_SAMPLES, explain.CALIBRATION_SEED)
    probs, features = explain.Predictor(model).batch_with_features(made_up)
    flagged = (probs.max(axis=1) < cal.confidence_threshold) | (
        cal.distance(features) > cal.distance_threshold
    )
    if cal.means is not None:
        flagged |= cal.mahalanobis(features) > cal.spread_threshold
    flagged |= cal.energy(features) < cal.energy_threshold
    assert cal.non_digits_flagged == pytest.approx(flagged.mean(), abs=1e-3)
    assert f"{cal.non_digits_flagged:.0%} are flagged" in cal.rule
    # Floats in [0, 1] make the same non-digits, so the same rule.
    floats = explain.calibrate(model, x_val / 255.0, y_val)
    assert floats.non_digits_flagged == pytest.approx(cal.non_digits_flagged, abs=1e-3)


def energy_calibration(d: int = 6) -> explain.Calibration:
    """spread_calibration with a last layer (random kernel and bias) and an energy threshold of 1."""
    cal = spread_calibration(d)
    rng = np.random.default_rng(2)
    cal.logit_weights = rng.normal(size=(d, 10)).astype(np.float32)
    cal.logit_bias = rng.normal(size=10).astype(np.float32)
    cal.energy_threshold = 1.0
    return cal


def test_energy_is_the_log_sum_exp_of_the_logits():
    cal = energy_calibration()
    f = np.random.default_rng(3).normal(size=(20, 6)).astype(np.float32) * 3.0
    kernel = cal.logit_weights.astype(np.float64)
    logits = f @ kernel + cal.logit_bias
    assert np.allclose(cal.energy(f), np.log(np.exp(logits).sum(axis=1)), rtol=1e-5)
    cal.logit_bias = None
    assert np.allclose(cal.energy(f), np.log(np.exp(f @ kernel).sum(axis=1)), rtol=1e-5)
    # Logits far beyond float32's exp (e^1000) still give their log-sum-exp: the top one plus a bit.
    assert cal.energy(f * 1000.0) == pytest.approx((f * 1000.0 @ kernel).max(axis=1), rel=1e-4)
    # Without the last layer's weights the test flags nothing.
    assert np.isinf(spread_calibration().energy(f)).all()
    assert not spread_calibration().flags(np.eye(10)[[0] * 20], f * 0 + cal.means[0]).any()


def test_the_direction_test_is_dropped_when_the_energy_test_catches_its_non_digits():
    cal = energy_calibration()
    # Confident answers far from every digit's direction, with no evidence for any digit.
    probs = np.zeros((50, 10), np.float32)
    probs[:, 1] = 1.0
    features = np.repeat(-cal.means[1][None], 50, axis=0)
    cal.distance_threshold = float(cal.distance(features)[0]) * 0.9
    cal.logit_weights[:] = 0.0
    cal.logit_bias[:] = -5.0  # energy log(10) - 5 < 1: flagged
    assert (cal.distance(features) > cal.distance_threshold).all()
    explain._weigh_tests(cal, probs, features)
    assert math.isinf(cal.distance_threshold) and cal.non_digits_flagged == 1.0
    again = explain.Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert math.isinf(again.distance_threshold) and again.energy_threshold == 1.0
    assert np.array_equal(again.logit_weights, cal.logit_weights)


def test_the_direction_test_is_kept_when_only_it_catches_them():
    cal = energy_calibration()
    probs = np.zeros((50, 10), np.float32)
    probs[:, 1] = 1.0
    features = np.repeat(-cal.means[1][None], 50, axis=0)
    cal.distance_threshold = threshold = float(cal.distance(features)[0]) * 0.9
    cal.logit_bias[:] = 50.0  # plenty of evidence: the energy test lets them through
    assert not (cal.energy(features) < cal.energy_threshold).any()
    explain._weigh_tests(cal, probs, features)
    assert cal.distance_threshold == threshold and cal.non_digits_flagged == 1.0


@pytest.mark.slow
def test_calibration_flags_the_least_evident_two_percent_of_validation_digits(calibrated):
    model, x_val, _, cal = calibrated
    _, features = explain.Predictor(model).batch_with_features(x_val)
    low = cal.energy(features) < cal.energy_threshold
    assert low.mean() == pytest.approx(explain.ENERGY_PERCENTILE / 100, abs=0.005)
    kernel, bias = explain._last_dense(model).get_weights()
    assert np.allclose(cal.logit_weights, kernel) and np.allclose(cal.logit_bias, bias)
    assert "less evidence for any digit" in cal.rule and "98% of the validation digits" in cal.rule


def test_a_model_without_a_last_dense_layer_to_ten_logits_gets_no_energy_test(mnist):
    import keras

    inputs = keras.Input((28, 28, 1))
    scores = keras.layers.Flatten()(keras.layers.Conv2D(10, 28)(inputs))
    no_dense = keras.Model(inputs, keras.layers.Softmax()(scores))
    assert explain._logit_layer(no_dense, 10) == (None, None)
    cal = explain.calibrate(no_dense, mnist.x_test[:200], mnist.y_test[:200])
    assert math.isinf(cal.energy_threshold) and cal.logit_weights is None
    assert math.isfinite(cal.distance_threshold)  # the direction test is never dropped then
    assert "less evidence" not in cal.rule
    dense = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(scores))
    kernel, bias = explain._logit_layer(dense, 10)
    assert kernel.shape == (10, 10) and bias.shape == (10,)
    assert explain._logit_layer(dense, 12) == (None, None)  # features of another size
