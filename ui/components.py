"""Small reusable pieces of UI shared by several pages."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.drawing import enlarge


def image_grid(
    images: np.ndarray,
    captions: list[str],
    columns: int = 8,
    scale: int = 3,
) -> None:
    """Small digits in a grid with captions, enlarged without blurring."""
    if len(images) == 0:
        st.info("Nothing to show here.")
        return
    for start in range(0, len(images), columns):
        cols = st.columns(columns)
        for col, img, cap in zip(
            cols, images[start : start + columns], captions[start : start + columns], strict=False
        ):
            col.image(enlarge(img, scale), caption=cap, width="stretch")
