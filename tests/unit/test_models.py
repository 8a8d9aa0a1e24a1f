"""core.models: the tutorial network counted by hand, validation messages, round trips, schedules."""

import dataclasses
import json
import math

import keras
import numpy as np
import pytest

from core.models import (
    PRESETS,
    ConfigError,
    ConvBlock,
    ModelConfig,
    build_model,
    feature_map_walk,
    flops_per_image,
    learning_rate_schedule,
    make_callbacks,
    make_loss,
    make_optimizer,
    preset,
    summarize,
)

# The tutorial network's parameters, counted by hand:
#   conv 3x3, 1 -> 32 channels:   (3*3*1 + 1) * 32   =     320
#   conv 3x3, 32 -> 32 channels:  (3*3*32 + 1) * 32  =   9,248
#   28 -> 26 -> 24 -> pool -> 12; flatten 12*12*32   =   4,608 features
#   dense 4,608 -> 128:           4,608*128 + 128    = 589,952
#   dense 128 -> 10:              128*10 + 10        =   1,290
TUTORIAL_PARAMS = (3 * 3 * 1 + 1) * 32 + (3 * 3 * 32 + 1) * 32 + (12 * 12 * 32 * 128 + 128) + 1290


@pytest.fixture(scope="module")
def tutorial_model():
    return build_model(preset("tutorial"))


def test_hand_count_is_the_documented_figure():
    assert TUTORIAL_PARAMS == 600_810


def test_tutorial_preset_is_the_tutorial_network(tutorial_model):
    layers = [
        layer for layer in tutorial_model.layers if not isinstance(layer, keras.layers.InputLayer)
    ]
    assert [type(layer).__name__ for layer in layers] == [
        "Conv2D",
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
    ]
    assert type(tutorial_model.layers[0]).__name__ == "InputLayer"
    conv1, conv2, pool, drop1, _, dense, drop2, out = layers
    for conv in (conv1, conv2):
        assert conv.filters == 32 and tuple(conv.kernel_size) == (3, 3)
        assert conv.activation.__name__ == "relu" and conv.padding == "valid"
    assert tuple(pool.pool_size) == (2, 2)
    assert drop1.rate == 0.25 and drop2.rate == 0.5
    assert dense.units == 128 and dense.activation.__name__ == "relu"
    assert out.units == 10 and out.activation.__name__ == "softmax"
    assert tutorial_model.count_params() == TUTORIAL_PARAMS
    assert [layer.count_params() for layer in layers] == [320, 9248, 0, 0, 0, 589_952, 0, 1290]


def test_tutorial_preset_trains_like_the_tutorial(tutorial_model):
    cfg = preset("tutorial")
    assert isinstance(tutorial_model.optimizer, keras.optimizers.Adam)
    assert float(tutorial_model.optimizer.learning_rate) == pytest.approx(0.001)
    assert tutorial_model.loss == "categorical_crossentropy"
    assert cfg.batch_size == 32 and cfg.epochs == 10
    assert cfg.validation_split == 0.0 and not cfg.augment and not cfg.batch_norm


def test_model_starts_from_keras_input_so_every_layer_can_be_read(tutorial_model):
    assert len(tutorial_model.inputs) == 1
    assert tuple(tutorial_model.inputs[0].shape) == (None, 28, 28, 1)
    hidden = [layer.output for layer in tutorial_model.layers[1:]]
    reader = keras.Model(tutorial_model.inputs, hidden)
    outputs = reader.predict(np.zeros((2, 28, 28, 1), np.float32), verbose=0)
    assert [o.shape[1:] for o in outputs] == [
        (26, 26, 32),
        (24, 24, 32),
        (12, 12, 32),
        (12, 12, 32),
        (4608,),
        (128,),
        (128,),
        (10,),
    ]
    np.testing.assert_allclose(outputs[-1].sum(axis=1), 1.0, atol=1e-5)  # softmax rows


