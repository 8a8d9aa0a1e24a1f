"""Why the model decided: fast prediction, saliency, Grad-CAM, occlusion, activations, confidence.

Models are functional Keras models built from keras.Input(shape=(28, 28, 1)) whose last layer is a
10-way softmax Dense layer, so every inner layer's output can be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from core.data import INPUT_SHAPE, NUM_CLASSES, preprocess_images

AUGMENTATION_LAYERS = ("RandomRotation", "RandomZoom", "RandomTranslation", "RandomFlip")
POST_CONV_LAYERS = ("BatchNormalization", "Activation", "ReLU")
TARGET_PRECISION = 0.995
DISTANCE_PERCENTILE = 99.5


class IncompatibleModelError(ValueError):
    """A model that does not take 28x28x1 digits or does not answer with 10 classes."""


def check_model(model, name: str) -> None:
    """Raise IncompatibleModelError, naming the run, unless model fits MNIST digits."""
    shape = tuple(model.inputs[0].shape[1:]) if model.inputs else None
    out = tuple(model.outputs[0].shape[1:]) if model.outputs else None
    if shape != INPUT_SHAPE:
        raise IncompatibleModelError(
            f"Run '{name}' expects inputs of shape {shape}, not 28x28x1 digits; "
            "choose another run or train a new one."
        )
    if out != (NUM_CLASSES,):
        raise IncompatibleModelError(
            f"Run '{name}' answers with shape {out}, not 10 digit classes; choose another run."
        )


def _as_batch(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    return x.reshape(-1, *INPUT_SHAPE)


def _features_layer(model):
    """The last Dense layer: its input is what the network learned to see."""
    return model.layers[-1]


class Predictor:
    """Class probabilities and learned features for one drawing, through one compiled call."""

    def __init__(self, model):
        self.model = model
        both = keras.Model(model.inputs[0], [_features_layer(model).input, model.outputs[0]])
        self._call = tf.function(
            lambda x: both(x, training=False),
            input_signature=[tf.TensorSpec((None, *INPUT_SHAPE), tf.float32)],
            reduce_retracing=True,
        )
        self.predict_with_features(np.zeros((28, 28), np.float32))  # warm up (traces once)

    def predict_with_features(self, x28) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (10,), features (d,)) of one 28x28 input."""
        features, probs = self._call(tf.constant(_as_batch(x28)))
        return probs.numpy()[0], features.numpy()[0]

    def __call__(self, x28) -> np.ndarray:
        """Probabilities (10,) of one 28x28 input in [0, 1]."""
        return self.predict_with_features(x28)[0]

    def batch(self, x) -> np.ndarray:
        """Probabilities (n, 10) of several 28x28 inputs."""
        return self._call(tf.constant(_as_batch(x)))[1].numpy()


def feature_extractor(model, batch_size: int = 1000):
    """A function mapping (n, 28, 28) images (uint8 or [0, 1]) to the learned features."""
    sub = keras.Model(model.inputs[0], _features_layer(model).input)

    def extract(images) -> np.ndarray:
        images = np.asarray(images)
        out = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            batch = preprocess_images(chunk) if chunk.dtype == np.uint8 else _as_batch(chunk)
            out.append(keras.ops.convert_to_numpy(sub(batch, training=False)))
        return np.concatenate(out) if out else np.zeros((0, sub.outputs[0].shape[-1]), np.float32)

    return extract


def saliency(model, x28, class_index: int) -> np.ndarray:
    """Gradient of the class probability w.r.t. each pixel, smoothed over a few noisy copies."""
    base = _as_batch(x28)
    rng = np.random.default_rng(0)
    # SmoothGrad: average gradients of slightly noisy copies, which is far less speckled.
    batch = np.concatenate([base, base + rng.normal(0, 0.1, (7, *INPUT_SHAPE)).astype(np.float32)])
    x = tf.constant(batch)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = model(x, training=False)[:, class_index]
    grads = np.abs(tape.gradient(score, x).numpy()).mean(axis=0)[..., 0]
    top = grads.max()
    return (grads / top if top > 0 else grads).astype(np.float32)


