"""Model configuration (validated), presets, and the factory that builds and compiles the network.

One `ModelConfig` is what the Train form fills, what a job trains, what a run saves and what the
page URL encodes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from core.data import INPUT_SHAPE, NUM_CLASSES, TRAIN_SIZE

OPTIMIZERS = ("adam", "sgd", "rmsprop")
SCHEDULES = ("constant", "one_cycle", "cosine", "exponential")
PADDINGS = ("valid", "same")

LIMITS: dict[str, tuple[float, float]] = {
    "filters": (1, 256),
    "kernel_size": (1, 9),
    "convs": (1, 3),
    "block_dropout": (0.0, 0.9),
    "dense_units": (0, 1024),
    "dense_dropout": (0.0, 0.9),
    "learning_rate": (1e-5, 1.0),
    "batch_size": (1, 4096),
    "epochs": (1, 100),
    "validation_split": (0.0, 0.5),
    "seed": (0, 2**31 - 1),
    "rotation": (0.0, 45.0),
    "zoom": (0.0, 0.5),
    "shift": (0.0, 0.3),
    "patience": (1, 20),
    "train_samples": (100, TRAIN_SIZE),
    "conv_blocks": (1, 4),
}


@dataclass(frozen=True)
class ConvBlock:
    """Convolutions of one width, then optional 2x2 max pooling and dropout."""

    filters: int = 32
    kernel_size: int = 3
    convs: int = 1
    pool: bool = True
    dropout: float = 0.0


@dataclass(frozen=True)
class ModelConfig:
    """Every knob of the network and its training."""

    # Architecture
    conv_blocks: tuple[ConvBlock, ...] = (ConvBlock(32, 3, 2, True, 0.25),)
    padding: str = "valid"
    batch_norm: bool = False
    dense_units: int = 128
    dense_dropout: float = 0.5
    # Training
    optimizer: str = "adam"
    learning_rate: float = 0.001
    lr_schedule: str = "constant"
    batch_size: int = 32
    epochs: int = 10
    validation_split: float = 0.0
    seed: int = 0
    train_samples: int | None = None
    # Augmentation (Keras preprocessing layers, active only while training)
    augment: bool = False
    rotation: float = 10.0
    zoom: float = 0.1
    shift: float = 0.1
    # Callbacks
    early_stopping: bool = False
    reduce_lr_on_plateau: bool = False
    patience: int = 3
    terminate_on_nan: bool = True
    preset: str = "custom"

    # ----- derived facts -------------------------------------------------------------------
    def samples(self, available: int = TRAIN_SIZE) -> int:
        """How many training samples are used (before the validation hold-out)."""
        return min(self.train_samples or available, available)

    def steps_per_epoch(self, available: int = TRAIN_SIZE) -> int:
        """Batches per epoch for the training part of the chosen samples."""
        n = self.samples(available)
        n_train = n - int(round(n * self.validation_split))
        return max(1, math.ceil(n_train / self.batch_size))

    def feature_map_sizes(self) -> list[int]:
        """The spatial size entering each conv block, then the size after the last one."""
        size = INPUT_SHAPE[0]
        sizes = [size]
        for block in self.conv_blocks:
            for _ in range(block.convs):
                if self.padding == "valid":
                    size = size - block.kernel_size + 1
            if block.pool:
                size = size // 2
            sizes.append(size)
        return sizes

    # ----- validation ----------------------------------------------------------------------
    def errors(self) -> dict[str, str]:
        """Field name -> what is wrong and what to use instead; empty when valid."""
        errs: dict[str, str] = {}

        def check_range(name: str, value: Any, limit: str | None = None, label: str = "") -> None:
            lo, hi = LIMITS[limit or name]
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok or not lo <= value <= hi:
                errs[name] = f"{label or name} must be between {lo:g} and {hi:g} (got {value})."

        if not 1 <= len(self.conv_blocks) <= 4:
            errs["conv_blocks"] = (
                f"conv_blocks must hold 1 to 4 blocks (got {len(self.conv_blocks)})."
            )
        for i, block in enumerate(self.conv_blocks):
            for attr in ("filters", "kernel_size", "convs"):
                value = getattr(block, attr)
                if not isinstance(value, int) or isinstance(value, bool):
                    errs[f"conv_blocks[{i}].{attr}"] = f"block {i + 1} {attr} must be an integer."
                else:
                    check_range(f"conv_blocks[{i}].{attr}", value, attr, f"block {i + 1} {attr}")
            check_range(
                f"conv_blocks[{i}].dropout",
                block.dropout,
                "block_dropout",
                f"block {i + 1} dropout",
            )
        if self.padding not in PADDINGS:
            errs["padding"] = (
                f"padding must be one of {', '.join(PADDINGS)} (got {self.padding!r})."
            )
        if not errs:
            self._check_feature_maps(errs)
        for name in ("dense_units", "dense_dropout", "learning_rate", "batch_size", "epochs"):
            check_range(name, getattr(self, name))
        for name in ("validation_split", "seed", "patience"):
            check_range(name, getattr(self, name))
        if self.train_samples is not None:
            check_range("train_samples", self.train_samples)
        if self.augment:
            for name in ("rotation", "zoom", "shift"):
                check_range(name, getattr(self, name))
        if self.optimizer not in OPTIMIZERS:
            errs["optimizer"] = (
                f"optimizer must be one of {', '.join(OPTIMIZERS)} (got {self.optimizer!r})."
            )
        if self.lr_schedule not in SCHEDULES:
            errs["lr_schedule"] = (
                f"lr_schedule must be one of {', '.join(SCHEDULES)} (got {self.lr_schedule!r})."
            )
        elif self.reduce_lr_on_plateau and self.lr_schedule != "constant":
            errs["reduce_lr_on_plateau"] = (
                "reduce_lr_on_plateau needs a constant learning rate: set lr_schedule to "
                f"'constant' or turn the plateau reduction off (schedule is {self.lr_schedule!r})."
            )
        if (self.early_stopping or self.reduce_lr_on_plateau) and "validation_split" not in errs:
            if self.validation_split <= 0:
                errs["validation_split"] = (
                    "early stopping and plateau reduction watch the validation loss: "
                    "set validation_split above 0 (0.1 is usual)."
                )
        if "batch_size" not in errs and "train_samples" not in errs:
            n = self.samples()
            n_train = n - int(round(n * self.validation_split))
            if self.batch_size > n_train:
                errs["batch_size"] = (
                    f"batch_size {self.batch_size} is larger than the {n_train:,} training "
                    "samples; lower it or use more samples."
                )
        return errs

    def _check_feature_maps(self, errs: dict[str, str]) -> None:
        size = INPUT_SHAPE[0]
        for i, block in enumerate(self.conv_blocks):
            for _ in range(block.convs):
                if block.kernel_size > size:
                    errs[f"conv_blocks[{i}].kernel_size"] = (
                        f"block {i + 1}: a {block.kernel_size}x{block.kernel_size} kernel is "
                        f"larger than the {size}x{size} feature map it would see; use a smaller "
                        "kernel, 'same' padding, or fewer blocks."
                    )
                    return
                if self.padding == "valid":
                    size = size - block.kernel_size + 1
            if block.pool:
                if size < 2:
                    errs[f"conv_blocks[{i}].pool"] = (
                        f"block {i + 1}: cannot pool a {size}x{size} feature map; turn pooling "
                        "off for this block or use fewer blocks."
                    )
                    return
                size //= 2

    def validate(self) -> ModelConfig:
        """Return self when valid, else raise ConfigError listing every problem."""
        errs = self.errors()
        if errs:
            raise ConfigError(errs)
        return self

    # ----- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (conv blocks as a list of dicts)."""
        d = dataclasses.asdict(self)
        d["conv_blocks"] = [dataclasses.asdict(b) for b in self.conv_blocks]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Inverse of to_dict; unknown keys are ignored so old runs still load."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        if "conv_blocks" in kwargs:
            kwargs["conv_blocks"] = tuple(
                ConvBlock(**b) if isinstance(b, dict) else ConvBlock(*b)
                for b in kwargs["conv_blocks"]
            )
        return cls(**kwargs)

    def to_json(self) -> str:
        """The configuration as pretty JSON."""
        return json.dumps(self.to_dict(), indent=2)

    def to_query(self) -> dict[str, str]:
        """Flat string parameters for a page URL (st.query_params)."""
        q: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "conv_blocks":
                q["blocks"] = "_".join(_block_token(b) for b in value)
            elif value is None:
                continue
            elif isinstance(value, bool):
                q[f.name] = "1" if value else "0"
            else:
                q[f.name] = str(value)
        return q

    @classmethod
    def from_query(cls, params: dict[str, str], base: ModelConfig | None = None) -> ModelConfig:
        """Read a config from URL parameters; missing or unreadable ones keep base's values."""
        base = base or cls()
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "conv_blocks":
                if "blocks" in params:
                    try:
                        blocks = tuple(
                            _parse_block(t) for t in str(params["blocks"]).split("_") if t
                        )
                    except ValueError:
                        blocks = ()
                    if blocks:  # an empty "blocks=" is as unreadable as a malformed one
                        kwargs["conv_blocks"] = blocks
                continue
            if f.name not in params:
                continue
            raw = str(params[f.name])
            current = getattr(base, f.name)
            try:
                if isinstance(current, bool):
                    kwargs[f.name] = raw in ("1", "true", "True")
                elif f.name == "train_samples" or isinstance(current, int):
                    kwargs[f.name] = int(raw)
                elif isinstance(current, float):
                    kwargs[f.name] = float(raw)
                else:
                    kwargs[f.name] = raw
            except ValueError:
                continue
        return dataclasses.replace(base, **kwargs)