def test_inner_layers_of_another_preset_can_be_read():
    model = build_model(preset("fast"))
    sub = keras.Model(model.inputs[0], model.get_layer("conv1_1").output)
    out = sub(np.zeros((2, 28, 28, 1), np.float32))
    # A 5x5 valid convolution with stride 2: (28 - 5) // 2 + 1 = 12.
    assert tuple(out.shape) == (2, 12, 12, 16)


def test_fast_preset_strides_only_its_first_convolution():
    model = build_model(preset("fast"))
    conv1, conv2 = model.get_layer("conv1_1"), model.get_layer("conv2_1")
    assert tuple(conv1.strides) == (2, 2) and tuple(conv1.kernel_size) == (5, 5)
    assert tuple(conv2.strides) == (1, 1)
    # 28 -> 5x5 stride 2 -> 12 (no pooling) -> 3x3 -> 10 -> pool -> 5; flatten 5*5*32 = 800.
    assert tuple(model.get_layer("flatten").output.shape) == (None, 800)
    macs = 12 * 12 * 25 * 16 + 10 * 10 * 9 * 16 * 32 + 800 * 128 + 128 * 10
    assert flops_per_image(preset("fast")) == macs == 622_080


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_feature_map_walk_matches_the_built_model_with_a_strided_first_conv(name, padding):
    cfg = dataclasses.replace(preset(name), first_stride=2, padding=padding)
    model = build_model(cfg, compile=False)
    built = [
        int(layer.output.shape[1])
        for layer in model.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.MaxPooling2D))
    ]
    assert [layer.size_out for layer in feature_map_walk(cfg)] == built


def test_label_smoothing_moves_the_targets_towards_uniform():
    assert build_model(preset("tutorial")).loss == "categorical_crossentropy"
    loss = make_loss(preset("fast"))
    assert isinstance(loss, keras.losses.CategoricalCrossentropy)
    assert build_model(preset("fast")).loss.get_config()["label_smoothing"] == 0.1
    y = np.eye(10, dtype=np.float32)[[3, 7]]
    p = np.full((2, 10), 0.02, np.float32)
    p[0, 3] = p[1, 1] = 0.82
    # Smoothed targets by hand: 0.9 on the label plus 0.1 spread over all ten classes.
    target = y * 0.9 + 0.01
    expected = float(np.mean(-(target * np.log(p)).sum(axis=1)))
    assert float(loss(y, p)) == pytest.approx(expected, rel=1e-5)
    plain = float(np.mean(-(y * np.log(p)).sum(axis=1)))
    assert expected != pytest.approx(plain)


# ----- validation --------------------------------------------------------------------------

