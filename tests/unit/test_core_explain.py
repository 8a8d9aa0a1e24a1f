"""core.explain: fast prediction, maps, activations, features and the calibrated 'not sure'."""

import dataclasses

import keras
import numpy as np
import pytest

from core import explain
from core.data import make_dataset
from core.models import ConvBlock, build_model, preset


@pytest.fixture(scope="module")
def trained(mnist):
    cfg = dataclasses.replace(
        preset("fast"),
        conv_blocks=(ConvBlock(8, 3, 1, True, 0.0), ConvBlock(16, 3, 1, True, 0.0)),
        dense_units=32,
        epochs=2,
        train_samples=3000,
        batch_size=64,
        batch_norm=True,
    )
    model = build_model(cfg)
    model.fit(
        make_dataset(mnist.x_train[:3000], mnist.y_train[:3000], 64, shuffle=True),
        epochs=2,
        verbose=0,
    )
    return model


def test_predictor_equals_model_predict(trained, mnist):
    predictor = explain.Predictor(trained)
    x = mnist.x_test[:5] / 255.0
    expected = trained.predict(x[..., None], verbose=0)
    assert np.allclose(predictor(x[0]), expected[0], atol=1e-5)
    assert np.allclose(predictor.batch(x), expected, atol=1e-5)
    probs, features = predictor.predict_with_features(x[0])
    assert features.shape == (32,) and probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_feature_extractor_matches_a_sub_model(trained, mnist):
    sub = keras.Model(trained.inputs[0], trained.get_layer("dense_dropout").output)
    expected = sub.predict(mnist.x_test[:20, ..., None] / 255.0, verbose=0)
    got = explain.feature_extractor(trained, batch_size=7)(mnist.x_test[:20])
    assert np.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("method", [explain.saliency, explain.grad_cam])
def test_attention_maps(trained, mnist, method):
    x = mnist.x_test[0] / 255.0
    heat = method(trained, x, 7)
    assert heat.shape == (28, 28) and heat.min() >= 0 and heat.max() == pytest.approx(1.0)


def test_occlusion_of_empty_border_changes_nothing(trained, mnist):
    x = mnist.x_test[0] / 255.0
    heat = explain.occlusion(trained, x, 7)
    assert heat.shape == (28, 28)
    assert np.abs(heat[:2, :]).max() < 1e-6  # blanking already-black pixels changes nothing
    assert np.abs(heat).max() > 0


def test_activations_one_per_conv_layer(trained, mnist):
    acts = explain.activations(trained, mnist.x_test[0] / 255.0)
    assert [a.name for a in acts] == ["conv1_1", "conv2_1"]
    assert acts[0].array.shape == (26, 26, 8) and acts[1].array.shape == (11, 11, 16)
    assert acts[0].array.min() >= 0  # after batch normalization and ReLU


def test_calibration_flags_doubt_and_strangeness(trained, mnist):
    cal = explain.calibrate(trained, mnist.x_train[-2000:], mnist.y_train[-2000:])
    again = explain.Calibration.from_dict(cal.to_dict())
    assert again.confidence_threshold == cal.confidence_threshold
    assert np.allclose(again.centroids, cal.centroids)
    assert 0.5 <= cal.confidence_threshold <= 0.99 and cal.distance_threshold > 0
    predictor = explain.Predictor(trained)
    confidence = predictor.batch(mnist.x_test[:200] / 255.0).max(axis=1)
    best = int(np.argmax(confidence))  # the digit this small model is surest of
    probs, features = predictor.predict_with_features(mnist.x_test[best] / 255.0)
    sure = explain.assess(probs, features, cal)
    assert sure.predicted == mnist.y_test[best] and not sure.unsure and len(sure.top3) == 3
    assert sure.top3[0] == (sure.predicted, pytest.approx(sure.confidence))
    torn = np.full(10, 0.1)
    torn[3], torn[5] = 0.3, 0.25
    doubt = explain.assess(torn / torn.sum(), features, cal)
    assert doubt.unsure and "sure" in doubt.reason
    far = explain.assess(probs, -features - 5.0, cal)
    assert far.unsure and "doesn't look like any digit" in far.reason


def test_incompatible_model_is_named():
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    with pytest.raises(explain.IncompatibleModelError, match="my-run"):
        explain.check_model(model, "my-run")
    explain.check_model(build_model(preset("tutorial")), "fine")
