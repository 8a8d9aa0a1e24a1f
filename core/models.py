"""Model configuration (validated), presets, and the factory that builds and compiles the network.

One `ModelConfig` is what the Train form fills, what a job trains, what a run saves and what the
page URL encodes.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from core.data import INPUT_SHAPE, NUM_CLASSES, TRAIN_SIZE

if TYPE_CHECKING:
    import keras

OPTIMIZERS = ("adam", "sgd", "rmsprop")
SCHEDULES = ("constant", "one_cycle", "cosine", "exponential")
PADDINGS = ("valid", "same")
MAX_BLOCKS = 4
SECTIONS = ("network", "block", "training", "augmentation", "callbacks", "data")
"""Where a knob sits in the Train form, in order."""


@dataclass(frozen=True)
class Knob:
    """Everything about one configuration field except its value: how the form shows it, what
    validation allows, how the runs table and the hyperparameter chart show it.

    Declared once, on the dataclass field (`knob(...)`); the form, `errors()`, the URL codec,
    the runs table and the hyperparameter chart are derived from it.
    """

    label: str
    help: str
    widget: str
    """number, slider, select, radio, toggle or checkbox."""
    section: str
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    fmt: str | None = None
    """printf-style format of a number widget and its runs-table column."""
    column: str | None = None
    """Its column in the runs table; None keeps it out of the table."""
    parallel: bool = False
    """One axis of the hyperparameter chart."""
    needs: str | None = None
    """A boolean field that must be on for this one to matter (rotation needs augment)."""


def knob(default: Any, label: str, help: str, widget: str, section: str, **kw: Any) -> Any:
    """A dataclass field carrying its Knob."""
    return field(default=default, metadata={"knob": Knob(label, help, widget, section, **kw)})


@dataclass(frozen=True)
class Spec:
    """A knob with the field it belongs to: name, default and the kind of value it holds."""

    name: str
    knob: Knob
    default: Any
    kind: type

    @property
    def label(self) -> str:
        """The form's label."""
        return self.knob.label

    def problem(self, value: Any, what: str | None = None) -> str | None:
        """Why value cannot be this field's (naming the field and what is allowed), else None."""
        what = what or self.name
        k = self.knob
        if self.kind is bool:
            return None if isinstance(value, bool) else f"{what} must be on or off (got {value!r})."
        if self.kind is str:
            if value in k.choices:
                return None
            return f"{what} must be one of {', '.join(k.choices)} (got {value!r})."
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(value, float) and not math.isfinite(value):
            is_number = False
        if self.kind is int and is_number and value != int(value):
            is_number = False
        if not is_number:
            noun = "a whole number" if self.kind is int else "a number"
            return f"{what} must be {noun} between {k.lo:g} and {k.hi:g} (got {value!r})."
        if not k.lo <= value <= k.hi:
            # An integer too large for a float (a link can hold one) is shown by its size.
            shown = f"{value:g}" if abs(value) < 1e300 else f"a {len(str(abs(value)))}-digit number"
            return f"{what} must be between {k.lo:g} and {k.hi:g} (got {shown})."
        return None


def specs(cls: type) -> tuple[Spec, ...]:
    """The knobs of a configuration dataclass, in declaration order."""
    out = []
    for f in dataclasses.fields(cls):
        if "knob" in f.metadata:
            kind = type(f.default) if f.default is not None else int
            out.append(Spec(f.name, f.metadata["knob"], f.default, kind))
    return tuple(out)


@dataclass(frozen=True)
class ConvBlock:
    """Convolutions of one width, then optional 2x2 max pooling and dropout."""

    filters: int = knob(
        32, "Filters", "How many patterns this block learns to detect.", "number", "block",
        lo=1, hi=256,
    )  # fmt: skip
    kernel_size: int = knob(
        3, "Kernel", "Size of each filter, in pixels (3 = 3×3).", "number", "block", lo=1, hi=9
    )
    convs: int = knob(
        1, "Convs", "Convolution layers in this block (the tutorial has 2).", "number", "block",
        lo=1, hi=3,
    )  # fmt: skip
    pool: bool = knob(True, "Pool", "2×2 max pooling: halve the map's size.", "checkbox", "block")
    dropout: float = knob(
        0.0, "Dropout", "Share of activations dropped while training, against overfitting.",
        "slider", "block", lo=0.0, hi=0.9, step=0.05,
    )  # fmt: skip