BASE = ModelConfig()


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"learning_rate": 2.0}, "learning_rate", "between 1e-05 and 1"),
        ({"learning_rate": 0.0}, "learning_rate", "between 1e-05 and 1"),
        ({"batch_size": 0}, "batch_size", "between 1 and 4096"),
        ({"batch_size": 5000}, "batch_size", "between 1 and 4096"),
        ({"dense_dropout": 0.95}, "dense_dropout", "between 0 and 0.9"),
        ({"epochs": 0}, "epochs", "between 1 and 100"),
        ({"epochs": 101}, "epochs", "between 1 and 100"),
        ({"validation_split": 0.7}, "validation_split", "between 0 and 0.5"),
        ({"train_samples": 50}, "train_samples", "between 100 and 60000"),
        ({"conv_blocks": (ConvBlock(0, 3, 1, True, 0.0),)}, "conv_blocks[0].filters", "between 1 and 256"),
        ({"conv_blocks": (ConvBlock(32, 3, 1, True, 0.0), ConvBlock(300, 3, 1, True, 0.0))}, "conv_blocks[1].filters", "between 1 and 256"),
        ({"conv_blocks": (ConvBlock(32, 3, 1, True, 0.95),)}, "conv_blocks[0].dropout", "between 0 and 0.9"),
        ({"conv_blocks": (ConvBlock(32, 11, 1, True, 0.0),)}, "conv_blocks[0].kernel_size", "between 1 and 9"),
        ({"augment": True, "rotation": 90.0}, "rotation", "between 0 and 45"),
        ({"optimizer": "adagrad"}, "optimizer", "adam, sgd, rmsprop"),
        ({"first_stride": 3}, "first_stride", "between 1 and 2"),
        ({"first_stride": 0}, "first_stride", "between 1 and 2"),
        ({"label_smoothing": 0.6}, "label_smoothing", "between 0 and 0.5"),
        ({"label_smoothing": -0.1}, "label_smoothing", "between 0 and 0.5"),
        ({"train_samples": 200, "batch_size": 500}, "batch_size", "larger than the 200 training samples"),
        # 28 -> 26 -> 24 -> pool 12 -> 8 -> pool 4: a 5x5 kernel no longer fits.
        ({"conv_blocks": (ConvBlock(32, 3, 2, True, 0), ConvBlock(64, 5, 1, True, 0), ConvBlock(64, 5, 1, True, 0))}, "conv_blocks[2].kernel_size", "larger than the 4x4 feature map"),
    ],
)  # fmt: skip
def test_out_of_range_values_name_the_field_and_the_range(changes, field, words):
    cfg = dataclasses.replace(BASE, **changes)
    errors = cfg.errors()
    assert field in errors, errors
    assert words in errors[field]
    with pytest.raises(ConfigError) as info:
        cfg.validate()
    assert info.value.errors == errors and field in str(info.value)
    with pytest.raises(ConfigError):
        build_model(cfg)


def test_kernel_larger_than_its_feature_map_names_the_block():
    # Three valid 9x9 convs: 28 -> 20 -> 12 -> 4, pool -> 2; the next 9x9 kernel cannot fit.
    cfg = dataclasses.replace(
        BASE, conv_blocks=(ConvBlock(8, 9, 3, True, 0.0), ConvBlock(8, 9, 1, False, 0.0))
    )
    errors = cfg.errors()
    assert list(errors) == ["conv_blocks[1].kernel_size"]
    assert "9x9" in errors["conv_blocks[1].kernel_size"]
    assert "2x2" in errors["conv_blocks[1].kernel_size"]
    # The same blocks fit with 'same' padding, which keeps 28 -> 14 -> 14.
    assert dataclasses.replace(cfg, padding="same").errors() == {}


def test_plateau_reduction_with_a_schedule_is_inconsistent():
    cfg = dataclasses.replace(
        BASE, reduce_lr_on_plateau=True, lr_schedule="cosine", validation_split=0.1
    )
    errors = cfg.errors()
    assert list(errors) == ["reduce_lr_on_plateau"]
    assert (
        "constant" in errors["reduce_lr_on_plateau"] and "cosine" in errors["reduce_lr_on_plateau"]
    )
    assert dataclasses.replace(cfg, lr_schedule="constant").errors() == {}


def test_early_stopping_needs_a_validation_split():
    errors = dataclasses.replace(BASE, early_stopping=True).errors()
    assert list(errors) == ["validation_split"]
    assert "above 0" in errors["validation_split"]
    assert dataclasses.replace(BASE, early_stopping=True, validation_split=0.1).errors() == {}


def test_batch_larger_than_the_training_samples():
    # 100 samples less a 10% hold-out leave 90 to train on.
    cfg = dataclasses.replace(BASE, train_samples=100, validation_split=0.1, batch_size=95)
    errors = cfg.errors()
    assert list(errors) == ["batch_size"]
    assert "95" in errors["batch_size"] and "90" in errors["batch_size"]
    assert dataclasses.replace(cfg, batch_size=90).errors() == {}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid(name):
    cfg = preset(name)
    assert cfg.errors() == {} and cfg.validate() is cfg and cfg.preset == name


def test_unknown_preset_is_a_config_error():
    with pytest.raises(ConfigError, match="preset.*tutorial"):
        preset("huge")


