"""Property-based tests (hypothesis) over arbitrary values: the URL codec, the run-folder reader,
image preparation. Each property says what must hold for every input, not for a few examples."""

import io
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw

from core import drawing, train_form
from core.models import (
    BLOCK_SPECS,
    CONFIG_SPECS,
    MAX_BLOCKS,
    PRESETS,
    SPECS,
    ConvBlock,
    ModelConfig,
    read_query,
)
from core.runs import RUN_FILES, RunInfo, RunStore, UnreadableRun
from core.train_form import from_state, override_errors, read_link

PROPERTY = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])

# ----- the URL codec -----------------------------------------------------------------------

FIELDS = [spec.name for spec in CONFIG_SPECS]
TRICKY = ["", " ", "1", "0", "-1", "true", "off", "yes", "nan", "inf", "-inf", "1e400", "1e-400",
          "1_0", " 7 ", "٣", "0x10", "1.5", "3.0", "1e3", "32-3-2-p-0.25", "32-3-2-p-0.25_64-3-1-n-0",
          "0-0-0-p-nan", "1-1-1-x-0", "8-3-1-p-2_8-3-1-p-0_8-3-1-n-0_8-3-1-n-0_8-3-1-n-0", "__",
          "adam", "same", "one_cycle", "tutorial", "fast", "custom", "1" + "0" * 400]  # fmt: skip
raw_values = st.one_of(
    st.sampled_from(TRICKY),
    st.text(max_size=12),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.lists(
        st.tuples(
            st.integers(-5, 300),
            st.integers(-1, 12),
            st.integers(-1, 4),
            st.sampled_from("pnx"),
            st.floats(-1, 2),
        ),
        min_size=0,
        max_size=6,
    ).map(lambda bs: "_".join(f"{f}-{k}-{c}-{p}-{d}" for f, k, c, p, d in bs)),
)
params_strategy = st.dictionaries(
    st.one_of(st.sampled_from(["blocks", "preset", *FIELDS]), st.text(max_size=6)),
    raw_values,
    max_size=14,
)


def typed(spec, value) -> bool:
    """Whether value is of the kind the field holds (range aside)."""
    if spec.kind is bool:
        return isinstance(value, bool)
    if spec.kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if spec.kind is float:
        return isinstance(value, float) and math.isfinite(value)
    return value in spec.knob.choices


@PROPERTY
@given(params_strategy)
def test_read_query_never_raises_and_names_every_unreadable_value(params):
    base = ModelConfig()
    config, problems = read_query(params, base)
    assert set(problems) <= {"conv_blocks", *FIELDS}
    for name in FIELDS:
        if name not in params:
            assert getattr(config, name) == getattr(base, name)
        elif name in problems:
            # Named with the link's own text, and the field keeps the base's value.
            assert f"{name}={str(params[name]).strip()!r}" in problems[name]
            assert getattr(config, name) == getattr(base, name)
        else:
            assert typed(SPECS[name], getattr(config, name)), (name, getattr(config, name))
    if "blocks" in params and "conv_blocks" not in problems:
        assert config.conv_blocks and all(isinstance(b, ConvBlock) for b in config.conv_blocks)
        for block in config.conv_blocks:
            assert all(typed(spec, getattr(block, spec.name)) for spec in BLOCK_SPECS)
    elif "blocks" in params:
        assert "in the link is not readable" in problems["conv_blocks"]
    # Whatever the link held, the configuration can say what is wrong with it.
    errors = config.errors()
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in errors.items())


def spec_values(spec):
    k = spec.knob
    if spec.kind is bool:
        return st.booleans()
    if spec.kind is str:
        return st.sampled_from(k.choices)
    if spec.kind is int:
        return st.integers(int(k.lo), int(k.hi))
    return st.floats(k.lo, k.hi, allow_nan=False)


blocks_strategy = st.lists(
    st.builds(ConvBlock, **{spec.name: spec_values(spec) for spec in BLOCK_SPECS}),
    min_size=1,
    max_size=MAX_BLOCKS,
).map(tuple)
configs = st.builds(
    ModelConfig,
    conv_blocks=blocks_strategy,
    train_samples=st.none() | spec_values(SPECS["train_samples"]),
    preset=st.sampled_from([*PRESETS, "custom"]),
    **{spec.name: spec_values(spec) for spec in CONFIG_SPECS if spec.name != "train_samples"},
)


