"""The Dataset view: where MNIST comes from, samples, the average digits, pixels, and maps."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core import charts, exploration
from core.data import MnistData
from core.runs import RunInfo
from ui import components
from ui.explore import common


def first_page() -> None:
    """A new filter starts the sample grid again at page 1."""
    st.session_state["explore_page"] = 1


def overview(data: MnistData) -> None:
    """Where the data comes from, its shapes, and how many digits of each class."""
    left, right = st.columns([0.42, 0.58], gap="large")
    with left:
        st.subheader("Where the data comes from")
        st.write(data.description)
        st.code(exploration.shape_lines(data), language="text")
    with right:
        st.subheader("Digits per class")
        train_counts = np.bincount(data.y_train, minlength=10)
        test_counts = np.bincount(data.y_test, minlength=10)
        st.plotly_chart(charts.class_counts(train_counts, test_counts), key="explore_counts")


def samples(data: MnistData, run: RunInfo | None) -> str:
    """A page of sample digits, filtered by split, digit and the model's mistakes; the split."""
    st.subheader("Samples")
    c1, c2, c3, c4 = st.columns([0.2, 0.2, 0.35, 0.25], vertical_alignment="bottom")
    split = c1.segmented_control(
        "Split",
        exploration.SPLITS,
        default="train",
        required=True,
        key="explore_split",
        on_change=first_page,
    )
    digit = c2.selectbox(
        "Digit",
        [None, *range(10)],
        format_func=lambda d: "All digits" if d is None else str(d),
        key="explore_digit",
        on_change=first_page,
    )
    wrong = c3.toggle(
        "Only digits the model gets wrong",
        key="explore_wrong",
        on_change=first_page,
        disabled=run is None or split != "test",
        help="Test split only, for the model chosen in the sidebar.",
    )
    x, y = exploration.split_arrays(data, split)
    within = None
    if wrong and run is not None and split == "test":
        ev = common.evaluation_or_error(run)
        within = ev.misclassified if ev is not None else None
    page = c4.number_input("Page", min_value=1, value=1, step=1, key="explore_page")
    grid = exploration.page_of(exploration.filter_indices(y, digit, within), page)
    if grid.total == 0:
        st.info("No digit matches these filters. Choose another digit or turn a filter off.")
    else:
        st.caption(exploration.grid_caption(grid, split))
        captions = exploration.label_captions(grid.indices, y)
        common.digit_grid(x, grid.indices, captions, columns=16)
    return split


def class_averages(data: MnistData, split: str) -> None:
    """Each digit's mean image and the spread of its pixels."""
    stats = common.class_stats(split, data.label)
    st.subheader(f"The average {split} digit, and how much it varies")
    st.caption(
        "Top: each digit's mean image. Bottom: the spread (standard deviation) of every pixel, "
        "brighter where writers disagree."
    )
    components.image_grid(stats.mean, [f"mean {d}" for d in range(10)], columns=10, scale=4)
    spread = exploration.relative_spread(stats)
    components.image_grid(spread, [f"spread {d}" for d in range(10)], columns=10, scale=4)


def pixel_intensities(data: MnistData, split: str) -> None:
    """The histogram of pixel values in one split."""
    st.subheader("Pixel intensities")
    counts = common.pixel_counts(split, data.label)
    log_y = st.toggle("Logarithmic axis", value=True, key="explore_hist_log")
    st.plotly_chart(charts.pixel_histogram(counts, log_y=log_y), key="explore_hist")
    st.caption(exploration.background_caption(counts, split))


def digit_map(data: MnistData, run: RunInfo | None) -> None:
    """2-D maps of the test digits (raw pixels, and beside it learned features), selectable."""
    st.subheader("A map of the digits")
    st.caption(
        "Each dot is a test digit, placed so that similar images land close together. "
        "Click a dot, or drag a box or lasso, to see the digits."
    )
    method, n, features = _map_controls(run)
    if method == "t-SNE" and st.session_state.get("explore_tsne_ready") != n:
        st.info(f"t-SNE on {n:,} digits takes a few seconds: press **Compute t-SNE**.")
        return
    key, size = exploration.map_sample(method, n)
    maps = [("raw pixels", *common.pixel_map(key, size, data.label))]
    if features and run is not None and common.model_or_error(run) is not None:
        maps.append((f"learned features of {run.name}", *common.feature_map(run, key, size)))
    chosen = _draw_maps(data, method, maps)
    if chosen:
        chosen, heading = exploration.selection(chosen)
        st.markdown(f"**{heading}**")
        common.digit_grid(
            data.x_test, np.array(chosen), exploration.label_captions(chosen, data.y_test)
        )


def _map_controls(run: RunInfo | None) -> tuple[str, int, bool]:
    """The map's projection, t-SNE sample size and learned-features toggle."""
    c1, c2, c3, c4 = st.columns([0.22, 0.18, 0.22, 0.38], vertical_alignment="bottom")
    method = c1.segmented_control(
        "Projection", ["PCA", "t-SNE"], default="PCA", required=True, key="explore_map_method"
    )
    tsne = method == "t-SNE"
    n = c2.selectbox("Digits", exploration.TSNE_SAMPLES, key="explore_tsne_n", disabled=not tsne)
    if c3.button("Compute t-SNE", key="explore_tsne_go", disabled=not tsne):
        st.session_state["explore_tsne_ready"] = n
    features = c4.toggle(
        "Beside it: what the model learned",
        key="explore_features",
        disabled=run is None,
        help="The input of the model's last Dense layer, mapped the same way.",
    )
    return method, n, features


def _draw_maps(data: MnistData, method: str, maps: list) -> list[int]:
    """The maps side by side; the indices of the digits selected on any of them."""
    chosen: list[int] = []
    for col, (title, idx, coords) in zip(st.columns(len(maps)), maps, strict=True):
        event = col.plotly_chart(
            charts.embedding_scatter(coords, data.y_test[idx], f"{method} of {title}", idx),
            on_select="rerun",
            selection_mode=("points", "box", "lasso"),
            key=f"explore_map_{'features' if 'learned' in title else 'pixels'}",
        )
        chosen += charts.points_from_selection(event)
    return chosen
