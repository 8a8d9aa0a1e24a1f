"""The Preprocessing view: the tutorial's steps on one digit, and what augmentation does to it."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core import charts, exploration
from core.data import MnistData
from core.models import CONFIG_SPECS
from core.runs import RunInfo
from ui import components
from ui.explore import common

SPECS = {spec.name: spec for spec in CONFIG_SPECS}
DISTORTIONS = (("elastic", "explore_aug_elastic"), ("pen_width", "explore_aug_pens"))
"""The training pipeline's distortions the preview offers, and their widgets' keys."""


def one_digit(data: MnistData) -> tuple[str, int, exploration.PreprocessingSteps]:
    """One chosen digit through reshape, scaling and one-hot; (split, index, its steps)."""
    st.subheader("The tutorial's preprocessing, on one digit")
    c1, c2, _ = st.columns([0.2, 0.2, 0.6], vertical_alignment="bottom")
    split = c1.segmented_control(
        "Split", exploration.SPLITS, default="train", required=True, key="explore_pre_split"
    )
    x, y = exploration.split_arrays(data, split)
    index = c2.number_input(
        f"Image # (0–{len(x) - 1:,})", 0, len(x) - 1, 0, step=1, key="explore_pre_index"
    )
    steps = exploration.preprocessing_steps(x[index], y[index])
    st.code(exploration.preprocessing_code(steps, split, index), language="python")
    pixel_figures(steps)
    st.markdown(
        f"**4. One-hot label**: the digit {steps.label} becomes ten numbers, a 1 at place {steps.label}."
    )
    st.dataframe(exploration.one_hot_table(steps), hide_index=True, key="explore_pre_onehot")
    return split, index, steps


def pixel_figures(steps: exploration.PreprocessingSteps) -> None:
    """The raw digit with its ink window boxed, and that window's values before and after scaling."""
    rows, cols = exploration.ink_window(steps.raw)
    raw_col, *patch_cols = st.columns(3, gap="medium")
    raw = charts.image_figure(
        steps.raw, "1. Raw pixels: (28, 28) uint8", zmin=0, zmax=255, height=340
    )
    raw.add_shape(
        type="rect", **exploration.window_rect(rows, cols), line=dict(color="#ff7f0e", width=2)
    )
    raw_col.plotly_chart(raw, key="explore_pre_raw")
    for col, patch in zip(patch_cols, exploration.pixel_patches(steps, rows, cols), strict=True):
        fig = charts.image_figure(patch.values, patch.title, zmin=0, zmax=patch.top, height=340)
        fig.update_traces(
            text=exploration.pixel_text(patch.values, patch.fmt), texttemplate="%{text}"
        )
        col.plotly_chart(fig, key=f"explore_pre_{patch.key}")


def augmentation(
    run: RunInfo | None, split: str, index: int, steps: exploration.PreprocessingSteps
) -> None:
    """Random augmentations of the chosen digit, as the chosen run (or the defaults) trains."""
    st.subheader("What augmentation does")
    base, origin = exploration.augmentation_base(run)
    st.caption(
        f"Random rotation, zoom and shift ({origin}) redraw every training digit a little "
        "differently each epoch, so the network learns the digit, not its exact position. "
        "Elastic warps bend its strokes as another writer's hand would, and other pens draw it "
        "thicker or thinner: each slider below them is the share of digits it changes."
    )
    count = exploration.AUGMENTATIONS
    show = st.toggle(f"Show {count} random augmentations of this digit", key="explore_aug")
    c1, c2, c3, c4 = st.columns(4, vertical_alignment="bottom")
    rotation = c1.slider(
        "Rotation (°)", 0.0, 45.0, float(base.rotation), key="explore_aug_rot", disabled=not show
    )
    zoom = c2.slider(
        "Zoom (±)", 0.0, 0.5, float(base.zoom), key="explore_aug_zoom", disabled=not show
    )
    shift = c3.slider(
        "Shift (± of the size)",
        0.0,
        0.3,
        float(base.shift),
        key="explore_aug_shift",
        disabled=not show,
    )
    # The training pipeline's shares, with their labels and ranges from the knob table.
    shares = {}
    for col, (name, widget_key) in zip(st.columns(3), DISTORTIONS, strict=False):
        spec = SPECS[name]
        shares[name] = col.slider(
            f"{spec.label} (share)",
            float(spec.knob.lo),
            float(spec.knob.hi),
            float(getattr(base, name)),
            step=spec.knob.step,
            key=widget_key,
            disabled=not show,
        )
    elastic, pen_width = shares["elastic"], shares["pen_width"]
    st.session_state.setdefault("explore_aug_seed", 0)
    if c4.button("New random draws", key="explore_aug_new", disabled=not show):
        st.session_state["explore_aug_seed"] += 1
    if show:
        seed = st.session_state["explore_aug_seed"]
        images = common.augmented(split, index, rotation, zoom, shift, seed, elastic, pen_width)
        pictures = np.concatenate([steps.scaled[None, ..., 0], images])
        captions = ["original"] + [f"draw {i}" for i in range(1, count + 1)]
        components.image_grid(pictures, captions, columns=count + 1, scale=4)
