"""The Train page's form as plain data, derived from the knobs in core.models: widget keys <->
ModelConfig, what a shared link fills in, the runs table and the hyperparameter chart.

No Streamlit here: ui.config_form draws the widgets and keeps their values in st.session_state
under the keys made here.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from core.models import (
    BLOCK_SPECS,
    CONFIG_SPECS,
    MAX_BLOCKS,
    PRESETS,
    SPECS,
    ConvBlock,
    ModelConfig,
    build_model,
    read_query,
    summarize,
)

if TYPE_CHECKING:
    from core.engine import Job
    from core.runs import RunInfo
    from core.training import ProgressSnapshot

PREFIX = "train_"
HIDDEN_BLOCK = ConvBlock(64, 3, 1, True, 0.0)
"""What a block that is not shown holds, so that adding a block starts from sensible values."""
DEFAULT_SUBSET = 5000


def key(name: str) -> str:
    """The session-state key of a form field (train_samples is already the page's prefix)."""
    return name if name.startswith(PREFIX) else PREFIX + name


def block_key(index: int, name: str) -> str:
    """The session-state key of one conv block's field."""
    return f"{PREFIX}b{index}_{name}"


def field_key(path: str) -> str:
    """The widget key of a field path as errors() names it ("conv_blocks[1].filters", "seed")."""
    if path.startswith("conv_blocks[") and "]." in path:
        index, name = path[len("conv_blocks[") :].split("].", 1)
        return block_key(int(index), name)
    return key("blocks" if path == "conv_blocks" else path)


def to_state(config: ModelConfig, available: int) -> dict[str, Any]:
    """Every form field's value for config (hidden blocks keep sensible defaults)."""
    state: dict[str, Any] = {key("blocks"): len(config.conv_blocks), key("preset"): config.preset}
    for i in range(MAX_BLOCKS):
        block = config.conv_blocks[i] if i < len(config.conv_blocks) else HIDDEN_BLOCK
        for spec in BLOCK_SPECS:
            state[block_key(i, spec.name)] = getattr(block, spec.name)
    for spec in CONFIG_SPECS:
        if spec.name != "train_samples":
            state[key(spec.name)] = getattr(config, spec.name)
    state[key("subset")] = config.train_samples is not None
    state[key("train_samples")] = config.train_samples or min(DEFAULT_SUBSET, available)
    return state


def from_state(state: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> ModelConfig:
    """The ModelConfig the form describes, with the link's unshowable values laid over it
    (validate it separately: errors() names what is wrong)."""
    n = int(state[key("blocks")])
    blocks = tuple(
        ConvBlock(**{spec.name: state[block_key(i, spec.name)] for spec in BLOCK_SPECS})
        for i in range(n)
    )
    values = {
        spec.name: state[key(spec.name)] for spec in CONFIG_SPECS if spec.name != "train_samples"
    }
    samples = int(state[key("train_samples")]) if state[key("subset")] else None
    config = ModelConfig(
        conv_blocks=blocks,
        train_samples=samples,
        preset=state.get(key("preset"), "custom"),
        **values,
    )
    return with_overrides(config, overrides or {})


def form_keys() -> list[str]:
    """Every session-state key the form owns (to copy them into a plain key that survives)."""
    keys = [key("blocks"), key("preset"), key("subset"), key("train_samples")]
    keys += [block_key(i, spec.name) for i in range(MAX_BLOCKS) for spec in BLOCK_SPECS]
    return keys + [key(spec.name) for spec in CONFIG_SPECS if spec.name != "train_samples"]


# ----- links --------------------------------------------------------------------------------


@dataclass
class Link:
    """What a shared link puts into the form.

    `state` holds every value a widget can show. A value no widget can hold (out of range, not
    one of the choices, unreadable) is never rewritten: it stays in `overrides` (field path ->
    the link's value), is laid over the form's config, and errors() names it against its field
    until the visitor changes that field.
    """

    state: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def read_link(params: Mapping[str, str], available: int) -> Link:
    """The form's state for a page link; a link naming a preset starts from it."""
    name = str(params.get("preset", ""))
    base = PRESETS.get(name, PRESETS["tutorial"])
    notes = []
    if name and name not in PRESETS and name != "custom":
        notes.append(
            f"preset={name!r} in the link is not a preset ({', '.join(PRESETS)}): the tutorial's "
            "values fill the fields the link leaves out."
        )
    config, unreadable = read_query(dict(params), base) if params else (base, {})
    overrides: dict[str, Any] = {
        path: _Unreadable(str(params["blocks" if path == "conv_blocks" else path]), text)
        for path, text in unreadable.items()
    }
    blocks = config.conv_blocks
    if not 1 <= len(blocks) <= MAX_BLOCKS:
        overrides["conv_blocks"] = blocks
        blocks = base.conv_blocks
    shown = []
    for i, block in enumerate(blocks):
        values = {}
        for spec in BLOCK_SPECS:
            value = getattr(block, spec.name)
            if spec.problem(value):
                overrides[f"conv_blocks[{i}].{spec.name}"] = value
                value = getattr(HIDDEN_BLOCK, spec.name)
            values[spec.name] = value
        shown.append(ConvBlock(**values))
    values = {}
    for spec in CONFIG_SPECS:
        value = getattr(config, spec.name)
        if value is None or spec.name in overrides:
            continue
        out_of_range = spec.problem(value) or (spec.name == "train_samples" and value > available)
        if out_of_range:
            overrides[spec.name] = value
            values[spec.name] = getattr(base, spec.name)
    preset = config.preset if config.preset in PRESETS else "custom"
    shown_config = dataclasses.replace(config, conv_blocks=tuple(shown), preset=preset, **values)
    return Link(to_state(shown_config, available), overrides, notes)


@dataclass(frozen=True)
class _Unreadable:
    """A link value that could not be read at all, with the message that says why."""

    raw: str
    message: str

    def __str__(self) -> str:
        return self.raw  # what the address bar keeps


def with_overrides(config: ModelConfig, overrides: Mapping[str, Any]) -> ModelConfig:
    """config with the link's values that no widget can show laid over it."""
    if not overrides:
        return config
    scalars = {k: v for k, v in overrides.items() if k in SPECS}
    blocks = list(config.conv_blocks)
    for path, value in overrides.items():
        if path.startswith("conv_blocks[") and "]." in path:
            index, name = path[len("conv_blocks[") :].split("].", 1)
            if int(index) < len(blocks):
                blocks[int(index)] = dataclasses.replace(blocks[int(index)], **{name: value})
    conv_blocks = overrides.get("conv_blocks", tuple(blocks))
    return dataclasses.replace(config, conv_blocks=conv_blocks, **scalars)


def override_errors(overrides: Mapping[str, Any]) -> dict[str, str]:
    """Messages for the link's unreadable values (errors() names the readable ones)."""
    return {k: v.message for k, v in overrides.items() if isinstance(v, _Unreadable)}


def forget_override(overrides: dict[str, Any], widget: str) -> None:
    """The visitor changed a field: the link's value for it is gone."""
    for path in [p for p in overrides if field_key(p) == widget]:
        del overrides[path]
    if widget == key("blocks"):
        for path in [p for p in overrides if p.startswith("conv_blocks")]:
            del overrides[path]


# ----- what the page shows around the form ---------------------------------------------------


def summary_rows(config: ModelConfig) -> tuple[list[dict[str, Any]], int]:
    """Layer rows (name, type, output shape, parameters) and the total, for a valid config."""
    model = build_model(config, compile=False)
    summary = summarize(model)
    rows = [
        {"layer": r.layer, "type": r.kind, "output shape": r.output_shape, "parameters": r.params}
        for r in summary.rows
    ]
    return rows, summary.total_params


def probe_guess(probabilities: np.ndarray, label: int) -> tuple[int, float, bool]:
    """The guess for one probe digit, its probability, and whether it is right."""
    guess = int(probabilities.argmax())
    return guess, float(probabilities[guess]), guess == int(label)


def job_label(job: Job, who: str) -> str:
    """How the job picker names a job (who: "you", "visitor a3f1"); no state in it, since a
    picked option's text stays put."""
    started = time.strftime("%H:%M:%S", time.localtime(job.created_at))
    return f"{job.config.preset} · started by {who} at {started} · {job.id}"


def progress_text(snap: ProgressSnapshot) -> str:
    """The progress bar's line: epoch, batch, throughput, time so far and time left."""
    parts = [
        f"Epoch {snap.epoch}/{snap.epochs}",
        f"batch {snap.batch}/{snap.steps_per_epoch}",
        f"{snap.images_per_second:,.0f} images/s",
        f"{snap.elapsed:.0f} s",
    ]
    if snap.eta_seconds is not None:
        parts.append(f"{snap.eta_seconds:.0f} s left")
    return " · ".join(parts)


# ----- runs table and hyperparameter chart ---------------------------------------------------

PARALLEL_SPECS = tuple(spec for spec in CONFIG_SPECS if spec.knob.parallel)


def parallel_rows(runs: list[RunInfo]) -> list[dict[str, Any]]:
    """One row per run for the hyperparameter chart: size of the network, the knobs marked for
    the chart, epochs trained and test accuracy."""
    rows = []
    for r in runs:
        cfg = r.config
        row: dict[str, Any] = {
            "blocks_n": len(cfg.conv_blocks),
            "filters_max": max(b.filters for b in cfg.conv_blocks),
        }
        for spec in PARALLEL_SPECS:
            value = getattr(cfg, spec.name)
            row[spec.knob.column or spec.name] = (
                ("yes" if value else "no") if spec.kind is bool else value
            )
        row["epochs"] = r.meta.get("epochs_completed", cfg.epochs)
        row["test_accuracy"] = r.test_accuracy
        rows.append(row)
    return rows


def parallel_dimensions() -> list[str]:
    """The hyperparameter chart's axes, in order (test accuracy is its colour)."""
    knobs = [spec.knob.column or spec.name for spec in PARALLEL_SPECS]
    return ["blocks_n", "filters_max", *knobs, "epochs"]
