"""The Train page's form as plain data: widget keys <-> ModelConfig, summaries, table rows.

No Streamlit here: the page reads and writes these flat dicts through st.session_state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from core.models import ConvBlock, ModelConfig, build_model, summarize

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


def same_settings(a: ModelConfig, b: ModelConfig) -> bool:
    """True when two configs differ at most in their preset label and data size."""
    strip = {"preset": "", "train_samples": None}
    return dataclasses.replace(a, **strip) == dataclasses.replace(b, **strip)


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
