"""core.explain: fast prediction, maps, activations, features and the calibrated "not sure"."""

import dataclasses
import json
import math

import keras
import numpy as np
import pytest

from core import drawing, explain
from core.data import make_dataset
from core.models import ConvBlock, build_model, preset


@pytest.fixture(scope="module")
def trained(mnist):
    """A small network with augmentation layers and dropout, trained for a few seconds."""
    cfg = dataclasses.replace(
        preset("robust"),
        conv_blocks=(ConvBlock(8, 3, 1, True, 0.0), ConvBlock(16, 3, 1, True, 0.1)),
        padding="valid",
        batch_norm=False,  # a few steps leave batch normalisation's moving averages unsettled
        rotation=5.0,
        zoom=0.05,
        shift=0.05,
        dense_units=32,
        dense_dropout=0.1,
        lr_schedule="constant",
        learning_rate=0.005,
        epochs=4,
        batch_size=32,
        train_samples=640,
        validation_split=0.0,
    )
    model = build_model(cfg)
    x, y = mnist.x_train[:640], mnist.y_train[:640]
    # The dataset shuffles itself; fit's own shuffle would only warn.
    model.fit(make_dataset(x, y, 32, shuffle=True), epochs=4, shuffle=False, verbose=0)
    return model


@pytest.fixture(scope="module")
def digits(mnist) -> np.ndarray:
    """Ten test digits as floats in [0, 1]."""
    return mnist.x_test[:10].astype(np.float32) / 255.0


@pytest.mark.slow
def test_predictor_reads_each_digit_turned_either_way_and_averages(trained, digits):
    from scipy import ndimage

    assert explain.TURNS == (-8.0, 8.0)
    views = [
        np.stack([ndimage.rotate(d, t, reshape=False, order=1) for d in digits]) if t else digits
        for t in explain.TURNS
    ]
    expected = np.mean([trained.predict(v[..., None], verbose=0) for v in views], axis=0)
    predictor = explain.Predictor(trained)
    assert np.allclose(predictor.batch(digits), expected, atol=1e-4)
    assert np.allclose(predictor(digits[4]), expected[4], atol=1e-4)
    # The calibration reads its digits the same way.
    _, probs = explain._batched(trained, digits, batch_size=4)
    assert np.allclose(probs, expected, atol=1e-4)


@pytest.mark.slow
def test_a_single_turn_is_read_turned(trained, digits):
    # One turn alone (a reading the page does not use, but Predictor accepts) is still turned.
    from scipy import ndimage

    turned = np.stack([ndimage.rotate(d, 8.0, reshape=False, order=1) for d in digits])
    expected = trained.predict(turned[..., None], verbose=0)
    once = explain.Predictor(trained, turns=(8.0,)).batch(digits)
    assert np.allclose(once, expected, atol=1e-4)
    assert not np.allclose(once, trained.predict(digits[..., None], verbose=0), atol=1e-3)


@pytest.mark.slow
def test_predictor_equals_model_predict(trained, digits):
    predictor = explain.Predictor(trained, turns=(0.0,))
    expected = trained.predict(digits[..., None], verbose=0)
    assert np.allclose(predictor(digits[0]), expected[0], atol=1e-5)
    assert np.allclose(predictor.batch(digits), expected, atol=1e-5)
    chunked, chunked_features = predictor.batch_with_features(digits, batch_size=3)
    assert np.allclose(chunked, expected, atol=1e-5) and chunked_features.shape == (10, 32)
    probs, features = predictor.predict_with_features(digits[3])
    assert np.allclose(probs, expected[3], atol=1e-5)
    assert features.shape == (32,) == (predictor.feature_size,)
    assert probs.shape == (10,) and probs.sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.slow
def test_feature_extractor_matches_a_sub_model(trained, mnist):
    # The input of the last Dense layer is the output of the dropout before it.
    sub = keras.Model(trained.inputs[0], trained.get_layer("dense_dropout").output)
    expected = sub.predict(mnist.x_test[:20, ..., None] / 255.0, verbose=0)
    extract = explain.feature_extractor(trained, batch_size=7)
    assert np.allclose(extract(mnist.x_test[:20]), expected, atol=1e-5)  # uint8
    assert np.allclose(extract(mnist.x_test[:20] / 255.0), expected, atol=1e-5)  # floats
    assert extract(mnist.x_test[:0]).shape == (0, 32)


@pytest.mark.slow
@pytest.mark.parametrize("method", [explain.saliency, explain.grad_cam])
def test_attention_maps_are_28x28_in_unit_range(trained, digits, method):
    for class_index in (0, 7):
        heat = method(trained, digits[0], class_index)
        assert heat.shape == (28, 28) and heat.dtype == np.float32
        assert heat.min() >= 0 and heat.max() == pytest.approx(1.0)