# ----- serialisation -----------------------------------------------------------------------

CUSTOM = ModelConfig(
    conv_blocks=(ConvBlock(8, 5, 2, True, 0.1), ConvBlock(16, 3, 1, False, 0.0)),
    padding="same",
    batch_norm=True,
    dense_units=0,
    dense_dropout=0.0,
    optimizer="sgd",
    learning_rate=0.0003,
    lr_schedule="exponential",
    batch_size=100,
    epochs=7,
    validation_split=0.15,
    seed=42,
    train_samples=1234,
    augment=True,
    rotation=7.5,
    zoom=0.05,
    shift=0.2,
    early_stopping=True,
    patience=4,
    terminate_on_nan=False,
)
CONFIGS = {**PRESETS, "custom": CUSTOM}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_dict_round_trip_through_json(name):
    cfg = CONFIGS[name]
    d = json.loads(json.dumps(cfg.to_dict()))
    assert isinstance(d["conv_blocks"], list) and isinstance(d["conv_blocks"][0], dict)
    assert ModelConfig.from_dict(d) == cfg
    # Keys from a newer version are ignored, so old code reads new runs.
    assert ModelConfig.from_dict({**d, "added_later": 1}) == cfg


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_query_round_trip(name):
    cfg = CONFIGS[name]
    query = cfg.to_query()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in query.items())
    assert ModelConfig.from_query(query) == cfg
    # From another base too: every field is in the URL, so the base does not leak through.
    other = PRESETS["robust"] if name != "robust" else PRESETS["fast"]
    assert ModelConfig.from_query(query, base=other) == cfg


def test_from_query_ignores_garbage():
    garbage = {
        "learning_rate": "fast",
        "epochs": "ten",
        "batch_size": "3.5",
        "train_samples": "lots",
        "seed": "",
        "blocks": "32-3-1-p",  # four parts instead of five
        "no_such_field": "1",
    }
    assert ModelConfig.from_query(garbage) == BASE
    assert ModelConfig.from_query(garbage, base=CUSTOM) == CUSTOM
    assert ModelConfig.from_query({"blocks": ""}) == BASE
    assert ModelConfig.from_query({"blocks": "a-b-c-d-e"}) == BASE
    # Readable values among the garbage still count.
    assert ModelConfig.from_query({**garbage, "epochs": "3"}).epochs == 3


# ----- summary, augmentation, schedules, callbacks -----------------------------------------


def test_summary_rows_match_the_model(tutorial_model):
    summary = summarize(tutorial_model)
    assert [r.layer for r in summary.rows] == [layer.name for layer in tutorial_model.layers]
    assert [r.kind for r in summary.rows] == [
        type(layer).__name__ for layer in tutorial_model.layers
    ]
    assert [r.params for r in summary.rows] == [
        layer.count_params() for layer in tutorial_model.layers
    ]
    assert summary.total_params == tutorial_model.count_params() == TUTORIAL_PARAMS
    assert summary.trainable_params == TUTORIAL_PARAMS
    rows = {r.layer: r for r in summary.rows}
    assert rows["conv1_1"].output_shape == "26 × 26 × 32"
    assert rows["flatten"].output_shape == "4608"
    assert summary.rows[0].output_shape == "28 × 28 × 1"


def test_summary_separates_batch_norm_statistics():
    model = build_model(preset("robust"))
    summary = summarize(model)
    assert [r.layer for r in summary.rows] == [layer.name for layer in model.layers]
    assert summary.total_params == model.count_params() == sum(r.params for r in summary.rows)
    # Batch norm keeps a moving mean and variance per channel, not trained: 2 * (32 + 64).
    assert summary.total_params - summary.trainable_params == 2 * (32 + 64)