@dataclass(frozen=True)
class ModelConfig:
    """Every knob of the network and its training."""

    # Architecture
    conv_blocks: tuple[ConvBlock, ...] = (ConvBlock(32, 3, 2, True, 0.25),)
    padding: str = knob(
        "valid", "Padding", "valid shrinks each map by kernel−1 pixels; same keeps its size.",
        "radio", "network", choices=PADDINGS, column="padding",
    )  # fmt: skip
    batch_norm: bool = knob(
        False, "Batch norm",
        "Normalise each conv layer's outputs: trains in fewer epochs, costs CPU.",
        "toggle", "network", column="batch_norm", parallel=True,
    )  # fmt: skip
    dense_units: int = knob(
        128, "Dense units", "Hidden fully connected layer before the output (0 = none).",
        "number", "network", lo=0, hi=1024, step=16, column="dense", parallel=True,
    )  # fmt: skip
    dense_dropout: float = knob(
        0.5, "Dense dropout", "Dropout before the 10-way softmax output.",
        "slider", "network", lo=0.0, hi=0.9, step=0.05,
    )  # fmt: skip
    first_stride: int = knob(
        1, "First stride",
        "The first convolution steps this many pixels: 2 gives a map half the size for a quarter "
        "of its work, like pooling straight away.",
        "number", "network", lo=1, hi=2,
    )  # fmt: skip
    # Training
    optimizer: str = knob(
        "adam", "Optimizer", "Adam adapts each weight's step; SGD uses momentum 0.9.",
        "select", "training", choices=OPTIMIZERS, column="optimizer", parallel=True,
    )  # fmt: skip
    learning_rate: float = knob(
        0.001, "Learning rate", "Size of each update step (the peak rate for schedules).",
        "number", "training", lo=1e-5, hi=1.0, step=0.0005, fmt="%.5f", column="lr",
        parallel=True,
    )  # fmt: skip
    lr_schedule: str = knob(
        "constant", "Schedule", "one_cycle warms up then anneals; cosine and exponential decay.",
        "select", "training", choices=SCHEDULES, column="schedule",
    )  # fmt: skip
    label_smoothing: float = knob(
        0.0, "Label smoothing",
        "Train towards 90% sure instead of 100% (at 0.1): fewer overconfident weights, often "
        "better accuracy in few epochs.",
        "slider", "training", lo=0.0, hi=0.5, step=0.05,
    )  # fmt: skip
    batch_size: int = knob(
        32, "Batch size", "Images per weight update.", "number", "training", lo=1, hi=4096,
        column="batch_size", parallel=True,
    )  # fmt: skip
    epochs: int = knob(
        10, "Epochs", "Passes over the training data.", "number", "training", lo=1, hi=100
    )
    seed: int = knob(
        0, "Seed", "Same seed, same starting weights and shuffling.", "number", "training",
        lo=0, hi=2**31 - 1,
    )  # fmt: skip
    validation_split: float = knob(
        0.0, "Validation split", "Share of the training data held out to watch for overfitting.",
        "slider", "training", lo=0.0, hi=0.5, step=0.05,
    )  # fmt: skip
    train_samples: int | None = knob(
        None, "Training samples", "The first N digits of the training set.", "number", "data",
        lo=100, hi=TRAIN_SIZE, step=1000,
    )  # fmt: skip
    # Augmentation (Keras preprocessing layers, active only while training)
    augment: bool = knob(
        False, "Augment (random rotation, zoom, shift)",
        "Shows the network shifted, turned and resized digits, so it copes with real "
        "handwriting.",
        "toggle", "augmentation", column="augment", parallel=True,
    )  # fmt: skip
    rotation: float = knob(
        10.0, "Rotation (°)", "Largest random turn, in degrees, either way.", "slider",
        "augmentation", lo=0.0, hi=45.0, step=0.5, needs="augment",
    )  # fmt: skip
    zoom: float = knob(
        0.1, "Zoom", "Largest random zoom in or out, as a share of the size.", "slider",
        "augmentation", lo=0.0, hi=0.5, step=0.01, needs="augment",
    )  # fmt: skip
    shift: float = knob(
        0.1, "Shift", "Largest random move, as a share of the width and height.", "slider",
        "augmentation", lo=0.0, hi=0.3, step=0.01, needs="augment",
    )  # fmt: skip
    # What the network is shown (core.non_digits): inputs as the Draw page prepares them, and
    # made-up non-digits it should answer with equal probabilities.
    prepared_share: float = knob(
        0.0, "Digits prepared like drawings",
        "Share of training digits shown, each time, as the Draw page prepares a drawing (one "
        "stroke width, 20-pixel box, centre of mass) instead of as MNIST has them, so training "
        "digits look like drawn ones.",
        "slider", "augmentation", lo=0.0, hi=1.0, step=0.05, column="prepared",
    )  # fmt: skip
    not_digits: float = knob(
        0.0, "Made-up non-digits",
        "Extra training examples that are no digit (letters, scrawls and shapes drawn by hand, "
        "two digits side by side, overlaid, turned), as a share of the training digits; the "
        "network learns to answer them with equal probabilities, so a letter or a scribble gets "
        "a low confidence.",
        "slider", "augmentation", lo=0.0, hi=1.0, step=0.05, column="not_digits",
    )  # fmt: skip
    styled_digits: float = knob(
        0.0, "Continental 1s and 7s",
        "Extra training 1s and 7s written the way much of Europe writes them (a long lead-in "
        "stroke, sometimes a foot, on the 1; a bar through the 7), made from MNIST's own, as a "
        "share of the training digits: MNIST's American writers seldom wrote them.",
        "slider", "augmentation", lo=0.0, hi=0.5, step=0.01, column="styled",
    )  # fmt: skip
    elastic: float = knob(
        0.0, "Elastic distortion",
        "Share of training examples bent by a smooth random warp each time they are shown (Simard "
        "et al. 2003; no pixel moves more than 3 pixels), so strokes curve and swell the way one "
        "writer's hand differs from another's.",
        "slider", "augmentation", lo=0.0, hi=1.0, step=0.05, column="elastic",
    )  # fmt: skip
    pen_width: float = knob(
        0.0, "Thicker and thinner pens",
        "Share of training examples drawn, each time they are shown, with a thicker pen (half of "
        "them) or a thinner one, since pens and fingers on the Draw page are not MNIST's pen.",
        "slider", "augmentation", lo=0.0, hi=1.0, step=0.05, column="pens",
    )  # fmt: skip
    # Callbacks
    early_stopping: bool = knob(
        False, "Early stopping",
        "Stop when the validation loss stops improving; keep the best weights.",
        "checkbox", "callbacks",
    )  # fmt: skip
    reduce_lr_on_plateau: bool = knob(
        False, "Reduce LR on plateau", "Halve the learning rate when the validation loss stalls.",
        "checkbox", "callbacks",
    )  # fmt: skip
    patience: int = knob(
        3, "Patience", "Epochs without improvement before acting.", "number", "callbacks",
        lo=1, hi=20,
    )  # fmt: skip
    terminate_on_nan: bool = knob(
        True, "Stop on NaN loss", "End the job with a clear message when the loss diverges.",
        "checkbox", "callbacks",
    )  # fmt: skip
    checkpoint: bool = knob(
        True, "Checkpoint every epoch",
        "Save the model after each epoch, so a server restart or a lost worker can resume there.",
        "checkbox", "callbacks",
    )  # fmt: skip
    preset: str = "custom"

    # ----- derived facts -------------------------------------------------------------------
    def samples(self, available: int = TRAIN_SIZE) -> int:
        """How many training samples are used (before the validation hold-out)."""
        return min(self.train_samples or available, available)

    def split_sizes(self, available: int = TRAIN_SIZE, extra: int = 0) -> tuple[int, int]:
        """(training, validation) examples: the samples plus `extra` labelled drawings, less the
        validation hold-out (the drawings always train), plus the made-up non-digits."""
        n = self.samples(available)
        n_val = int(round(n * self.validation_split))
        digits = n - n_val
        return digits + extra + self.not_digit_count(digits) + self.styled_count(digits), n_val

    def not_digit_count(self, digits: int) -> int:
        """How many made-up non-digits join `digits` training digits."""
        return int(round(digits * self.not_digits))

    def styled_count(self, digits: int) -> int:
        """How many restyled 1s and 7s (core.strokes.restyle) join `digits` training digits."""
        return int(round(digits * self.styled_digits))

    def steps_per_epoch(self, available: int = TRAIN_SIZE, extra: int = 0) -> int:
        """Batches per epoch for the training part of the chosen samples."""
        return max(1, math.ceil(self.split_sizes(available, extra)[0] / self.batch_size))

    # ----- validation ----------------------------------------------------------------------
    def errors(self, available: int = TRAIN_SIZE) -> dict[str, str]:
        """Field name -> what is wrong and what to use instead; empty when valid.

        `available` is how many training digits there are (the offline sample has fewer).
        """
        errs: dict[str, str] = {}
        blocks = self.conv_blocks
        if not isinstance(blocks, tuple) or not all(isinstance(b, ConvBlock) for b in blocks):
            errs["conv_blocks"] = (
                f"conv_blocks {blocks!r} is not readable: write each block as "
                "filters-kernel-convs-p|n-dropout and join blocks with _ (e.g. 32-3-2-p-0.25)."
            )
            blocks = ()
        elif not 1 <= len(blocks) <= MAX_BLOCKS:
            errs["conv_blocks"] = (
                f"conv_blocks must hold 1 to {MAX_BLOCKS} blocks (got {len(blocks)})."
            )
        for i, block in enumerate(blocks):
            for spec in BLOCK_SPECS:
                problem = spec.problem(getattr(block, spec.name), f"block {i + 1} {spec.name}")
                if problem:
                    errs[f"conv_blocks[{i}].{spec.name}"] = problem
        for spec in CONFIG_SPECS:
            value = getattr(self, spec.name)
            if spec.name == "train_samples" and value is None:
                continue
            if spec.knob.needs and not getattr(self, spec.knob.needs):
                continue
            problem = spec.problem(value)
            if spec.name == "train_samples" and not problem and value > available:
                problem = f"train_samples must be between 100 and {available} (got {value})."
            if problem:
                errs[spec.name] = problem
        if not errs:
            self._check_feature_maps(errs)
        if "lr_schedule" not in errs and self.reduce_lr_on_plateau:
            if self.lr_schedule != "constant":
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
        if (
            not {"batch_size", "train_samples", "validation_split", "not_digits", "styled_digits"}
            & errs.keys()
        ):
            n_train, _ = self.split_sizes(available)
            if self.batch_size > n_train:
                errs["batch_size"] = (
                    f"batch_size {self.batch_size} is larger than the {n_train:,} training "
                    "samples; lower it or use more samples."
                )
        return errs

    def _check_feature_maps(self, errs: dict[str, str]) -> None:
        for layer in feature_map_walk(self):
            if layer.kind == "conv" and layer.kernel > layer.size_in:
                errs[f"conv_blocks[{layer.block}].kernel_size"] = (
                    f"block {layer.block + 1}: a {layer.kernel}x{layer.kernel} kernel is larger "
                    f"than the {layer.size_in}x{layer.size_in} feature map it would see; use a "
                    "smaller kernel, 'same' padding, or fewer blocks."
                )
                return
            if layer.kind == "pool" and layer.size_in < 2:
                errs[f"conv_blocks[{layer.block}].pool"] = (
                    f"block {layer.block + 1}: cannot pool a {layer.size_in}x{layer.size_in} "
                    "feature map; turn pooling off for this block or use fewer blocks."
                )
                return

    def validate(self, available: int = TRAIN_SIZE) -> ModelConfig:
        """Return self when valid, else raise ConfigError listing every problem."""
        errs = self.errors(available)
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

    def to_query(self) -> dict[str, str]:
        """Flat string parameters for a page URL (st.query_params)."""
        q: dict[str, str] = {"preset": str(self.preset)}
        blocks = self.conv_blocks
        q["blocks"] = (
            "_".join(_block_token(b) for b in blocks)
            if isinstance(blocks, tuple) and all(isinstance(b, ConvBlock) for b in blocks)
            else str(blocks)
        )
        for spec in CONFIG_SPECS:
            value = getattr(self, spec.name)
            if value is None:
                continue
            q[spec.name] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        return q

    @classmethod
    def from_query(cls, params: dict[str, str], base: ModelConfig | None = None) -> ModelConfig:
        """Read a config from URL parameters; unreadable ones keep base's values (see read_query
        for the messages). Readable values out of range are kept, for errors() to name."""
        return read_query(params, base)[0]