@PROPERTY
@given(configs)
def test_every_configuration_round_trips_through_its_link(config):
    query = config.to_query()
    assert all(isinstance(v, str) for v in query.values())
    again, problems = read_query(query, ModelConfig())
    assert problems == {}
    assert again == config


@PROPERTY
@given(configs)
def test_a_configurations_link_fills_the_form_with_exactly_it(config):
    link = read_link(config.to_query(), available=60_000)
    assert override_errors(link.overrides) == {}
    assert from_state(link.state, link.overrides) == config


@PROPERTY
@given(params_strategy, st.integers(100, 60_000))
def test_read_link_never_raises_never_rewrites_and_explains(params, available):
    link = read_link(params, available)
    base = PRESETS.get(str(params.get("preset", "")), PRESETS["tutorial"])
    expected, problems = read_query(params, base) if params else (base, {})
    # Every unreadable value gets its message, against its field.
    assert override_errors(link.overrides) == problems
    # Every widget holds a value it can show...
    for spec in CONFIG_SPECS:
        if spec.name != "train_samples":
            value = link.state[train_form.key(spec.name)]
            assert spec.problem(value) is None, (spec.name, value)
    for i in range(link.state[train_form.key("blocks")]):
        for spec in BLOCK_SPECS:
            assert spec.problem(link.state[train_form.block_key(i, spec.name)]) is None
    # ...and what the link asked for, readable but out of range, is kept, never rewritten.
    config = from_state(link.state, link.overrides)
    for name in FIELDS:
        if name not in problems:
            assert getattr(config, name) == getattr(expected, name), name
    if "conv_blocks" not in problems:
        assert config.conv_blocks == expected.conv_blocks
    messages = config.errors(available) | override_errors(link.overrides)
    assert all(isinstance(v, str) and v for v in messages.values())


# ----- the run-folder reader ---------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
GOOD = {
    "config.json": ModelConfig().to_dict(),
    "history.json": {"loss": [0.5, 0.4], "accuracy": [0.8, 0.9]},
    "metrics.json": {"test_accuracy": 0.9, "test_loss": 0.3},
    "meta.json": {"status": "finished", "saved_at": 1.0, "owner": "abc"},
}
KNOWN_KEYS = {
    "config.json": [*FIELDS, "conv_blocks", "preset"],
    "history.json": ["loss", "accuracy", "epoch"],
    "metrics.json": ["test_accuracy", "test_loss"],
    "meta.json": ["status", "saved_at", "owner", "epochs_completed", "train_seconds", "name"],
}


@st.composite
def run_files(draw):
    """Each file: whole arbitrary JSON, or the good file with some known keys replaced."""
    files = {}
    for file, good in GOOD.items():
        if draw(st.booleans()):
            files[file] = draw(json_values)
        else:
            changes = draw(
                st.dictionaries(st.sampled_from(KNOWN_KEYS[file]), json_values, max_size=3)
            )
            files[file] = {**good, **changes}
    return files


@PROPERTY
@given(run_files(), st.sampled_from([b"PK\x03\x04 model", b"", None]))
def test_the_reader_never_raises_and_every_unreadable_run_has_a_reason(files, model):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "runs" / "r"
        folder.mkdir(parents=True)
        for file, value in files.items():
            (folder / file).write_text(json.dumps(value))
        if model is not None:
            (folder / "model.keras").write_bytes(model)
        runs, bad = RunStore(folder.parent, default_dir=None).list_runs()
        assert len(runs) + len(bad) == 1
        if bad:
            assert isinstance(bad[0], UnreadableRun) and bad[0].name == "r"
            assert bad[0].reason.startswith(("Run 'r' is unreadable: ", "Run 'r' is incomplete: "))
            assert len(bad[0].reason) > len("Run 'r' is unreadable: ")
            return
        info = runs[0]
        assert isinstance(info, RunInfo) and model
        # Everything a page reads from a listed run works and has the documented type.
        assert all(isinstance(v, float) for curve in info.history.values() for v in curve)
        assert all(isinstance(v, float) and math.isfinite(v) for v in info.metrics.values())
        assert info.test_accuracy is None or 0.0 <= info.test_accuracy <= 1.0
        assert isinstance(info.status, str) and isinstance(info.created_at, float)
        assert info.owner is None or isinstance(info.owner, str)
        assert info.row()["name"] == "r" and isinstance(info.cache_key, str)
        assert train_form.parallel_rows([info])[0]["blocks_n"] == len(info.config.conv_blocks)
        assert all(isinstance(v, str) for v in info.config.errors().values())
        json.dumps(info.row())


