"""core.evaluation against model.evaluate, scikit-learn, and small cases worked by hand."""

import math

import keras
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.metrics import precision_recall_fscore_support

from core.evaluation import (
    confusion_matrix,
    cross_entropy,
    evaluate,
    evaluate_probabilities,
    per_class_metrics,
    predict_proba,
)
from core.models import build_model


@pytest.fixture(scope="module")
def trained(mnist, tiny_config):
    """The tiny network fitted on 512 digits for one epoch, with Keras's own API."""
    model = build_model(tiny_config)
    model.fit(
        mnist.x_train[:512, ..., None] / 255.0,
        keras.utils.to_categorical(mnist.y_train[:512], 10),
        batch_size=64,
        epochs=1,
        verbose=0,
    )
    return model


@pytest.mark.slow
def test_evaluate_equals_model_evaluate(trained, mnist):
    x, y = mnist.x_test[:1000], mnist.y_test[:1000]
    result = evaluate(trained, x, y)
    loss, accuracy = trained.evaluate(
        x[..., None] / 255.0, keras.utils.to_categorical(y, 10), batch_size=100, verbose=0
    )
    assert result.loss == pytest.approx(loss, abs=1e-4)
    assert result.accuracy == pytest.approx(accuracy, abs=1e-4)
    assert 0.3 < result.accuracy <= 1.0  # trained: far above chance
    assert result.probabilities.shape == (1000, 10) and result.probabilities.dtype == np.float32
    np.testing.assert_allclose(
        result.probabilities, trained.predict(x[..., None] / 255.0, verbose=0), atol=1e-5
    )
    assert result.confusion.sum() == 1000 and np.trace(result.confusion) == round(accuracy * 1000)
    assert result.support.tolist() == np.bincount(y, minlength=10).tolist()


@pytest.mark.slow
def test_predict_proba_in_uneven_batches(trained, mnist):
    x = mnist.x_test[:23]
    whole = predict_proba(trained, x, batch_size=100)
    np.testing.assert_allclose(predict_proba(trained, x, batch_size=5), whole, atol=1e-6)
    assert predict_proba(trained, x[:0]).shape == (0, 10)


def test_confusion_and_per_class_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    # No true 0s and no predicted 9s: precision and recall are undefined for some classes.
    labels = rng.integers(1, 10, 2000)
    predictions = np.where(rng.random(2000) < 0.6, labels, rng.integers(0, 9, 2000))
    predictions[predictions == 9] = 8
    cm = confusion_matrix(labels, predictions)
    expected = sk_confusion_matrix(labels, predictions, labels=list(range(10)))
    np.testing.assert_array_equal(cm, expected)
    precision, recall, f1, support = per_class_metrics(cm)
    sk = precision_recall_fscore_support(
        labels, predictions, labels=list(range(10)), zero_division=0
    )
    for ours, theirs in zip((precision, recall, f1, support), sk, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-12)
    assert support[0] == 0 and recall[0] == 0.0 and precision[9] == 0.0


def test_confusion_and_metrics_by_hand():
    labels = np.array([0, 0, 1, 2, 2, 2])
    predictions = np.array([0, 1, 1, 2, 0, 2])
    cm = confusion_matrix(labels, predictions, num_classes=3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    precision, recall, f1, support = per_class_metrics(cm)
    assert precision.tolist() == pytest.approx([1 / 2, 1 / 2, 2 / 2])
    assert recall.tolist() == pytest.approx([1 / 2, 1 / 1, 2 / 3])
    assert f1.tolist() == pytest.approx([0.5, 2 / 3, 0.8])
    assert support.tolist() == [2, 1, 3]


def test_cross_entropy_by_hand():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [1.0, 0.0, 0.0]], np.float32)
    labels = np.array([0, 2, 1])
    # The zero probability is clipped to 1e-7, as Keras does.
    expected = -(math.log(0.7) + math.log(0.1) + math.log(1e-7)) / 3
    assert cross_entropy(probs, labels) == pytest.approx(expected, rel=1e-5)
    ours = evaluate_probabilities(probs, labels)
    keras_loss = keras.losses.CategoricalCrossentropy()(np.eye(3)[labels], probs)
    assert ours.loss == pytest.approx(float(keras_loss), rel=1e-5)
    assert ours.accuracy == pytest.approx(1 / 3)


# Six images of three digits, with the model's probabilities, worked through by hand:
#   i  label  probabilities       predicted  confidence  p(label)
#   0  0      [.90, .05, .05]     0 right    .90         .90
#   1  1      [.60, .30, .10]     0 wrong    .60         .30
#   2  2      [.10, .10, .80]     2 right    .80         .80
#   3  0      [.20, .70, .10]     1 wrong    .70         .20
#   4  1      [.30, .40, .30]     1 right    .40         .40
#   5  2      [.50, .45, .05]     0 wrong    .50         .05
PROBS = np.array(
    [
        [0.90, 0.05, 0.05],
        [0.60, 0.30, 0.10],
        [0.10, 0.10, 0.80],
        [0.20, 0.70, 0.10],
        [0.30, 0.40, 0.30],
        [0.50, 0.45, 0.05],
    ],
    np.float32,
)
LABELS = np.array([0, 1, 2, 0, 1, 2])


@pytest.fixture
def hand():
    return evaluate_probabilities(PROBS, LABELS)


def test_predictions_and_confidence(hand):
    assert hand.predictions.tolist() == [0, 0, 2, 1, 1, 0]
    assert hand.confidence.tolist() == pytest.approx([0.9, 0.6, 0.8, 0.7, 0.4, 0.5])
    assert hand.misclassified.tolist() == [1, 3, 5]
    assert hand.accuracy == 0.5
    assert hand.confusion.tolist() == [[1, 1, 0], [1, 1, 0], [1, 0, 1]]


def test_cell(hand):
    assert hand.cell(0, 0).tolist() == [0]
    assert hand.cell(1, 0).tolist() == [1]
    assert hand.cell(0, 1).tolist() == [3]
    assert hand.cell(2, 0).tolist() == [5]
    assert hand.cell(2, 1).tolist() == []
    # Every image is in exactly one cell.
    cells = sorted(i for t in range(3) for p in range(3) for i in hand.cell(t, p).tolist())
    assert cells == list(range(6))


def test_most_confident_mistakes(hand):
    assert hand.most_confident_mistakes().tolist() == [3, 1, 5]  # .70, .60, .50
    assert hand.most_confident_mistakes(k=2).tolist() == [3, 1]


def test_hardest(hand):
    # Highest loss first: p(label) .05, .20, .30, .40, .80, .90.
    assert hand.hardest().tolist() == [5, 3, 1, 4, 2, 0]
    assert hand.per_sample_loss[5] == pytest.approx(-math.log(0.05), rel=1e-5)
    assert hand.hardest(k=1).tolist() == [5]


def test_least_confident_correct(hand):
    assert hand.least_confident_correct().tolist() == [4, 2, 0]  # .40, .80, .90
    assert hand.least_confident_correct(k=1).tolist() == [4]


def test_no_mistakes_means_empty_lists():
    perfect = evaluate_probabilities(np.eye(3, dtype=np.float32), np.arange(3))
    assert perfect.accuracy == 1.0
    assert perfect.most_confident_mistakes().tolist() == []
    assert perfect.misclassified.tolist() == []
    assert perfect.f1.tolist() == [1.0, 1.0, 1.0]
