"""Hand-drawn letters and scrawls, and the continental 1s and crossed 7s made from MNIST's own."""

import dataclasses

import numpy as np
import pytest

from core import strokes
from core.data import MnistData
from core.drawing import fit_like_mnist
from core.non_digits import CYCLE, KINDS, make_non_digits
from core.training import TrainingJob
from tests.conftest import TINY_CONFIG


@pytest.fixture(scope="module")
def digits(mnist):
    return mnist.x_train[:3000], mnist.y_train[:3000]


def test_letters_and_scrawls_are_seeded_drawings_inside_their_square():
    for make in (strokes.letter, strokes.scrawl):
        a = [make(np.random.default_rng(s)) for s in range(20)]
        b = [make(np.random.default_rng(s)) for s in range(20)]
        assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
        assert len({img.tobytes() for img in a}) == 20
        for img in a:
            assert img.shape == (strokes.RENDER, strokes.RENDER) and img.dtype == np.uint8
            assert (img > 128).sum() > 30  # ink, and not a dot
            # The pen never leaves the square: its border rows and columns are black.
            assert img[0].max() == img[-1].max() == img[:, 0].max() == img[:, -1].max() == 0


def test_no_table_letter_is_one_people_take_for_a_digit():
    assert not set(strokes.LETTERS) & set("OoIlSsZzBbGgq")
    for name, ways in strokes.LETTERS.items():
        assert ways and all(lines and all(len(line) >= 2 for line in lines) for lines in ways), name


def test_half_the_made_up_non_digits_are_drawn_letters_and_scrawls(digits):
    assert set(CYCLE) == set(KINDS)
    assert CYCLE.count("letter") == 5 and CYCLE.count("scrawl") == 2
    x, y = digits
    made = make_non_digits(x, y, len(CYCLE), seed=1)
    # The first of each cycle is a letter drawn by core.strokes, fitted like MNIST's digits.
    rng = np.random.default_rng(1)
    assert np.array_equal(made[0], fit_like_mnist(strokes.letter(rng)))


def _one_and_seven(x, y):
    return x[np.flatnonzero(y == 1)[0]], x[np.flatnonzero(y == 7)[0]]


def test_a_continental_one_gets_a_lead_in_stroke_down_to_the_left_of_its_top(digits):
    one, _ = _one_and_seven(*digits)
    ys, xs = np.nonzero(one > strokes.INK)
    top, height = ys.min(), ys.max() - ys.min() + 1
    for seed in range(10):
        styled = strokes.continental_one(one, np.random.default_rng(seed))
        assert styled.shape == one.shape and (styled >= one).all()  # the 1 is kept as it was
        added = (styled > strokes.INK) & (one <= strokes.INK)
        rows, cols = np.nonzero(added)
        assert added.sum() >= 4
        flag = rows < top + 0.6 * height
        # The lead-in lies below the top and reaches further left than the 1's top did.
        assert flag.any() and cols[flag].min() < xs[ys <= top + 1].min()


def test_a_crossed_seven_gets_a_bar_through_its_stem_near_the_middle(digits):
    _, seven = _one_and_seven(*digits)
    ys, _ = np.nonzero(seven > strokes.INK)
    top, bottom = ys.min(), ys.max()
    styled = strokes.crossed_seven(seven, np.random.default_rng(0))
    added = (styled > strokes.INK) & (seven <= strokes.INK)
    rows, cols = np.nonzero(added)
    assert (styled >= seven).all() and added.sum() >= 4
    middle = top + 0.35 * (bottom - top) <= rows.mean() <= top + 0.7 * (bottom - top)
    assert middle and np.ptp(cols) >= 3 * max(np.ptp(rows), 1) / 2  # a bar: wide, not tall


def test_restyle_makes_seeded_ones_and_sevens_fitted_like_mnist(digits):
    x, y = digits
    images, labels = strokes.restyle(x, y, 40, seed=2)
    again, same = strokes.restyle(x, y, 40, seed=2)
    assert np.array_equal(images, again) and np.array_equal(labels, same)
    assert images.shape == (40, 28, 28) and images.dtype == np.uint8
    assert set(labels.tolist()) == {1, 7}
    seen = {img.tobytes() for img in x}
    assert not any(img.tobytes() in seen for img in images)
    for img in images:
        rows, cols = np.nonzero(img > 20)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 in (19, 20, 21)
    # Without a 1 or a 7 there is nothing to restyle.
    none = strokes.restyle(x[y == 3], y[y == 3], 5)
    assert none[0].shape == (0, 28, 28) and len(none[1]) == 0


def test_restyled_digits_count_and_train_with_their_own_label(mnist):
    small = MnistData(
        mnist.x_train[:512], mnist.y_train[:512], mnist.x_test[:100], mnist.y_test[:100],
        "local", "first digits",
    )  # fmt: skip
    config = dataclasses.replace(TINY_CONFIG, styled_digits=0.25)
    assert config.styled_count(512) == 128 and config.split_sizes(512) == (640, 0)
    assert "styled_digits" in dataclasses.replace(config, styled_digits=0.9).errors()
    batches = list(TrainingJob(config, small)._datasets()[0])
    labels = np.concatenate([t.numpy().argmax(axis=1) for _, t in batches])
    counts = np.bincount(labels, minlength=10)
    base = np.bincount(small.y_train, minlength=10)
    assert len(labels) == 640 and (counts - base)[[1, 7]].sum() == 128
    assert np.array_equal(np.delete(counts - base, [1, 7]), np.zeros(8))
