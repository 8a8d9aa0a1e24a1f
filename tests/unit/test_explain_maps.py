"""The Draw page's maps against hand computations: two classes on one scale, occlusion in
percentage points, and the activations from every filter to the softmax.

The hand-built networks have fixed weights, so each map can be written down on paper: a linear
network's saliency is the absolute weights of its class, and a 1x1 convolution followed by global
average pooling gives Grad-CAM weights of W[k, c] / (h * w).
"""

import keras
import numpy as np
import pytest

from core import charts, draw_session, explain
from core.runs import DEFAULT_RUN, RunStore

RNG = np.random.default_rng(7)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.fixture(scope="module")
def linear():
    """Logits = W . pixels + b, softmax: every pixel's gradient is a weight."""
    inputs = keras.Input((28, 28, 1))
    dense = keras.layers.Dense(10, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    w = RNG.normal(0, 0.05, (784, 10)).astype(np.float32)
    b = np.linspace(-1, 1, 10).astype(np.float32)
    dense.set_weights([w, b])
    return model, w, b


@pytest.fixture(scope="module")
def pooled():
    """A 1x1 convolution (no activation) with 3 channels, global average pooling, softmax."""
    inputs = keras.Input((28, 28, 1))
    conv = keras.layers.Conv2D(3, 1, use_bias=False, name="conv")
    dense = keras.layers.Dense(10, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(conv(inputs))))
    k = np.array([1.0, -0.5, 2.0], np.float32).reshape(1, 1, 1, 3)
    conv.set_weights([k])
    w = RNG.normal(0, 1.0, (3, 10)).astype(np.float32)
    dense.set_weights([w, np.zeros(10, np.float32)])
    return model, k.ravel(), w


def a_digit() -> np.ndarray:
    x = np.zeros((28, 28), np.float32)
    x[6:22, 12:16] = 1.0  # a thick bar, a 1 of sorts
    x[6:9, 8:13] = 0.6
    return x


def test_on_answer_scale_by_hand():
    heat = {0: np.array([[1.0, 3.0]]), 1: np.array([[2.0, 2.0]])}
    logits = np.array([np.log(0.75), np.log(0.25)])
    # Each map spreads its probability: class 0 -> [0.1875, 0.5625], class 1 -> [0.125, 0.125].
    own = explain._on_answer_scale(heat, logits, 1, None)
    assert own == pytest.approx(np.array([[1.0, 1.0]]))
    assert explain._on_answer_scale(heat, logits, 0, 0) == pytest.approx(np.array([[1 / 3, 1.0]]))
    shared = explain._on_answer_scale(heat, logits, 1, 0)
    assert shared == pytest.approx(np.array([[0.125, 0.125]]) / 0.5625)


def test_saliency_of_a_linear_network_is_its_weights(linear):
    model, w, b = linear
    x = a_digit()
    probs = softmax(x.ravel() @ w + b)
    answer = int(np.argmax(probs))
    other = (answer + 3) % 10
    # SmoothGrad's noise changes nothing in a linear network: the gradient is the weight.
    own = explain.saliency(model, x, other)
    expected_own = np.abs(w[:, other]).reshape(28, 28)
    assert own == pytest.approx(expected_own / expected_own.max(), abs=1e-5)
    shared = explain.saliency(model, x, other, relative_to=answer)

    def share(c: int) -> np.ndarray:
        g = np.abs(w[:, c]).reshape(28, 28)
        return probs[c] * g / g.sum()

    assert shared == pytest.approx(share(other) / share(answer).max(), rel=1e-3, abs=1e-6)
    assert explain.saliency(model, x, answer, relative_to=answer).max() == pytest.approx(1.0)


def test_grad_cam_of_a_pooled_network_by_hand(pooled):
    model, k, w = pooled
    x = a_digit()
    maps = x[..., None] * k  # (28, 28, 3): the 1x1 convolution
    logits = maps.mean(axis=(0, 1)) @ w
    probs = softmax(logits)

    def cam(c: int) -> np.ndarray:
        # d logit_c / d map_k(i, j) = w[k, c] / (28 * 28), the same at every place.
        return np.maximum(maps @ (w[:, c] / 784.0), 0.0)

    for c in range(10):
        expected = cam(c)
        got = explain.grad_cam(model, x, c)
        assert got == pytest.approx(expected / expected.max() if expected.max() else expected)
    answer = int(np.argmax(probs))
    other = int(np.argsort(probs)[0])  # the least likely digit

    def share(c: int) -> np.ndarray:
        return probs[c] * cam(c) / cam(c).sum() if cam(c).sum() else cam(c)

    shared = explain.grad_cam(model, x, other, relative_to=answer)
    assert shared == pytest.approx(share(other) / share(answer).max(), rel=1e-3, abs=1e-6)


