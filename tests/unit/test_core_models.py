"""core.models: the tutorial network exactly, validation messages, serialisation, summaries."""

import dataclasses

import keras
import numpy as np
import pytest

from core.models import (
    PRESETS,
    ConfigError,
    ConvBlock,
    ModelConfig,
    build_model,
    flops_per_image,
    learning_rate_schedule,
    make_callbacks,
    preset,
    summarize,
)


def test_tutorial_preset_is_the_tutorial_network():
    cfg = preset("tutorial")
    model = build_model(cfg)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "InputLayer", "Conv2D", "Conv2D", "MaxPooling2D", "Dropout", "Flatten", "Dense", "Dropout", "Dense",
    ]  # fmt: skip
    conv1, conv2, pool, drop1, _, dense, drop2, out = model.layers[1:]
    assert (conv1.filters, conv1.kernel_size, conv1.activation.__name__) == (32, (3, 3), "relu")
    assert (conv2.filters, conv2.kernel_size, conv2.activation.__name__) == (32, (3, 3), "relu")
    assert pool.pool_size == (2, 2) and drop1.rate == 0.25 and drop2.rate == 0.5
    assert (dense.units, dense.activation.__name__) == (128, "relu")
    assert (out.units, out.activation.__name__) == (10, "softmax")
    # Parameters by hand: 3*3*1*32+32, 3*3*32*32+32, 12*12*32*128+128, 128*10+10.
    assert model.count_params() == 320 + 9248 + 589952 + 1290 == 600_810
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.loss == "categorical_crossentropy"
    assert (cfg.batch_size, cfg.epochs, cfg.validation_split) == (32, 10, 0.0)


def test_model_is_functional_so_inner_layers_can_be_read():
    model = build_model(preset("fast"))
    sub = keras.Model(model.inputs[0], model.get_layer("conv1_1").output)
    out = sub(np.zeros((2, 28, 28, 1), np.float32))
    assert tuple(out.shape) == (2, 26, 26, 16)


def test_summary_rows_match_the_model():
    model = build_model(preset("robust"))
    summary = summarize(model)
    assert [r.layer for r in summary.rows] == [layer.name for layer in model.layers]
    assert summary.total_params == model.count_params()
    assert sum(r.params for r in summary.rows) == model.count_params()
    assert summary.rows[0].output_shape == "28 × 28 × 1"


def test_augmentation_fills_with_black():
    model = build_model(preset("robust"))
    aug = [layer for layer in model.layers if layer.name.startswith("aug_")]
    assert len(aug) == 3 and all(layer.fill_mode == "constant" for layer in aug)


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"learning_rate": 5.0}, "learning_rate", "between 1e-05 and 1"),
        ({"batch_size": 0}, "batch_size", "between 1 and 4096"),
        ({"epochs": 1000}, "epochs", "between 1 and 100"),
        ({"dense_dropout": 0.95}, "dense_dropout", "between 0 and 0.9"),
        (
            {"conv_blocks": (ConvBlock(0, 3, 1, True, 0.0),)},
            "conv_blocks[0].filters",
            "between 1 and 256",
        ),
        (
            {"conv_blocks": (ConvBlock(32, 3, 1, True, 1.5),)},
            "conv_blocks[0].dropout",
            "between 0 and 0.9",
        ),
        (
            # 28 -> 26 -> 24 -> pool 12 -> 8 -> pool 4: a 5x5 kernel no longer fits.
            {
                "conv_blocks": (
                    ConvBlock(32, 3, 2, True, 0),
                    ConvBlock(64, 5, 1, True, 0),
                    ConvBlock(64, 5, 1, True, 0),
                )
            },
            "conv_blocks[2].kernel_size",
            "larger than the 4x4 feature map",
        ),
        (
            {"reduce_lr_on_plateau": True, "validation_split": 0.1, "lr_schedule": "one_cycle"},
            "reduce_lr_on_plateau",
            "constant",
        ),
        ({"early_stopping": True}, "validation_split", "above 0"),
        (
            {"train_samples": 200, "batch_size": 500},
            "batch_size",
            "larger than the 200 training samples",
        ),
        ({"optimizer": "adagrad"}, "optimizer", "adam, sgd, rmsprop"),
    ],
)
def test_validation_names_the_field_and_the_range(changes, field, words):
    cfg = dataclasses.replace(preset("tutorial"), **changes)
    errors = cfg.errors()
    assert field in errors and words in errors[field], errors
    with pytest.raises(ConfigError) as exc:
        cfg.validate()
    assert exc.value.errors == errors


def test_presets_are_valid():
    for name, cfg in PRESETS.items():
        assert cfg.errors() == {}, name


@pytest.mark.parametrize("name", [*PRESETS, "custom"])
def test_round_trips(name):
    cfg = PRESETS.get(name) or ModelConfig(
        conv_blocks=(ConvBlock(8, 5, 2, False, 0.1), ConvBlock(16, 3, 1, True, 0.0)),
        padding="same",
        optimizer="sgd",
        learning_rate=0.05,
        lr_schedule="exponential",
        train_samples=1234,
        augment=True,
        rotation=7.5,
    )
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert ModelConfig.from_query(cfg.to_query()) == cfg


def test_from_query_ignores_garbage():
    base = preset("tutorial")
    cfg = ModelConfig.from_query({"epochs": "many", "blocks": "x-y", "learning_rate": "0.01"}, base)
    assert cfg.epochs == base.epochs and cfg.conv_blocks == base.conv_blocks
    assert cfg.learning_rate == 0.01


def test_one_cycle_rises_then_falls():
    cfg = dataclasses.replace(preset("fast"), epochs=4)
    schedule = learning_rate_schedule(cfg, steps_per_epoch=100)
    lr = [float(schedule(step)) for step in (0, 50, 100, 200, 399)]
    assert lr[0] < lr[1] < lr[2] and lr[2] == pytest.approx(cfg.learning_rate, rel=1e-3)
    assert lr[2] > lr[3] > lr[4]


def test_callbacks_from_the_configuration():
    cfg = dataclasses.replace(
        preset("tutorial"), early_stopping=True, reduce_lr_on_plateau=True, validation_split=0.1
    )
    cbs = make_callbacks(cfg)
    early = [c for c in cbs if isinstance(c, keras.callbacks.EarlyStopping)]
    plateau = [c for c in cbs if isinstance(c, keras.callbacks.ReduceLROnPlateau)]
    assert early and early[0].restore_best_weights and plateau
    assert make_callbacks(preset("tutorial")) == []


def test_flops_of_the_tutorial_by_hand():
    conv1 = 26 * 26 * 9 * 1 * 32
    conv2 = 24 * 24 * 9 * 32 * 32
    dense = 12 * 12 * 32 * 128 + 128 * 10
    assert flops_per_image(preset("tutorial")) == conv1 + conv2 + dense