def _last_feature_map_layer(model, layer_name: str | None = None):
    if layer_name:
        return model.get_layer(layer_name)
    candidates = [
        layer
        for layer in model.layers[1:]
        if len(layer.output.shape) == 4 and type(layer).__name__ not in AUGMENTATION_LAYERS
    ]
    conv = [i for i, layer in enumerate(candidates) if isinstance(layer, keras.layers.Conv2D)]
    if not conv:
        raise IncompatibleModelError("The model has no convolution layer to explain.")
    # The last conv layer, after its batch normalisation and activation if it has them.
    i = conv[-1]
    while i + 1 < len(candidates) and type(candidates[i + 1]).__name__ in POST_CONV_LAYERS:
        i += 1
    return candidates[i]


def grad_cam(model, x28, class_index: int, layer_name: str | None = None) -> np.ndarray:
    """Grad-CAM over the last conv layer, upsampled to 28x28, scaled to [0, 1]."""
    layer = _last_feature_map_layer(model, layer_name)
    sub = keras.Model(model.inputs[0], [layer.output, model.outputs[0]])
    with tf.GradientTape() as tape:
        maps, probs = sub(_as_batch(x28), training=False)
        score = probs[:, class_index]
    grads = tape.gradient(score, maps)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1))[0].numpy()
    cam = np.asarray(
        tf.image.resize(cam[..., None], (28, 28), method="bilinear")[..., 0], dtype=np.float32
    )
    top = cam.max()
    return cam / top if top > 0 else cam


def occlusion(model, x28, class_index: int, patch: int = 4, stride: int = 2) -> np.ndarray:
    """How much the class probability drops when each patch is blanked (positive = evidence for)."""
    base = _as_batch(x28)[0]
    positions = [
        (r, c) for r in range(0, 28 - patch + 1, stride) for c in range(0, 28 - patch + 1, stride)
    ]
    batch = np.repeat(base[None], len(positions) + 1, axis=0)
    for k, (r, c) in enumerate(positions, start=1):
        batch[k, r : r + patch, c : c + patch] = 0.0
    probs = keras.ops.convert_to_numpy(model(batch, training=False))[:, class_index]
    heat = np.zeros((28, 28), np.float32)
    counts = np.zeros((28, 28), np.float32)
    for k, (r, c) in enumerate(positions, start=1):
        heat[r : r + patch, c : c + patch] += probs[0] - probs[k]
        counts[r : r + patch, c : c + patch] += 1
    return heat / np.maximum(counts, 1)


@dataclass
class LayerActivation:
    """One convolution layer's output for one input."""

    name: str
    array: np.ndarray


