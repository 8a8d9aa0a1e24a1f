"""The Train page's side panel: the network the form describes, and how long it will train."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import train_form
from core.models import ModelConfig, Timing, estimate_from_timing, pace_key, time_training_steps


@st.cache_data(max_entries=64, show_spinner=False)
def _summary(config: ModelConfig) -> tuple[list[dict], int]:
    return train_form.summary_rows(config)


@st.cache_data(max_entries=32, show_spinner="Timing a few batches on this machine…")
def _timing(config: ModelConfig) -> Timing:
    # One entry per network and batch size: epochs, data size and seed do not change the pace.
    return time_training_steps(config)


def summary(config: ModelConfig, errors: dict[str, str], available: int) -> None:
    """Layers, parameters, training digits and an estimate timed on this machine."""
    st.markdown("**Model summary**")
    if errors:
        st.warning("Fix the highlighted fields to see the model.", icon=":material/warning:")
        return
    rows, total = _summary(config)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    n_train, _ = config.split_sizes(available)
    seconds = estimate_from_timing(config, _timing(pace_key(config)), available)
    st.markdown(
        f"**{total:,} parameters** · {n_train:,} training digits · "
        f"≈ **{_duration(seconds)}** of training here",
        help="Timed on a few batches of this network on this machine, just now; a busy machine "
        "(other visitors training) takes longer.",
    )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