def _block_token(b: ConvBlock) -> str:
    return f"{b.filters}-{b.kernel_size}-{b.convs}-{'p' if b.pool else 'n'}-{b.dropout:g}"


def _parse_block(token: str) -> ConvBlock:
    filters, kernel, convs, pool, dropout = token.split("-")
    return ConvBlock(int(filters), int(kernel), int(convs), pool == "p", float(dropout))


class ConfigError(ValueError):
    """A configuration with out-of-range or inconsistent values; `errors` maps field -> message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


# ----- presets ------------------------------------------------------------------------------

PRESETS: dict[str, ModelConfig] = {
    # Exactly the classic tutorial: Conv32-Conv32-Pool-Dropout(.25)-Dense128-Dropout(.5), Adam,
    # batch 32, 10 epochs, no validation hold-out.
    "tutorial": ModelConfig(preset="tutorial"),
    # The least CPU time to >= 99.0% test accuracy that we measured (benchmarks/bench_presets.py).
    "fast": ModelConfig(
        # Batch normalization halves throughput on 2 CPU cores, so the fast recipe skips it and
        # leans on a one-cycle schedule and large batches instead.
        conv_blocks=(ConvBlock(16, 3, 1, True, 0.0), ConvBlock(32, 3, 1, True, 0.1)),
        padding="valid",
        batch_norm=False,
        dense_units=128,
        dense_dropout=0.25,
        optimizer="adam",
        learning_rate=0.01,
        lr_schedule="one_cycle",
        batch_size=256,
        epochs=4,
        preset="fast",
    ),
    # For drawings made by people: augmentation makes position, size and slant matter less.
    "robust": ModelConfig(
        conv_blocks=(ConvBlock(32, 3, 1, True, 0.0), ConvBlock(64, 3, 1, True, 0.0)),
        padding="same",
        batch_norm=True,
        dense_units=128,
        dense_dropout=0.4,
        optimizer="adam",
        learning_rate=0.005,
        lr_schedule="one_cycle",
        batch_size=128,
        epochs=6,
        validation_split=0.1,
        augment=True,
        rotation=12.0,
        zoom=0.12,
        shift=0.1,
        preset="robust",
    ),
}


def preset(name: str) -> ModelConfig:
    """A preset by name ("tutorial", "fast", "robust")."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            {"preset": f"unknown preset {name!r}; use one of {', '.join(PRESETS)}."}
        ) from None