def test_augmentation_pads_with_black():
    model = build_model(preset("robust"))
    augment = [
        layer
        for layer in model.layers
        if isinstance(
            layer,
            (keras.layers.RandomRotation, keras.layers.RandomZoom, keras.layers.RandomTranslation),
        )
    ]
    assert len(augment) == 3 and all(layer.name.startswith("aug_") for layer in augment)
    assert all(layer.fill_mode == "constant" and layer.fill_value == 0.0 for layer in augment)
    # Active only while training: inference is deterministic.
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(model(x, training=False), model(x, training=False), atol=1e-6)


def _lr(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_one_cycle_rises_then_falls():
    cfg = dataclasses.replace(preset("fast"), learning_rate=0.01, epochs=4)
    schedule = learning_rate_schedule(cfg, steps_per_epoch=100)  # 400 steps, 100 warming up
    rising = [_lr(schedule, s) for s in (0, 25, 50, 75, 100)]
    falling = [_lr(schedule, s) for s in (100, 200, 300, 400)]
    assert rising == sorted(rising) and rising[0] < rising[-1]
    assert falling == sorted(falling, reverse=True) and falling[0] > falling[-1]
    assert rising[0] == pytest.approx(0.01 / 25, rel=1e-4)
    assert rising[-1] == pytest.approx(0.01, rel=1e-4)
    assert falling[-1] < 0.01 / 100


def test_other_schedules():
    cfg = dataclasses.replace(BASE, learning_rate=0.01, epochs=10)
    assert learning_rate_schedule(cfg, 50) == 0.01  # constant
    exponential = learning_rate_schedule(dataclasses.replace(cfg, lr_schedule="exponential"), 50)
    assert _lr(exponential, 100) == pytest.approx(0.005, rel=1e-5)  # halved every two epochs
    cosine = learning_rate_schedule(dataclasses.replace(cfg, lr_schedule="cosine"), 50)
    assert _lr(cosine, 0) == pytest.approx(0.01, rel=1e-5)
    assert _lr(cosine, 500) == pytest.approx(0.01 * 0.01, rel=1e-4)


def test_optimizers():
    sgd = make_optimizer(dataclasses.replace(BASE, optimizer="sgd"), 10)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == 0.9 and sgd.nesterov
    rms = make_optimizer(dataclasses.replace(BASE, optimizer="rmsprop"), 10)
    assert isinstance(rms, keras.optimizers.RMSprop)


def test_callbacks_on_request():
    assert make_callbacks(BASE) == []
    (early,) = make_callbacks(
        dataclasses.replace(BASE, early_stopping=True, validation_split=0.1, patience=5)
    )
    assert isinstance(early, keras.callbacks.EarlyStopping)
    assert early.restore_best_weights and early.monitor == "val_loss" and early.patience == 5
    (plateau,) = make_callbacks(
        dataclasses.replace(BASE, reduce_lr_on_plateau=True, validation_split=0.1)
    )
    assert isinstance(plateau, keras.callbacks.ReduceLROnPlateau)
    assert plateau.monitor == "val_loss"
    both = make_callbacks(
        dataclasses.replace(
            BASE, early_stopping=True, reduce_lr_on_plateau=True, validation_split=0.1
        )
    )
    assert [type(c).__name__ for c in both] == ["EarlyStopping", "ReduceLROnPlateau"]


def test_flops_per_image_of_the_tutorial_by_hand():
    macs = (
        26 * 26 * (3 * 3 * 1) * 32  # conv1: 26x26 outputs, 3x3x1 window, 32 filters
        + 24 * 24 * (3 * 3 * 32) * 32  # conv2
        + 12 * 12 * 32 * 128  # dense
        + 128 * 10  # output
    )
    assert macs == 6_094_208
    assert flops_per_image(preset("tutorial")) == macs


def test_steps_per_epoch_by_hand():
    cfg = dataclasses.replace(BASE, train_samples=1000, validation_split=0.1, batch_size=64)
    assert cfg.steps_per_epoch() == math.ceil(900 / 64) == 15
    assert preset("tutorial").steps_per_epoch() == 1875  # 60,000 / 32