@dataclass(frozen=True)
class MapLayer:
    """One layer that changes the feature map: a convolution or a 2x2 pooling."""

    kind: str
    """conv or pool."""
    block: int
    """0-based index of its conv block."""
    size_in: int
    size_out: int
    channels_in: int
    channels_out: int
    kernel: int = 0


def feature_map_walk(config: ModelConfig) -> list[MapLayer]:
    """The feature map's size and depth through every convolution and pooling of config, counted
    from the architecture alone (no TensorFlow). Stops where a layer cannot apply."""
    size, channels = INPUT_SHAPE[0], INPUT_SHAPE[2]
    out: list[MapLayer] = []
    stride = config.first_stride
    for i, block in enumerate(config.conv_blocks):
        for _ in range(block.convs):
            shrink = block.kernel_size - 1 if config.padding == "valid" else 0
            size_out = (size - shrink - 1) // stride + 1 if size > shrink else 0
            layer = MapLayer("conv", i, size, size_out, channels, block.filters, block.kernel_size)
            stride = 1
            out.append(layer)
            if block.kernel_size > size:
                return out
            size, channels = layer.size_out, block.filters
        if block.pool:
            out.append(MapLayer("pool", i, size, size // 2, channels, channels))
            if size < 2:
                return out
            size //= 2
    return out


TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def read_query(
    params: dict[str, str], base: ModelConfig | None = None
) -> tuple[ModelConfig, dict[str, str]]:
    """A config from URL parameters, and field -> message for each value that could not be read
    (those keep base's value). Readable values are kept as they are, even out of range."""
    base = base or ModelConfig()
    kwargs: dict[str, Any] = {}
    problems: dict[str, str] = {}
    if "blocks" in params:
        raw = str(params["blocks"])
        try:
            blocks = tuple(_parse_block(t) for t in raw.split("_") if t)
        except ValueError:
            blocks = ()
        if blocks:
            kwargs["conv_blocks"] = blocks
        else:
            problems["conv_blocks"] = (
                f"blocks={raw!r} in the link is not readable: write each block as "
                "filters-kernel-convs-p|n-dropout and join blocks with _ (e.g. 32-3-2-p-0.25)."
            )
    if "preset" in params:
        kwargs["preset"] = str(params["preset"])
    for spec in CONFIG_SPECS:
        if spec.name not in params:
            continue
        raw = str(params[spec.name]).strip()
        try:
            kwargs[spec.name] = _parse(spec, raw)
        except ValueError:
            kind = {bool: "1 or 0", int: "a whole number", float: "a number"}.get(spec.kind, "")
            allowed = ", ".join(spec.knob.choices) if spec.kind is str else kind
            problems[spec.name] = f"{spec.name}={raw!r} in the link is not readable: use {allowed}."
    return dataclasses.replace(base, **kwargs), problems


def _parse(spec: Spec, raw: str) -> Any:
    if spec.kind is bool:
        if raw.lower() in TRUE_WORDS:
            return True
        if raw.lower() in FALSE_WORDS:
            return False
        raise ValueError(raw)
    if spec.kind is int:
        return int(raw)
    if spec.kind is float:
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError(raw)
        return value
    if raw not in spec.knob.choices:
        raise ValueError(raw)
    return raw


def _block_token(b: ConvBlock) -> str:
    return f"{b.filters}-{b.kernel_size}-{b.convs}-{'p' if b.pool else 'n'}-{_plain(b.dropout)}"


def _plain(x: float) -> str:
    """x without an exponent (its '-' would split a block token), read back exactly."""
    short = f"{x:g}"
    if "e" not in short and float(short) == x:
        return short
    return format(Decimal(repr(float(x))), "f")


def _parse_block(token: str) -> ConvBlock:
    filters, kernel, convs, pool, dropout = token.split("-")
    if pool not in ("p", "n") or not math.isfinite(float(dropout)):
        raise ValueError(token)
    return ConvBlock(int(filters), int(kernel), int(convs), pool == "p", float(dropout))


BLOCK_SPECS = specs(ConvBlock)
CONFIG_SPECS = specs(ModelConfig)
SPECS = {spec.name: spec for spec in CONFIG_SPECS}
"""Every configuration field's knob, by field name (conv blocks' fields are in BLOCK_SPECS)."""


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
    # The least CPU time to >= 99.0% test accuracy on every seed that we measured: the search is
    # in benchmarks/README.md, the figures come from benchmarks/bench_presets.py.
    "fast": ModelConfig(
        # A 5x5 first convolution with stride 2 sees as much as 3x3 + pooling for a quarter of the
        # work; batch normalization would double the CPU time, dropout only slows two epochs.
        conv_blocks=(ConvBlock(16, 5, 1, False, 0.0), ConvBlock(32, 3, 1, True, 0.0)),
        padding="valid",
        first_stride=2,
        batch_norm=False,
        dense_units=128,
        dense_dropout=0.0,
        optimizer="adam",
        learning_rate=0.03,
        lr_schedule="one_cycle",
        label_smoothing=0.1,
        batch_size=256,
        epochs=2,
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


SEED_MODULUS = 2**31 - 1


class _Seeds:
    """Distinct seeds for every random part of one model, from the config's seed alone.

    Each layer gets its own seeded initializer or generator, so two jobs with the same seed get
    the same weights and draws even when they are built at the same time in two threads
    (`keras.utils.set_random_seed` would reset process-wide state instead).
    """

    def __init__(self, seed: int):
        self._next = int(seed)

    def __call__(self) -> int:
        self._next = (self._next + 1) % SEED_MODULUS
        return self._next


def augmentation_layers(config: ModelConfig, seed: int | None = None) -> list:
    """The random rotation, zoom and shift layers of config (those above zero), active only while
    training."""
    from keras import layers

    seeds = _Seeds(config.seed if seed is None else seed)
    # fill_mode="constant" pads with black; the default "reflect" copies ink into the borders.
    out = []
    if config.rotation > 0:
        out.append(
            layers.RandomRotation(
                config.rotation / 360.0,
                fill_mode="constant",
                seed=seeds(),
                name="aug_rotate",
            )
        )
    if config.zoom > 0:
        out.append(
            layers.RandomZoom(
                config.zoom,
                fill_mode="constant",
                seed=seeds(),
                name="aug_zoom",
            )
        )
    if config.shift > 0:
        out.append(
            layers.RandomTranslation(
                config.shift,
                config.shift,
                fill_mode="constant",
                seed=seeds(),
                name="aug_shift",
            )
        )
    return out


def build_model(
    config: ModelConfig, steps_per_epoch: int | None = None, compile: bool = True
) -> keras.Model:
    """Build (and compile) the network described by config, starting from keras.Input."""
    import keras
    from keras import layers

    config.validate()
    seeds = _Seeds(config.seed)

    def glorot() -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(seed=seeds())

    inputs = keras.Input(shape=INPUT_SHAPE, name="image")
    x = inputs
    if config.augment:
        for layer in augmentation_layers(config, seeds()):
            x = layer(x)
    for i, block in enumerate(config.conv_blocks, start=1):
        for j in range(1, block.convs + 1):
            x = layers.Conv2D(
                block.filters,
                block.kernel_size,
                strides=config.first_stride if (i, j) == (1, 1) else 1,
                padding=config.padding,
                activation=None if config.batch_norm else "relu",
                use_bias=not config.batch_norm,
                kernel_initializer=glorot(),
                name=f"conv{i}_{j}",
            )(x)
            if config.batch_norm:
                x = layers.BatchNormalization(name=f"bn{i}_{j}")(x)
                x = layers.Activation("relu", name=f"relu{i}_{j}")(x)
        if block.pool:
            x = layers.MaxPooling2D(pool_size=(2, 2), name=f"pool{i}")(x)
        if block.dropout > 0:
            x = layers.Dropout(block.dropout, seed=seeds(), name=f"dropout{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    if config.dense_units > 0:
        x = layers.Dense(
            config.dense_units,
            activation="relu",
            kernel_initializer=glorot(),
            name="dense",
        )(x)
        if config.dense_dropout > 0:
            x = layers.Dropout(config.dense_dropout, seed=seeds(), name="dense_dropout")(x)
    outputs = layers.Dense(
        NUM_CLASSES,
        activation="softmax",
        kernel_initializer=glorot(),
        name="predictions",
    )(x)
    model = keras.Model(inputs, outputs, name=f"digitlab_{config.preset}")
    if compile:
        steps = steps_per_epoch or config.steps_per_epoch()
        model.compile(
            loss=make_loss(config),
            optimizer=make_optimizer(config, steps),
            metrics=["accuracy"],
        )
    return model


def make_loss(config: ModelConfig) -> keras.losses.Loss | str:
    """Categorical cross-entropy, with the configured label smoothing when there is any."""
    import keras

    if config.label_smoothing > 0:
        return keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    return "categorical_crossentropy"


def learning_rate_schedule(
    config: ModelConfig, steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
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


def make_optimizer(config: ModelConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
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


def summarize(model: keras.Model) -> ModelSummary:
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
    walk = feature_map_walk(config)
    macs = sum(
        layer.size_out**2 * layer.kernel**2 * layer.channels_in * layer.channels_out
        for layer in walk
        if layer.kind == "conv"
    )
    last = walk[-1] if walk else None
    flat = last.size_out**2 * last.channels_out if last else math.prod(INPUT_SHAPE)
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
    n_train, n_val = config.split_sizes(available)
    per_epoch = 3 * flops_per_image(config) * n_train / TRAIN_MACS_PER_SECOND
    per_epoch += config.steps_per_epoch(available) * OVERHEAD_SECONDS_PER_STEP
    if config.batch_norm:
        per_epoch *= 2.0  # measured: batch normalization halves throughput on 2 cores
    if config.augment:
        per_epoch *= 1.3
    per_epoch += flops_per_image(config) * n_val / TRAIN_MACS_PER_SECOND
    return per_epoch * config.epochs


@dataclass(frozen=True)
class Timing:
    """How fast one configuration trains on this machine, measured on a few batches."""

    first_step: float
    """Seconds of the first step: TensorFlow traces and compiles the training step there."""
    step: float
    """Seconds of each later step."""
    first_eval: float = 0.0
    """Seconds of the first validation batch: the validation step is traced on its own."""
    epoch_end: float = 0.0
    """Seconds of the network's guesses for the probe digits, shown after every epoch."""


def time_training_steps(
    config: ModelConfig, steps: int = 4, clock: Callable[[], float] | None = None
) -> Timing:
    """Time a few training steps of config's network on blank digits of its batch size, then
    its first validation batch and one guess for the dozen probe digits."""
    import numpy as np

    clock = clock or time.perf_counter
    model = build_model(dataclasses.replace(config, epochs=1), steps_per_epoch=10)
    x = np.zeros((config.batch_size, *INPUT_SHAPE), np.float32)
    y = np.zeros((config.batch_size, NUM_CLASSES), np.float32)
    y[:, 0] = 1.0
    start = clock()
    model.train_on_batch(x, y)
    first = clock() - start
    start = clock()
    for _ in range(steps):
        model.train_on_batch(x, y)
    step = (clock() - start) / steps
    start = clock()
    model.test_on_batch(x, y)
    first_eval = clock() - start
    probes = x[:12]
    model(probes, training=False)  # the first eager call builds what later ones reuse
    start = clock()
    model(probes, training=False)
    return Timing(first_step=first, step=step, first_eval=first_eval, epoch_end=clock() - start)


def pace_key(config: ModelConfig) -> ModelConfig:
    """config reduced to what changes the pace of one training step (the network, its batch
    size, augmentation, the optimizer): one timing serves every epochs, data size, seed and
    callback setting."""
    return dataclasses.replace(
        config,
        epochs=1,
        train_samples=None,
        validation_split=0.0,
        seed=0,
        preset="",
        early_stopping=False,
        reduce_lr_on_plateau=False,
        checkpoint=False,
    )


def estimate_from_timing(config: ModelConfig, timing: Timing, available: int = TRAIN_SIZE) -> float:
    """Seconds of training config will take, from a measured Timing: every step at the timed
    pace, the first one slower, the validation pass of each epoch (a forward pass is about a
    third of a training step; its first batch traces the validation step) and the probe
    digits' guesses after each epoch."""
    steps = config.steps_per_epoch(available) * config.epochs
    _, n_val = config.split_sizes(available)
    validation = timing.step / 3 * math.ceil(n_val / config.batch_size) * config.epochs
    if n_val:
        validation += timing.first_eval
    return (
        timing.first_step
        + max(0, steps - 1) * timing.step
        + validation
        + timing.epoch_end * config.epochs
    )
