"""The Train page's form as plain data: widget keys <-> ModelConfig, summaries, table rows.

No Streamlit here: the page reads and writes these flat dicts through st.session_state.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from core.models import (
    LIMITS,
    OPTIMIZERS,
    PADDINGS,
    PRESETS,
    SCHEDULES,
    ConvBlock,
    ModelConfig,
    build_model,
    summarize,
)

MAX_BLOCKS = 4
BLOCK_FIELDS = ("filters", "kernel_size", "convs", "pool", "dropout")
SCALAR_FIELDS = (
    "padding",
    "batch_norm",
    "dense_units",
    "dense_dropout",
    "optimizer",
    "learning_rate",
    "lr_schedule",
    "batch_size",
    "epochs",
    "validation_split",
    "seed",
    "augment",
    "rotation",
    "zoom",
    "shift",
    "early_stopping",
    "reduce_lr_on_plateau",
    "patience",
    "terminate_on_nan",
)
PREFIX = "train_"


def key(field: str) -> str:
    """The session-state key of a form field."""
    return PREFIX + field


def block_key(index: int, field: str) -> str:
    """The session-state key of one conv block's field."""
    return f"{PREFIX}b{index}_{field}"


def to_state(config: ModelConfig) -> dict[str, Any]:
    """Every form field's value for config (hidden blocks keep sensible defaults)."""
    state: dict[str, Any] = {key("blocks"): len(config.conv_blocks), key("preset"): config.preset}
    for i in range(MAX_BLOCKS):
        block = (
            config.conv_blocks[i] if i < len(config.conv_blocks) else ConvBlock(64, 3, 1, True, 0.0)
        )
        for f in BLOCK_FIELDS:
            state[block_key(i, f)] = getattr(block, f)
    for f in SCALAR_FIELDS:
        state[key(f)] = getattr(config, f)
    state[key("subset")] = config.train_samples is not None
    state[key("samples")] = config.train_samples or 5000
    return state


def from_state(state: Mapping[str, Any]) -> ModelConfig:
    """The ModelConfig the form describes (validate it separately)."""
    n = int(state[key("blocks")])
    blocks = tuple(ConvBlock(**{f: state[block_key(i, f)] for f in BLOCK_FIELDS}) for i in range(n))
    values = {f: state[key(f)] for f in SCALAR_FIELDS}
    samples = int(state[key("samples")]) if state[key("subset")] else None
    return ModelConfig(
        conv_blocks=blocks,
        train_samples=samples,
        preset=state.get(key("preset"), "custom"),
        **values,
    )


def form_keys() -> list[str]:
    """Every session-state key the form owns (to copy them into a plain key that survives)."""
    keys = [key("blocks"), key("preset"), key("subset"), key("samples")]
    keys += [block_key(i, f) for i in range(MAX_BLOCKS) for f in BLOCK_FIELDS]
    return keys + [key(f) for f in SCALAR_FIELDS]


# Fields drawn as sliders or pickers: they cannot show a value outside their range or choices.
SLIDER_LIMITS = {
    "dense_dropout": LIMITS["dense_dropout"],
    "validation_split": LIMITS["validation_split"],
    "rotation": LIMITS["rotation"],
    "zoom": LIMITS["zoom"],
    "shift": LIMITS["shift"],
}
CHOICES = {"padding": PADDINGS, "optimizer": OPTIMIZERS, "lr_schedule": SCHEDULES}


def state_from_query(params: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The form's state for a page link, and a note for each value the form had to change.

    A link naming a preset starts from it (the tutorial otherwise) and its other parameters
    override the preset. Number fields keep out-of-range values, so the form shows the
    validation message next to them; sliders and pickers cannot hold such values, so those fall
    back to the nearest allowed value and say so.
    """
    base = PRESETS.get(str(params.get("preset", "")), PRESETS["tutorial"])
    config = ModelConfig.from_query(dict(params), base) if params else base
    notes: list[str] = []
    if not config.conv_blocks:
        config = dataclasses.replace(config, conv_blocks=base.conv_blocks)
        notes.append("The link had no readable conv blocks: the preset's blocks are used.")
    elif len(config.conv_blocks) > MAX_BLOCKS:
        notes.append(
            f"The link asks for {len(config.conv_blocks)} conv blocks; at most {MAX_BLOCKS} are "
            f"allowed, so the first {MAX_BLOCKS} are used."
        )
        config = dataclasses.replace(config, conv_blocks=config.conv_blocks[:MAX_BLOCKS])
    state = to_state(config)
    for field, (lo, hi) in SLIDER_LIMITS.items():
        value = state[key(field)]
        if not lo <= value <= hi:
            state[key(field)] = min(max(value, lo), hi)
            notes.append(
                f"{field}={value:g} in the link is outside {lo:g} to {hi:g}: "
                f"{state[key(field)]:g} is used."
            )
    lo, hi = LIMITS["block_dropout"]
    for i, block in enumerate(config.conv_blocks):
        if not lo <= block.dropout <= hi:
            state[block_key(i, "dropout")] = min(max(block.dropout, lo), hi)
            notes.append(
                f"Block {i + 1} dropout {block.dropout:g} in the link is outside {lo:g} to "
                f"{hi:g}: {state[block_key(i, 'dropout')]:g} is used."
            )
    for field, choices in CHOICES.items():
        if state[key(field)] not in choices:
            notes.append(
                f"{field}={state[key(field)]!r} in the link is not one of {', '.join(choices)}: "
                f"{getattr(base, field)!r} is used."
            )
            state[key(field)] = getattr(base, field)
    return state, notes


def probe_guess(probabilities, label: int) -> tuple[int, float, bool]:
    """The guess for one probe digit, its probability, and whether it is right."""
    guess = int(probabilities.argmax())
    return guess, float(probabilities[guess]), guess == int(label)


def job_label(job, owner: str) -> str:
    """How the job picker names a job; no state in it, since a picked option's text stays put."""
    who = "you" if job.owner == owner else "another session"
    started = time.strftime("%H:%M:%S", time.localtime(job.created_at))
    return f"{job.config.preset} · started by {who} at {started} · {job.id}"


def progress_text(snap) -> str:
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


def summary_rows(config: ModelConfig) -> tuple[list[dict[str, Any]], int]:
    """Layer rows (name, type, output shape, parameters) and the total, for a valid config."""
    model = build_model(config, compile=False)
    summary = summarize(model)
    rows = [
        {"layer": r.layer, "type": r.kind, "output shape": r.output_shape, "parameters": r.params}
        for r in summary.rows
    ]
    return rows, summary.total_params


PARALLEL_DIMENSIONS = (
    "blocks_n",
    "filters_max",
    "dense",
    "batch_norm",
    "augment",
    "optimizer",
    "learning_rate",
    "batch_size",
    "epochs",
)


def parallel_rows(runs) -> list[dict[str, Any]]:
    """One row per run for the parallel-coordinates view of hyperparameters vs test accuracy."""
    rows = []
    for r in runs:
        cfg = r.config
        rows.append(
            {
                "blocks_n": len(cfg.conv_blocks),
                "filters_max": max(b.filters for b in cfg.conv_blocks),
                "dense": cfg.dense_units,
                "batch_norm": "yes" if cfg.batch_norm else "no",
                "augment": "yes" if cfg.augment else "no",
                "optimizer": cfg.optimizer,
                "learning_rate": cfg.learning_rate,
                "batch_size": cfg.batch_size,
                "epochs": r.meta.get("epochs_completed", cfg.epochs),
                "test_accuracy": r.test_accuracy,
            }
        )
    return rows