# ----- building ------------------------------------------------------------------------------


def build_model(config: ModelConfig, steps_per_epoch: int | None = None, compile: bool = True):
    """Build (and compile) the network described by config, starting from keras.Input."""
    import keras
    from keras import layers

    config.validate()
    keras.utils.set_random_seed(config.seed)
    inputs = keras.Input(shape=INPUT_SHAPE, name="image")
    x = inputs
    if config.augment:
        # fill_mode="constant" pads with black; the default "reflect" copies ink into the borders.
        x = layers.RandomRotation(
            config.rotation / 360.0, fill_mode="constant", seed=config.seed, name="aug_rotate"
        )(x)
        x = layers.RandomZoom(
            config.zoom, fill_mode="constant", seed=config.seed + 1, name="aug_zoom"
        )(x)
        x = layers.RandomTranslation(
            config.shift,
            config.shift,
            fill_mode="constant",
            seed=config.seed + 2,
            name="aug_shift",
        )(x)
    for i, block in enumerate(config.conv_blocks, start=1):
        for j in range(1, block.convs + 1):
            x = layers.Conv2D(
                block.filters,
                block.kernel_size,
                padding=config.padding,
                activation=None if config.batch_norm else "relu",
                use_bias=not config.batch_norm,
                name=f"conv{i}_{j}",
            )(x)
            if config.batch_norm:
                x = layers.BatchNormalization(name=f"bn{i}_{j}")(x)
                x = layers.Activation("relu", name=f"relu{i}_{j}")(x)
        if block.pool:
            x = layers.MaxPooling2D(pool_size=(2, 2), name=f"pool{i}")(x)
        if block.dropout > 0:
            x = layers.Dropout(block.dropout, name=f"dropout{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    if config.dense_units > 0:
        x = layers.Dense(config.dense_units, activation="relu", name="dense")(x)
        if config.dense_dropout > 0:
            x = layers.Dropout(config.dense_dropout, name="dense_dropout")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=f"digitlab_{config.preset}")
    if compile:
        steps = steps_per_epoch or config.steps_per_epoch()
        model.compile(
            loss="categorical_crossentropy",
            optimizer=make_optimizer(config, steps),
            metrics=["accuracy"],
        )
    return model