def test_occlusion_maps_are_probability_drops_of_every_class(linear):
    model, w, b = linear
    x = a_digit()
    maps = explain.occlusion_maps(model, x, patch=4, stride=4)
    assert maps.shape == (10, 28, 28)
    probs = softmax(x.ravel() @ w + b)
    covered = x.copy()
    covered[8:12, 12:16] = 0
    drop = probs - softmax(covered.ravel() @ w + b)
    # Patches do not overlap at stride 4: each pixel's value is its own patch's drop.
    assert maps[:, 9, 13] == pytest.approx(drop, abs=1e-5)
    assert np.abs(maps[:, :, :4]).max() < 1e-6  # blanking black pixels changes nothing
    assert maps.sum(axis=0) == pytest.approx(np.zeros((28, 28)), abs=1e-5)  # probabilities sum to 1
    assert explain.occlusion(model, x, 3, patch=4, stride=4) == pytest.approx(maps[3])


def test_the_page_shows_occlusion_in_points_on_one_signed_scale(linear):
    model, w, b = linear
    x = a_digit()
    probs = softmax(x.ravel() @ w + b)
    answer = int(np.argmax(probs))
    other = int(np.argsort(probs)[0])
    heat = draw_session.explanation(model, x, "Occlusion", other, answer)
    points = explain.occlusion_maps(model, x) * 100
    assert heat.signed and heat.unit == "probability drop (pp)"
    assert heat.values == pytest.approx(points[other], abs=1e-4)
    expected_limit = max(np.abs(points[[other, answer]]).max(), draw_session.OCCLUSION_MIN_SCALE)
    assert heat.limit == pytest.approx(expected_limit)
    figure = charts.scaled_overlay(x, heat.values, "t", heat.signed, heat.limit, heat.unit)
    layer = figure.data[1]
    assert (layer.zmin, layer.zmax) == (-heat.limit, heat.limit)
    assert layer.colorbar.title.text == "probability drop (pp)"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    return RunStore(tmp_path_factory.mktemp("runs")).load_model(DEFAULT_RUN)


def test_why_not_a_1_at_probability_0_stays_dark(shipped, mnist):
    x = mnist.x_test[0].astype(np.float32) / 255  # a 7, read at close to 100%
    probs = explain.Predictor(shipped)(x)
    assert int(np.argmax(probs)) == 7 and probs[1] < 5e-3
    for method in ("Grad-CAM", "Saliency"):
        answer = draw_session.explanation(shipped, x, method, 7, 7)
        why_not = draw_session.explanation(shipped, x, method, 1, 7)
        assert answer.values.max() == pytest.approx(1.0) and answer.limit == 1.0
        assert why_not.values.max() < 0.01 and why_not.limit == 1.0


def test_trace_reaches_the_softmax_with_every_filter(shipped, mnist):
    x = mnist.x_test[0].astype(np.float32) / 255
    trace = explain.trace(shipped, x)
    convs = [layer for layer in shipped.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.name for c in trace.convs] == [c.name for c in convs]
    for got, layer in zip(trace.convs, convs, strict=True):
        assert got.array.shape[-1] == layer.filters  # every filter, not the first 16
        assert got.array.min() >= 0  # read after the activation
    hidden = [layer for layer in shipped.layers if isinstance(layer, keras.layers.Dense)][:-1]
    assert [d.name for d in trace.dense] == [d.name for d in hidden]
    sub = keras.Model(shipped.inputs[0], hidden[-1].output)
    expected = sub.predict(x[None, ..., None], verbose=0)[0]
    assert trace.dense[-1].array == pytest.approx(expected, abs=1e-4)
    assert softmax(trace.logits) == pytest.approx(trace.probs)
    predicted = shipped.predict(x[None, ..., None], verbose=0)[0]
    assert trace.probs == pytest.approx(predicted, abs=1e-5)


def test_filter_pages_reach_the_last_filter():
    maps = RNG.uniform(0, 1, (7, 7, 40))
    last = charts.filter_grid(maps, start=32, count=16)
    assert len(last.data) == 8  # filters 33 to 40
    assert [a.text for a in last.layout.annotations] == [f"filter {i}" for i in range(33, 41)]
    assert np.asarray(last.data[-1].z) == pytest.approx(maps[..., 39])
    # One scale per layer: a quiet filter is not stretched to look as bright as a loud one.
    assert {(t.zmin, t.zmax) for t in last.data} == {(0, maps.max())}


def test_logits_and_softmax_figure():
    logits = np.array([1.0, 3.0, -2.0, 0, 0, 0, 0, 0, 0, 0.5])
    fig = charts.logits_and_softmax(logits, softmax(logits))
    scores, probs = fig.data
    assert np.asarray(scores.y) == pytest.approx(logits)
    assert np.asarray(probs.y) == pytest.approx(softmax(logits) * 100)
    assert probs.marker.color[1] == charts.HIGHLIGHT