@pytest.mark.slow
def test_grad_cam_of_a_named_layer_and_its_alignment(trained, digits):
    heat = explain.grad_cam(trained, digits[0], 7, layer_name="conv1_1")
    assert heat.shape == (28, 28) and 0 <= heat.min() and heat.max() <= 1
    with pytest.raises(explain.IncompatibleModelError):
        explain.grad_cam(trained, digits[0], 7, layer_name="dense")
    # Two valid 3x3 convolutions: map cell 0 is centred on input pixel 2, the last cell on 25.
    weights = explain._aligned_upsampling(24, 1)
    assert weights[2, 0] == 1 and weights[25, 23] == 1 and np.allclose(weights.sum(axis=1), 1)


@pytest.mark.slow
def test_occlusion_is_signed_and_zero_on_empty_regions(trained, digits):
    x = digits[0]
    assert x[:3].max() == 0  # MNIST's top rows are black
    heat = explain.occlusion(trained, x, 7)
    assert heat.shape == (28, 28) and heat.dtype == np.float32
    assert np.abs(heat[:2, :]).max() < 1e-6  # blanking black pixels changes nothing
    assert np.abs(heat).max() > 0
    # By hand: blank the first patch that touches ink and compare with the model's own answer.
    probs = trained.predict(x[None, ..., None], verbose=0)[0]
    covered = x.copy()
    covered[12:16, 12:16] = 0
    drop = probs[7] - trained.predict(covered[None, ..., None], verbose=0)[0, 7]
    patch_heat = explain.occlusion(trained, x, 7, patch=4, stride=4)
    assert patch_heat[12:16, 12:16] == pytest.approx(np.full((4, 4), drop), abs=1e-5)