def learning_rate_schedule(config: ModelConfig, steps_per_epoch: int):
    """The learning rate as a float or a Keras schedule, from config.lr_schedule."""
    import keras

    total = max(1, steps_per_epoch * config.epochs)
    lr = config.learning_rate
    if config.lr_schedule == "one_cycle":
        # Warm up from lr/25 to lr over the first 25% of steps, then cosine-anneal towards 0.
        warmup = max(1, int(0.25 * total))
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=lr / 25.0,
            decay_steps=max(1, total - warmup),
            alpha=0.002,
            warmup_target=lr,
            warmup_steps=warmup,
        )
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps=total, alpha=0.01)
    if config.lr_schedule == "exponential":
        # Halve the learning rate every two epochs.
        return keras.optimizers.schedules.ExponentialDecay(
            lr, decay_steps=max(1, 2 * steps_per_epoch), decay_rate=0.5
        )
    return lr


def make_optimizer(config: ModelConfig, steps_per_epoch: int):
    """The configured optimizer with its learning rate or schedule."""
    import keras

    lr = learning_rate_schedule(config, steps_per_epoch)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr)
    return keras.optimizers.Adam(learning_rate=lr)


def make_callbacks(config: ModelConfig) -> list:
    """The Keras callbacks the configuration asks for (early stopping, plateau reduction)."""
    import keras

    # terminate_on_nan is handled by core.training.ProgressCallback: Keras's TerminateOnNaN
    # hooks every batch synchronously, which would stop Keras dispatching callbacks asynchronously.
    callbacks = []
    if config.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=config.patience,
                restore_best_weights=True,
            )
        )
    if config.reduce_lr_on_plateau:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss",
                factor=0.5,
                patience=max(1, config.patience // 2),
                min_lr=1e-5,
            )
        )
    return callbacks


@dataclass
class SummaryRow:
    """One layer of a model summary."""

    layer: str
    kind: str
    output_shape: str
    params: int


@dataclass
class ModelSummary:
    """Rows of a model summary and its totals."""

    rows: list[SummaryRow] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0


def summarize(model) -> ModelSummary:
    """Layer, output shape and parameter count of every layer, for the UI."""
    rows = []
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        shape = tuple(shape.shape) if shape is not None else ()
        rows.append(
            SummaryRow(
                layer=layer.name,
                kind=type(layer).__name__,
                output_shape=" × ".join(str(s) for s in shape[1:]),
                params=int(layer.count_params()),
            )
        )
    trainable = sum(int(math.prod(w.shape)) for w in model.trainable_weights)
    return ModelSummary(rows, int(model.count_params()), trainable)


def flops_per_image(config: ModelConfig) -> int:
    """Multiply-accumulates of one forward pass, counted from the architecture (no TensorFlow)."""
    size = INPUT_SHAPE[0]
    channels = INPUT_SHAPE[2]
    macs = 0
    for block in config.conv_blocks:
        for _ in range(block.convs):
            if config.padding == "valid":
                size = size - block.kernel_size + 1
            macs += size * size * block.kernel_size**2 * channels * block.filters
            channels = block.filters
        if block.pool:
            size //= 2
    flat = size * size * channels
    if config.dense_units:
        macs += flat * config.dense_units + config.dense_units * NUM_CLASSES
    else:
        macs += flat * NUM_CLASSES
    return int(macs)


# Training multiply-accumulates per second on a 2-core machine, fitted on the tutorial preset
# (2,700 images/s, 3x the forward cost per training image); see benchmarks/bench_engine.py.
TRAIN_MACS_PER_SECOND = 5.0e10
OVERHEAD_SECONDS_PER_STEP = 0.0015


def estimate_training_seconds(config: ModelConfig, available: int = TRAIN_SIZE) -> float:
    """A rough training-time estimate on this kind of machine (2 cores), before training."""
    n = config.samples(available)
    n_train = n - int(round(n * config.validation_split))
    per_epoch = 3 * flops_per_image(config) * n_train / TRAIN_MACS_PER_SECOND
    per_epoch += config.steps_per_epoch(available) * OVERHEAD_SECONDS_PER_STEP
    if config.batch_norm:
        per_epoch *= 2.0  # measured: batch normalization halves throughput on 2 cores
    if config.augment:
        per_epoch *= 1.3
    val = n - n_train
    per_epoch += flops_per_image(config) * val / TRAIN_MACS_PER_SECOND
    return per_epoch * config.epochs