def test_the_run_files_the_property_writes_are_every_json_file_of_a_run():
    assert set(GOOD) | {"model.keras"} == set(RUN_FILES)


# ----- image preparation -------------------------------------------------------------------

image_dtypes = st.sampled_from(
    [np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64, np.bool_]
)
image_shapes = st.one_of(
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=48),
    st.tuples(st.integers(2, 48), st.integers(2, 48), st.integers(1, 4)),
)


def check_prepared(x) -> None:
    if x is not None:
        assert x.shape == (28, 28) and x.dtype == np.float32
        assert np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0


# Float images are kept finite and below 1e6: ink_intensity turns +-inf, or values near float32's
# largest, into NaN (reported; no canvas or upload can make such an array).
elements = {"allow_infinity": False, "min_value": -1e6, "max_value": 1e6}


@PROPERTY
@given(
    image_dtypes.flatmap(
        lambda dtype: hnp.arrays(
            dtype,
            image_shapes,
            elements=hnp.from_dtype(np.dtype(dtype), **elements)
            if np.dtype(dtype).kind == "f"
            else None,
        )
    )
)
def test_prepare_gives_none_or_a_28x28_input_in_0_1_for_any_image_array(image):
    check_prepared(drawing.prepare(image))
    check_prepared(drawing.naive_resize(image))


@PROPERTY
@given(
    hnp.arrays(
        np.uint8,
        st.one_of(
            hnp.array_shapes(min_dims=0, max_dims=1, max_side=8),
            st.tuples(st.integers(0, 1), st.integers(0, 8)),
            st.tuples(st.integers(0, 8), st.integers(0, 1)),
            st.tuples(st.integers(2, 8), st.integers(2, 8), st.sampled_from([0, 5, 6])),
            hnp.array_shapes(min_dims=4, max_dims=4, max_side=3),
        ),
    )
)
def test_prepare_refuses_what_is_not_an_image_with_a_value_error(image):
    # ImageError is a ValueError: nothing but a ValueError may come out.
    with pytest.raises(ValueError):
        drawing.prepare(image)


def _samples() -> list[bytes]:
    img = Image.new("L", (60, 40), 255)
    ImageDraw.Draw(img).line([(10, 10), (50, 30)], fill=0, width=4)
    out = []
    for mode, fmt in [("L", "PNG"), ("RGBA", "PNG"), ("RGB", "JPEG"), ("P", "GIF"),
                      ("I;16", "PNG"), ("CMYK", "TIFF"), ("LA", "PNG"), ("RGB", "WEBP")]:  # fmt: skip
        buf = io.BytesIO()
        image = (
            Image.fromarray(np.asarray(img).astype(np.uint16) * 257)
            if mode == "I;16"
            else img.convert(mode)
        )
        image.save(buf, format=fmt)
        out.append(buf.getvalue())
    return out


SAMPLES = _samples()


@st.composite
def damaged_files(draw):
    """A real image file with some bytes changed and perhaps cut short, or arbitrary bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=200))
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(0, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@PROPERTY
@given(damaged_files(), st.sampled_from([None, 16, 1024]))
def test_an_upload_is_an_image_array_or_an_image_error(data, max_side):
    try:
        array = drawing.load_image_bytes(data, max_side=max_side)
    except drawing.ImageError as exc:
        assert str(exc)
        return
    assert array.dtype == np.uint8 and array.ndim in (2, 3)
    assert array.ndim == 2 or array.shape[2] in (3, 4)
    assert min(array.shape[:2]) >= 1 and (max_side is None or max(array.shape[:2]) <= max_side)
    assume(min(array.shape[:2]) >= 2)
    check_prepared(drawing.prepare(array))
