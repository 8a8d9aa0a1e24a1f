"""Unit tests of core.exploration (and the evaluation figures it shows) on small known arrays."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from core import exploration as ex
from core.data import MnistData
from core.evaluation import evaluate_probabilities
from core.models import ModelConfig, augmentation_layers, build_model
from core.runs import RunInfo

# A small known case: 12 images of digits 0, 1, 2 with hand-chosen answers.
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2])
ANSWERS = np.array([0, 0, 1, 2, 1, 1, 0, 2, 2, 2, 1, 0])
# Counted by hand: row = true digit, column = answer.
HAND_CONFUSION = {
    (0, 0): 2,
    (0, 1): 1,
    (0, 2): 1,
    (1, 0): 1,
    (1, 1): 2,
    (2, 0): 1,
    (2, 1): 1,
    (2, 2): 3,
}


def known_evaluation(confidence: float = 0.7):
    """Probabilities with `confidence` on each answer and the rest spread evenly."""
    probs = np.full((len(LABELS), 10), (1 - confidence) / 9, np.float32)
    probs[np.arange(len(LABELS)), ANSWERS] = confidence
    return evaluate_probabilities(probs, LABELS)


def fake_data(n_train: int = 50, n_test: int = 20) -> MnistData:
    rng = np.random.default_rng(0)
    return MnistData(
        x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, n_train).astype(np.uint8),
        x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, n_test).astype(np.uint8),
        source="sample",
        description="made up",
    )


# ----- a model's errors ----------------------------------------------------------------------


def test_confusion_matrix_matches_a_hand_count():
    ev = known_evaluation()
    expected = np.zeros((10, 10), int)
    for (t, p), n in HAND_CONFUSION.items():
        expected[t, p] = n
    assert ev.confusion.tolist() == expected.tolist()
    assert ev.accuracy == pytest.approx(7 / 12)


def test_per_class_metrics_match_a_hand_count_and_scikit_learn():
    from sklearn.metrics import precision_recall_fscore_support

    ev = known_evaluation()
    # Digit 0: 2 right of 4 zeros; answered 0 four times (2 right). Digit 1: 2 of 3; answered
    # 1 four times. Digit 2: 3 of 5; answered 2 four times.
    assert ev.recall[:3] == pytest.approx([2 / 4, 2 / 3, 3 / 5])
    assert ev.precision[:3] == pytest.approx([2 / 4, 2 / 4, 3 / 4])
    f1 = [2 * p * r / (p + r) for p, r in zip(ev.precision[:3], ev.recall[:3], strict=True)]
    assert ev.f1[:3] == pytest.approx(f1)
    assert ev.support[:3].tolist() == [4, 3, 5]
    p, r, f, s = precision_recall_fscore_support(LABELS, ANSWERS, labels=range(10), zero_division=0)
    assert ev.precision == pytest.approx(p)
    assert ev.recall == pytest.approx(r)
    assert ev.f1 == pytest.approx(f)
    assert ev.support.tolist() == s.tolist()

    table = ex.per_class_table(ev)
    assert table["digit"] == list(range(10))
    assert table["recall %"][:3] == [50.0, 66.67, 60.0]
    assert table["mistakes"][:3] == [2, 1, 2]
    assert sum(table["mistakes"]) == 12 - 7


def test_cell_images_are_that_cell_surest_first():
    probs = np.full((len(LABELS), 10), 0.01, np.float32)
    probs[np.arange(len(LABELS)), ANSWERS] = np.linspace(0.5, 0.9, len(LABELS))
    ev = evaluate_probabilities(probs, LABELS)
    # True 2 answered 2: images 7, 8, 9, with rising confidence, so 9, 8, 7.
    assert ex.cell_indices(ev, 2, 2).tolist() == [9, 8, 7]
    assert ex.cell_indices(ev, 0, 1).tolist() == [2]
    assert ex.cell_indices(ev, 1, 2).tolist() == []
    assert ex.prob_caption(9, probs[9], 2) == f"#9 p(2)={probs[9, 2]:.2f}"
    assert ex.prob_caption(9, probs[9], 2, 2) == f"#9 p(2)={probs[9, 2]:.2f}"
    assert ex.prob_caption(10, probs[10], 1, 2) == f"#10 p(1)={probs[10, 1]:.2f} p(2)=0.01"
    assert ex.error_caption(ev, 10) == f"#10 2→1 ({probs[10, 1]:.2f})"


def test_most_confused_cell():
    cm = np.diag([50] * 10)
    assert ex.most_confused(cm) == (0, 0)
    cm[4, 9] = 7
    cm[7, 2] = 3
    assert ex.most_confused(cm) == (4, 9)


def test_mistake_views():
    ev = known_evaluation()
    wrong = set(np.flatnonzero(ANSWERS != LABELS).tolist())
    assert set(ex.mistakes(ev, "Most confident mistakes", 24).tolist()) == wrong
    right = ex.mistakes(ev, "Least confident correct", 3)
    assert all(ANSWERS[i] == LABELS[i] for i in right)
    assert len(ex.mistakes(ev, "Hardest (highest loss)", 5)) == 5


def test_compare_two_runs():
    a = known_evaluation()
    answers_b = LABELS.copy()
    answers_b[[0, 3, 7]] = [5, 5, 5]  # B misses 0, 3 and 7; A misses 2, 3, 6, 10, 11
    probs = np.full((len(LABELS), 10), 0.01, np.float32)
    probs[np.arange(len(LABELS)), answers_b] = 0.91
    b = evaluate_probabilities(probs, LABELS)
    comparison = ex.compare(a, b)
    assert comparison.only_a.tolist() == [0, 7]
    assert comparison.only_b.tolist() == [2, 6, 10, 11]
    assert comparison.both_wrong == 1
    assert comparison.accuracy_b[:3] == pytest.approx([2 / 4, 1.0, 4 / 5])
    other = evaluate_probabilities(probs, np.roll(LABELS, 1))
    with pytest.raises(ValueError, match="same test images"):
        ex.compare(a, other)


def test_captions_of_cells_details_and_comparisons():
    ev = known_evaluation(confidence=0.7)
    assert ex.cell_heading(0, 2, 1) == "True 0, predicted 2: 1 image"
    assert ex.cell_heading(4, 9, 24) == "True 4, predicted 9: 24 images"
    assert ex.cell_heading(4, 9, 1_234) == "True 4, predicted 9: 1,234 images · the 24 surest shown"
    # Image 3 is a 0 answered 2 with p(2) = 0.7 and p(0) = 0.3 / 9.
    assert ex.cell_captions(ev, np.array([3]), 0, 2) == ["#3 p(2)=0.70 p(0)=0.03"]
    assert ex.first_mistake(ev) == 2
    perfect = evaluate_probabilities(np.eye(10, dtype=np.float32)[LABELS], LABELS)
    assert ex.first_mistake(perfect) == 0
    assert ex.detail_title(3, 0, 2) == "#3: a 0, answered 2 (wrong)"
    assert ex.detail_title(0, 0, 0) == "#0: a 0, answered 0 (right)"
    # Image 10 is a 2 that `ev` answers 1.
    assert ex.comparison_captions(perfect, ev, np.array([10])) == ["#10 2, not 1"]


# ----- the dataset ---------------------------------------------------------------------------


def test_grid_and_label_captions():
    labels = np.array([3, 1, 3, 3, 0, 3, 1])
    grid = ex.page_of(np.arange(70), 2)
    assert ex.grid_caption(grid, "test") == (
        "33–64 of 70 (page 2 of 3). Each caption: index in the test set · label."
    )
    last = ex.page_of(np.arange(70), 3)
    assert ex.grid_caption(last, "train").startswith("65–70 of 70 (page 3 of 3).")
    assert ex.label_captions(np.array([4, 0]), labels) == ["#4 · 0", "#0 · 3"]


def test_relative_spread_and_background_caption():
    std = np.zeros((10, 28, 28), np.float32)
    std[3, 5, 5], std[7, 0, 0] = 0.4, 0.2
    stats = ex.ClassStats(np.zeros_like(std), std, np.ones(10, np.int64))
    spread = ex.relative_spread(stats)
    assert spread[3, 5, 5] == pytest.approx(1.0) and spread[7, 0, 0] == pytest.approx(0.5)
    flat = ex.ClassStats(std * 0, std * 0, np.ones(10, np.int64))
    assert ex.relative_spread(flat).max() == 0
    counts = np.zeros(256, np.int64)
    counts[0], counts[255] = 3, 1
    assert ex.background_caption(counts, "train").startswith(
        "75% of the train pixels are pure black background"
    )


def test_filter_and_page_against_a_hand_count():
    labels = np.array([3, 1, 3, 3, 0, 3, 1])
    assert ex.filter_indices(labels).tolist() == list(range(7))
    assert ex.filter_indices(labels, 3).tolist() == [0, 2, 3, 5]
    assert ex.filter_indices(labels, 3, within=np.array([2, 4, 5])).tolist() == [2, 5]
    assert ex.filter_indices(labels, 7).tolist() == []
    grid = ex.page_of(ex.filter_indices(labels, 3), page=2, per_page=3)
    assert (grid.indices.tolist(), grid.page, grid.pages, grid.total) == ([5], 2, 2, 4)
    # A stale page number is clamped, and nothing selected is one empty page, not an error.
    assert ex.page_of(np.arange(10), page=99, per_page=4).indices.tolist() == [8, 9]
    empty = ex.page_of(np.array([], dtype=int), page=3)
    assert (empty.indices.tolist(), empty.page, empty.pages, empty.total) == ([], 1, 1, 0)


def test_split_arrays_and_shapes():
    data = fake_data()
    assert ex.split_arrays(data, "test")[0] is data.x_test
    with pytest.raises(ValueError, match="split"):
        ex.split_arrays(data, "validation")
    lines = ex.shape_lines(data).splitlines()
    assert lines[:4] == [
        "x_train shape: (50, 28, 28)",
        "y_train shape: (50,)",
        "x_test shape: (20, 28, 28)",
        "y_test shape: (20,)",
    ]
    assert "x_train shape: (50, 28, 28, 1)" in lines
    assert "50 train samples" in lines


def test_class_stats_against_a_loop():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    labels = np.array([d for d in range(9) for _ in range(4)] + [0] * 4)  # no 9s
    stats = ex.class_stats(images, labels)
    for d in range(9):
        mine = [images[i].astype(np.float64) / 255 for i in range(40) if labels[i] == d]
        assert stats.mean[d] == pytest.approx(np.mean(mine, axis=0), abs=1e-6)
        assert stats.std[d] == pytest.approx(np.std(mine, axis=0), abs=1e-5)
    assert not stats.mean[9].any() and not stats.std[9].any()
    assert stats.counts.tolist() == [8, 4, 4, 4, 4, 4, 4, 4, 4, 0]


def test_pixel_counts_against_a_counter():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    counter = Counter(images.ravel().tolist())
    counts = ex.pixel_counts(images)
    assert counts.shape == (256,)
    assert counts.tolist() == [counter.get(v, 0) for v in range(256)]


# ----- the tutorial's preprocessing ----------------------------------------------------------


def test_preprocessing_steps_on_one_sample():
    image = np.zeros((28, 28), np.uint8)
    image[10:14, 12:16] = 255
    image[10, 12] = 51
    steps = ex.preprocessing_steps(image, 7)
    assert steps.raw.dtype == np.uint8 and steps.raw.shape == (28, 28)
    assert steps.reshaped.shape == (28, 28, 1) and steps.reshaped.dtype == np.uint8
    assert steps.scaled.shape == (28, 28, 1) and steps.scaled.dtype == np.float32
    assert steps.scaled[10, 12, 0] == pytest.approx(0.2)
    assert steps.scaled.max() == 1.0
    assert steps.one_hot.tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 0, 0]
    code = ex.preprocessing_code(steps, "test", 3)
    assert "x = x_test[3]" in code
    assert "(28, 28, 1) float32, 0.0 … 1.0" in code
    assert "7 → [0., 0., 0., 0., 0., 0., 0., 1., 0., 0.]" in code


def test_ink_window_is_centred_on_the_ink_and_stays_inside():
    image = np.zeros((28, 28), np.uint8)
    image[10:14, 12:16] = 255
    rows, cols = ex.ink_window(image, size=8)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (8, 16, 10, 18)
    corner = np.zeros((28, 28), np.uint8)
    corner[0, 27] = 255
    rows, cols = ex.ink_window(corner, size=8)
    assert (rows.start, cols.stop) == (0, 28)
    assert ex.pixel_text(np.array([[0, 12], [255, 3]])) == [["0", "12"], ["255", "3"]]


def test_window_rect_patches_and_one_hot_table():
    image = np.zeros((28, 28), np.uint8)
    image[10:14, 12:16] = 255
    image[10, 12] = 51
    steps = ex.preprocessing_steps(image, 4)
    rows, cols = slice(8, 16), slice(10, 18)
    assert ex.window_rect(rows, cols) == dict(x0=9.5, x1=17.5, y0=7.5, y1=15.5)
    before, after = ex.pixel_patches(steps, rows, cols)
    assert (before.key, before.top, after.key, after.top) == ("before", 255, "after", 1)
    assert before.values.shape == (8, 8) and before.values[2, 2] == 51
    assert after.values[2, 2] == pytest.approx(0.2) and after.values[3, 3] == 1.0
    assert ex.one_hot_table(steps) == {str(d): [int(d == 4)] for d in range(10)}


# ----- augmentation --------------------------------------------------------------------------


def test_augmentation_layers_follow_the_config_with_black_fill():
    config = ModelConfig(rotation=18.0, zoom=0.2, shift=0.15)
    layers = augmentation_layers(config)
    names = [type(layer).__name__ for layer in layers]
    assert names == ["RandomRotation", "RandomZoom", "RandomTranslation"]
    configs = [layer.get_config() for layer in layers]
    assert all(c["fill_mode"] == "constant" for c in configs)
    assert configs[0]["factor"] == pytest.approx((-18.0 / 360.0, 18.0 / 360.0))
    assert configs[1]["height_factor"] == pytest.approx(0.2)
    assert configs[2]["height_factor"] == pytest.approx(0.15)
    assert configs[2]["width_factor"] == pytest.approx(0.15)
    # The same transformations as the training model's own augmentation layers.
    model = build_model(dataclasses.replace(config, augment=True), compile=False)
    trained = [model.get_layer(n).get_config() for n in ("aug_rotate", "aug_zoom", "aug_shift")]
    for mine, theirs in zip(configs, trained, strict=True):
        for key in ("factor", "height_factor", "width_factor", "fill_mode", "fill_value"):
            assert mine.get(key) == theirs.get(key), key
    assert augmentation_layers(ModelConfig(rotation=0, zoom=0, shift=0)) == []


def test_augment_preview_is_random_but_reproducible():
    image = np.zeros((28, 28), np.uint8)
    image[6:22, 12:16] = 255
    config = ModelConfig(rotation=30.0, zoom=0.2, shift=0.2)
    a = ex.augment_preview(image, config, count=6, seed=3)
    assert a.shape == (6, 28, 28) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert np.array_equal(a, ex.augment_preview(image, config, count=6, seed=3))
    assert not np.allclose(a[0], image / 255.0)
    assert len({a[i].tobytes() for i in range(6)}) == 6
    # Black fill: nothing appears in the corners (reflect or wrap would copy ink there).
    assert a[:, :3, :3].max() == 0 and a[:, -3:, -3:].max() == 0
    same = ex.augment_preview(image, ModelConfig(rotation=0, zoom=0, shift=0), count=2)
    assert np.allclose(same, image / 255.0)


def test_augment_preview_shows_elastic_warps_and_pens_as_training_does():
    image = np.zeros((28, 28), np.uint8)
    image[6:22, 11:16] = 255
    still = ModelConfig(rotation=0, zoom=0, shift=0)
    pens = ex.augment_preview(image, dataclasses.replace(still, pen_width=1.0), count=8, seed=2)
    ink = pens.reshape(8, -1).sum(axis=1) / (image.sum() / 255.0)
    # Every draw has another pen: thicker (more ink) or thinner (less), none the same.
    assert np.all(np.abs(ink - 1.0) > 0.05) and np.any(ink > 1.05) and np.any(ink < 0.95)
    bent = ex.augment_preview(image, dataclasses.replace(still, elastic=1.0), count=8, seed=2)
    assert bent.shape == (8, 28, 28) and 0.0 <= bent.min() and bent.max() <= 1.0
    moved = np.abs(bent - image / 255.0).reshape(8, -1).max(axis=1)
    assert (moved > 0.2).sum() >= 6
    again = ex.augment_preview(image, dataclasses.replace(still, elastic=1.0), count=8, seed=2)
    np.testing.assert_array_equal(bent, again)


def test_augmentation_base_is_the_run_when_it_augments():
    plain = ModelConfig()
    assert ex.augmentation_base(None) == (plain, "the Train page's defaults")
    augmenting = ModelConfig(augment=True, rotation=20.0, zoom=0.05, shift=0.05)
    run = RunInfo("r1", Path("runs/r1"), augmenting, {}, {})
    assert ex.augmentation_base(run) == (augmenting, "as run **r1** trains")
    run.config = dataclasses.replace(augmenting, augment=False)
    assert ex.augmentation_base(run) == (plain, "the Train page's defaults")
    run.config = ModelConfig(pen_width=0.3)
    assert ex.augmentation_base(run) == (run.config, "as run **r1** trains")


# ----- maps ----------------------------------------------------------------------------------


def test_subsample():
    labels = np.arange(100) % 10
    idx = ex.subsample(labels, 30, seed=1)
    assert len(idx) == 30 and len(set(idx.tolist())) == 30
    assert idx.tolist() == sorted(idx.tolist())
    assert np.array_equal(idx, ex.subsample(labels, 30, seed=1))
    assert ex.subsample(labels, 500).tolist() == list(range(100))


def test_pca_matches_an_svd_projection():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 12)).astype(np.float32) * np.linspace(5, 0.1, 12)
    coords = ex.project(x, "pca")
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    # Principal axes are defined up to sign.
    assert np.abs(coords) == pytest.approx(np.abs(expected), abs=1e-3)
    assert ex.project(x[:2], "pca").shape == (2, 2)
    with pytest.raises(ValueError, match="method"):
        ex.project(x, "umap")


def test_tsne_keeps_clusters_apart():
    rng = np.random.default_rng(4)
    centres = rng.normal(scale=20, size=(3, 60))
    x = np.concatenate([c + rng.normal(size=(40, 60)) for c in centres]).astype(np.float32)
    labels = np.repeat(np.arange(3), 40)
    coords = ex.project(x, "tsne")
    assert coords.shape == (120, 2)
    # Each point's nearest neighbour on the map is from its own cluster.
    d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(axis=1)] == labels).all()


def test_pixels_are_scaled_rows():
    images = np.full((3, 28, 28), 255, np.uint8)
    rows = ex.pixels(images)
    assert rows.shape == (3, 784) and rows.dtype == np.float32 and rows.max() == 1.0


def test_map_sample_and_selection():
    assert ex.map_sample("PCA", 1000) == ("pca", ex.MAP_SAMPLES)
    assert ex.map_sample("t-SNE", 1000) == ("tsne", 1000)
    assert ex.selection([5, 2, 5]) == ([5, 2], "Selected on the map: 2 digits")
    assert ex.selection([7]) == ([7], "Selected on the map: 1 digit")
    chosen, heading = ex.selection(list(range(30)) * 2, shown=24)
    assert chosen == list(range(24))
    assert heading == "Selected on the map: 30 digits, the first 24 shown"


# ----- model features and attention ----------------------------------------------------------


def test_learned_features_are_the_last_dense_layer_input(tiny_model):
    import keras

    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    features = ex.learned_features(tiny_model, images)
    assert features.shape == (7, 13 * 13 * 4)
    # Applying the last Dense layer's weights to the features gives the model's output.
    w, b = tiny_model.layers[-1].get_weights()
    logits = features @ w + b
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    out = keras.ops.convert_to_numpy(tiny_model(images[..., None] / 255.0, training=False))
    assert expected == pytest.approx(out, abs=1e-5)


def test_attention_maps_and_model_problems(tiny_model):
    import keras

    image = np.zeros((28, 28), np.uint8)
    image[8:20, 12:16] = 255
    maps = ex.attention(tiny_model, image, 3)
    assert set(maps) == {"Grad-CAM", "Saliency"}
    assert all(m.shape == (28, 28) for m in maps.values())
    assert ex.model_problem(tiny_model, "tiny") is None
    inputs = keras.Input(shape=(32, 32, 3))
    wrong = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    assert "expects inputs of shape" in ex.model_problem(wrong, "odd")