def activations(model, x28) -> list[LayerActivation]:
    """The output of every convolution layer (after its normalisation/activation), in order."""
    layers = [layer for layer in model.layers[1:] if len(layer.output.shape) == 4]
    picked = []
    for i, layer in enumerate(layers):
        if isinstance(layer, keras.layers.Conv2D):
            j = i
            while j + 1 < len(layers) and type(layers[j + 1]).__name__ in POST_CONV_LAYERS:
                j += 1
            picked.append((layer.name, layers[j]))
    if not picked:
        return []
    sub = keras.Model(model.inputs[0], [layer.output for _, layer in picked])
    outs = sub(_as_batch(x28), training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return [
        LayerActivation(name, keras.ops.convert_to_numpy(o)[0])
        for (name, _), o in zip(picked, outs, strict=True)
    ]


@dataclass
class Calibration:
    """When to say "not sure": thresholds measured on validation data."""

    confidence_threshold: float
    centroids: np.ndarray
    """Unit-length mean feature direction of each digit."""
    distance_threshold: float
    validation_accuracy: float
    samples: int
    rule: str = field(default="")

    def to_dict(self) -> dict:
        """JSON-able form."""
        return {
            "confidence_threshold": self.confidence_threshold,
            "centroids": self.centroids.tolist(),
            "distance_threshold": self.distance_threshold,
            "validation_accuracy": self.validation_accuracy,
            "samples": self.samples,
            "rule": self.rule,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        """Inverse of to_dict."""
        return cls(
            confidence_threshold=float(d["confidence_threshold"]),
            centroids=np.asarray(d["centroids"], dtype=np.float32),
            distance_threshold=float(d["distance_threshold"]),
            validation_accuracy=float(d["validation_accuracy"]),
            samples=int(d["samples"]),
            rule=d.get("rule", ""),
        )

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Cosine distance of each feature vector to the nearest digit's mean direction."""
        return 1.0 - (_unit(np.atleast_2d(features)) @ self.centroids.T).max(axis=1)


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-9)


def calibrate(model, x_val, y_val) -> Calibration:
    """Measure, on validation digits, the confidence and feature distance of reliable answers."""
    y_val = np.asarray(y_val, dtype=np.int64)
    extract = feature_extractor(model)
    features = extract(x_val)
    probs = _probs_from_features(model, features)
    predicted = probs.argmax(axis=1)
    confidence = probs.max(axis=1)
    correct = predicted == y_val
    # The smallest threshold t such that answers with confidence >= t are at least 99.5% right.
    order = np.argsort(-confidence)
    running = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(running >= TARGET_PRECISION)
    threshold = float(confidence[order][ok[-1]]) if len(ok) else 0.99
    threshold = float(np.clip(threshold, 0.5, 0.99))
    # Directions, not positions: a very confident digit has larger features in the same direction.
    centroids = np.stack(
        [
            _unit(features[y_val == d].mean(axis=0))
            if np.any(y_val == d)
            else _unit(features.mean(0))
            for d in range(NUM_CLASSES)
        ]
    ).astype(np.float32)
    cal = Calibration(threshold, centroids, 0.0, float(correct.mean()), len(y_val))
    cal.distance_threshold = float(np.percentile(cal.distance(features), DISTANCE_PERCENTILE))
    cal.rule = (
        f"Answers with confidence of at least {threshold:.0%} were {TARGET_PRECISION:.1%} right on "
        f"{len(y_val):,} validation digits; inputs whose learned features point away from every "
        f"digit's mean direction more than {DISTANCE_PERCENTILE}% of validation digits do are "
        "flagged as unlike any digit."
    )
    return cal


def _probs_from_features(model, features: np.ndarray) -> np.ndarray:
    """Apply the last Dense layer to features (the rest of the network already ran)."""
    return keras.ops.convert_to_numpy(model.layers[-1](tf.constant(features, dtype=tf.float32)))


@dataclass
class Verdict:
    """What to tell the visitor about one input."""

    predicted: int
    confidence: float
    top3: list[tuple[int, float]]
    unsure: bool
    reason: str


def assess(probs, features, calibration: Calibration | None) -> Verdict:
    """The answer, its top three, and whether (and why) the model should not be trusted here."""
    probs = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-probs)
    predicted, confidence = int(order[0]), float(probs[order[0]])
    top3 = [(int(d), float(probs[d])) for d in order[:3]]
    if calibration is None:
        return Verdict(predicted, confidence, top3, False, "")
    distance = float(calibration.distance(np.asarray(features))[0])
    if distance > calibration.distance_threshold:
        return Verdict(
            predicted,
            confidence,
            top3,
            True,
            "This doesn't look like any digit the model has seen: what the network sees in it is "
            f"further from every digit than for {DISTANCE_PERCENTILE}% of real validation digits. "
            f"Its best guess is {predicted}, but don't trust it.",
        )
    if confidence < calibration.confidence_threshold:
        return Verdict(
            predicted,
            confidence,
            top3,
            True,
            f"The model is only {confidence:.0%} sure. On validation digits, answers below "
            f"{calibration.confidence_threshold:.0%} confidence were often wrong: it might be "
            f"{top3[1][0]} too.",
        )
    return Verdict(predicted, confidence, top3, False, "")