@pytest.mark.slow
def test_activations_one_per_conv_layer(trained, digits):
    acts = explain.activations(trained, digits[0])
    conv_layers = [layer for layer in trained.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [a.name for a in acts] == [layer.name for layer in conv_layers]
    assert [a.name for a in acts] == ["conv1_1", "conv2_1"]  # block, then conv within it
    # 28 -> valid 3x3 -> 26 -> pool -> 13 -> valid 3x3 -> 11
    assert acts[0].array.shape == (26, 26, 8) and acts[1].array.shape == (11, 11, 16)
    assert acts[0].array.min() >= 0  # after ReLU


def test_activations_and_grad_cam_read_after_batch_normalisation(digits):
    cfg = dataclasses.replace(
        preset("robust"), conv_blocks=(ConvBlock(4, 3, 2, True, 0.0),), dense_units=8
    )
    model = build_model(cfg, compile=False)
    acts = explain.activations(model, digits[0])
    assert [a.name for a in acts] == ["conv1_1", "conv1_2"]
    # "same" padding keeps 28x28; each map is read after its batch normalisation and ReLU.
    assert all(a.array.shape == (28, 28, 4) and a.array.min() >= 0 for a in acts)
    heat = explain.grad_cam(model, digits[0], 3)
    assert heat.shape == (28, 28) and 0 <= heat.min() and heat.max() <= 1


def test_confidence_threshold_rule_by_hand():
    # 100 answers at 0.99 (all right), 100 at 0.9 (one wrong), 100 at 0.6 (ten wrong).
    confidence = np.repeat([0.99, 0.9, 0.6], 100)
    correct = np.ones(300, bool)
    correct[150] = False
    correct[200:210] = False
    # >= 0.9: 199/200 = 99.5% right; >= 0.6: 289/300 = 96.3% right.
    assert explain.confidence_threshold(confidence, correct) == pytest.approx(0.9)
    # A weak model whose surest answers are wrong too: flagged unless near-certain.
    assert explain.confidence_threshold(confidence, ~correct) == explain.MAX_THRESHOLD
    # A perfect model is still never "sure" below 50%.
    assert explain.confidence_threshold(np.full(10, 0.3), np.ones(10, bool)) == 0.5


@pytest.mark.slow
def test_calibration_round_trips_through_json(trained, mnist):
    cal = explain.calibrate(trained, mnist.x_test[-500:], mnist.y_test[-500:])
    again = explain.Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again.confidence_threshold == cal.confidence_threshold
    assert again.distance_threshold == cal.distance_threshold
    assert np.allclose(again.centroids, cal.centroids) and np.allclose(again.scales, cal.scales)
    assert again.rule == cal.rule and again.samples == 500
    assert math.isnan(again.accuracy_below) == math.isnan(cal.accuracy_below)
    assert explain.MIN_THRESHOLD <= cal.confidence_threshold <= explain.MAX_THRESHOLD
    assert 0.5 <= cal.confidence_threshold <= 0.99
    assert cal.distance_threshold > 0 and cal.centroids.shape == (10, 32)
    # Accuracy as the Draw page reads the digits (turned either way; tested above).
    predicted = explain.Predictor(trained).batch(mnist.x_test[-500:]).argmax(axis=1)
    assert cal.validation_accuracy == pytest.approx(np.mean(predicted == mnist.y_test[-500:]))
    assert "read turned 8° either way" in cal.rule
    # Floats in [0, 1] calibrate exactly like uint8.
    floats = explain.calibrate(trained, mnist.x_test[-500:] / 255.0, mnist.y_test[-500:])
    assert floats.confidence_threshold == pytest.approx(cal.confidence_threshold)


@pytest.mark.slow
def test_assess_flags_doubt_and_strangeness(trained, mnist):
    cal = explain.calibrate(trained, mnist.x_test[-500:], mnist.y_test[-500:])
    predictor = explain.Predictor(trained)
    x = mnist.x_test[:200] / 255.0
    probs_all = predictor.batch(x)
    features_all = explain.feature_extractor(trained)(x)
    # The test digit the model is surest of and right about, and typical in feature space.
    right = probs_all.argmax(axis=1) == mnist.y_test[:200]
    typical = cal.distance(features_all) < cal.distance_threshold
    best = int(np.argmax(np.where(right & typical, probs_all.max(axis=1), -1)))
    probs, features = predictor.predict_with_features(x[best])
    sure = explain.assess(probs, features, cal)
    assert sure.predicted == mnist.y_test[best] and not sure.unsure and sure.reason == ""
    assert len(sure.top3) == 3 and sure.top3[0] == (sure.predicted, pytest.approx(sure.confidence))
    assert [p for _, p in sure.top3] == sorted((p for _, p in sure.top3), reverse=True)
    torn = np.full(10, 0.05)
    torn[3], torn[5] = 0.33, 0.27
    doubt = explain.assess(torn, features, cal)
    assert doubt.unsure and doubt.predicted == 3 and doubt.top3[1][0] == 5
    assert doubt.reason.startswith("The model is only 33% sure; on validation data, answers below")
    # Spread over many digits (how a model trained on made-up non-digits answers a letter).
    spread = np.full(10, 0.08)
    spread[4], spread[7] = 0.2, 0.16
    nothing = explain.assess(spread, features, cal)
    assert nothing.unsure and nothing.predicted == 4
    assert nothing.reason.startswith(
        "This doesn't look like any digit the model has seen: it spreads"
    )
    assert "none gets more than 20%" in nothing.reason and "guess is 4, but" in nothing.reason
    # No evidence for any digit: every logit is the bias alone.
    assert cal.energy(np.zeros_like(features))[0] < cal.energy_threshold
    faint = explain.assess(probs, np.zeros_like(features), cal)
    assert faint.unsure and faint.reason.startswith("This doesn't look like any digit")
    assert "its scores for all ten digits are low" in faint.reason
    assert "less evidence for any digit in it than in 98% of the validation digits" in faint.reason
    # Spread and faint at once: the spread, which the probability chart shows, is the reason given.
    both = explain.assess(spread, np.zeros_like(features), cal)
    assert both.unsure and "it spreads its answer over many digits" in both.reason
    # The direction test (whether or not this model's calibration kept it), on its own.
    typical_distance = float(np.percentile(cal.distance(features_all), 99.5))
    by_direction = dataclasses.replace(
        cal, energy_threshold=-math.inf, distance_threshold=typical_distance
    )
    far = explain.assess(probs, -features - 5.0, by_direction)
    assert far.unsure and far.reason.startswith("This doesn't look like any digit")
    assert "further from every digit than for 99.5%" in far.reason
    assert not explain.assess(probs, features, by_direction).unsure
    assert explain.assess(probs, features, None).unsure is False


def test_a_mark_no_digit_has_makes_it_not_a_digit_whatever_the_model_says():
    sure = np.full(10, 0.001)
    sure[1] = 0.991
    features = np.zeros(4, np.float32)
    # No calibration at all: the marks alone decide, and the answer is still shown.
    plain = explain.assess(sure, features, None)
    assert not plain.unsure and plain.reason == ""
    i = explain.assess(sure, features, None, (drawing.MARK_ABOVE,))
    assert i.unsure and i.predicted == 1 and i.confidence == pytest.approx(0.991)
    assert i.reason.startswith("This doesn't look like any digit: there is a dot above it")
    assert "An i or a j?" in i.reason and "best guess is 1, but don't trust it" in i.reason
    face = explain.assess(sure, features, None, (drawing.MARK_INSIDE, drawing.MARK_ABOVE))
    assert face.unsure and "a mark inside it that does not touch its strokes" in face.reason
    assert "A face, or a letter?" in face.reason and "dot above" not in face.reason


def test_calibration_distance_is_scaled_per_digit():
    centroids = np.eye(10, dtype=np.float32)
    cal = explain.Calibration(0.9, centroids, np.full(10, 0.5, np.float32), 1.0, 1.0, 10)
    assert cal.distance(np.eye(10)[3] * 7.0)[0] == pytest.approx(0.0)  # direction, not length
    halfway = np.zeros(10)
    halfway[[2, 4]] = 1.0  # cosine 0.707 to digits 2 and 4
    assert cal.distance(halfway)[0] == pytest.approx((1 - 1 / math.sqrt(2)) / 0.5, rel=1e-5)


def test_incompatible_model_is_named():
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    with pytest.raises(explain.IncompatibleModelError, match="my-run.*32x32x3"):
        explain.check_model(model, "my-run")
    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, keras.layers.Dense(26)(keras.layers.Flatten()(inputs)))
    with pytest.raises(explain.IncompatibleModelError, match="letters.*26"):
        explain.check_model(model, "letters")
    explain.check_model(build_model(preset("tutorial"), compile=False), "fine")
