"""core.evaluation against model.evaluate and scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import precision_recall_fscore_support

from core.data import make_dataset
from core.evaluation import (
    confusion_matrix,
    evaluate,
    evaluate_probabilities,
    per_class_metrics,
)
from core.models import build_model


def test_loss_and_accuracy_equal_model_evaluate(mnist, tiny_config):
    model = build_model(tiny_config)
    model.fit(make_dataset(mnist.x_train[:512], mnist.y_train[:512], 64), epochs=1, verbose=0)
    x, y = mnist.x_test[:1000], mnist.y_test[:1000]
    loss, acc = model.evaluate(make_dataset(x, y, 250), verbose=0)
    ours = evaluate(model, x, y)
    assert ours.loss == pytest.approx(loss, abs=1e-4)
    assert ours.accuracy == pytest.approx(acc, abs=1e-6)
    assert ours.confusion.sum() == 1000 and np.trace(ours.confusion) == round(acc * 1000)


def test_confusion_and_per_class_against_a_hand_count():
    y_true = np.array([0, 0, 1, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 2])
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    precision, recall, f1, support = per_class_metrics(cm)
    assert precision.tolist() == pytest.approx([1.0, 2 / 3, 0.5])
    assert recall.tolist() == pytest.approx([0.5, 2 / 3, 1.0])
    assert f1[0] == pytest.approx(2 / 3) and support.tolist() == [2, 3, 1]


def test_against_scikit_learn_on_random_labels():
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 10, 5000), rng.integers(0, 10, 5000)
    y_pred[:100] = 3  # make it lopsided
    cm = confusion_matrix(y_true, y_pred)
    assert np.array_equal(cm, sk_confusion(y_true, y_pred, labels=range(10)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(10), zero_division=0)
    ours = per_class_metrics(cm)
    for a, b in zip(ours, (p, r, f, s), strict=True):
        assert np.allclose(a, b)


def test_mistake_helpers_on_hand_made_probabilities():
    probs = np.full((5, 10), 0.01, np.float32)
    answers = [
        (1, 0.91),
        (2, 0.55),
        (3, 0.95),
        (4, 0.6),
        (5, 0.99),
    ]  # predicted digit, its probability
    for i, (digit, p) in enumerate(answers):
        probs[i, digit] = p
    labels = np.array([1, 7, 3, 9, 5])  # rows 1 and 3 are wrong
    ev = evaluate_probabilities(probs, labels)
    assert ev.misclassified.tolist() == [1, 3]
    assert ev.most_confident_mistakes().tolist() == [3, 1]
    assert ev.least_confident_correct().tolist() == [0, 2, 4]
    assert ev.hardest(2).tolist() == [1, 3]
    assert ev.cell(7, 2).tolist() == [1] and ev.cell(9, 4).tolist() == [3]
    assert ev.accuracy == pytest.approx(0.6)
