"""Explore: the dataset, the tutorial's preprocessing, and the images behind a model's mistakes."""

import numpy as np
import streamlit as st

from core import charts, exploration
from core.models import ModelConfig
from core.runs import RunError, RunInfo
from ui import components, frame, resources

VIEWS = ("Dataset", "Preprocessing", "Errors")
SHOWN = 24  # images per gallery

frame.setup_page("Explore", ":material/query_stats:")
data = resources.get_data()
frame.data_caption(data)
run = frame.run_picker()


def run_key(info: RunInfo) -> tuple[str, str, float]:
    """What identifies a run's files in st.cache_data keys."""
    return info.name, str(info.path), info.created_at


@st.cache_data(show_spinner="Averaging the digits…")
def class_stats(split: str, data_label: str) -> exploration.ClassStats:
    return exploration.class_stats(*exploration.split_arrays(resources.get_data(), split))


@st.cache_data(show_spinner=False)
def pixel_counts(split: str, data_label: str) -> np.ndarray:
    return exploration.pixel_counts(exploration.split_arrays(resources.get_data(), split)[0])


@st.cache_data(show_spinner="Placing the digits on a map…")
def pixel_map(method: str, n: int, data_label: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = resources.get_data().x_test, resources.get_data().y_test
    idx = exploration.subsample(y, n)
    return idx, exploration.project(exploration.pixels(x[idx]), method)


@st.cache_data(show_spinner="Computing what the network sees in each digit…")
def feature_map(_run: RunInfo, key: tuple, method: str, n: int, data_label: str):
    x, y = resources.get_data().x_test, resources.get_data().y_test
    idx = exploration.subsample(y, n)
    features = exploration.learned_features(resources.load_model(_run), x[idx])
    return idx, exploration.project(features, method)


@st.cache_data(show_spinner="Augmenting…")
def augmented(split: str, index: int, rotation: float, zoom: float, shift: float, seed: int):
    x, _ = exploration.split_arrays(resources.get_data(), split)
    config = ModelConfig(rotation=rotation, zoom=zoom, shift=shift)
    return exploration.augment_preview(x[index], config, count=12, seed=seed)


@st.cache_data(show_spinner="Looking at what the model attends to…")
def attention(_run: RunInfo, key: tuple, index: int, digit: int) -> dict[str, np.ndarray]:
    image = resources.get_data().x_test[index]
    return exploration.attention(resources.load_model(_run), image, digit)


def model_or_error(info: RunInfo):
    """The run's cached model, or an error box (and None) when it cannot be read or used."""
    try:
        model = resources.load_model(info)
        problem = exploration.model_problem(model, info.name)
    except RunError as exc:
        model, problem = None, str(exc)
    if problem is None:
        return model
    st.error(problem, icon=":material/error:")
    return None


def evaluation_or_error(info: RunInfo):
    """The run's cached evaluation, or an error box (and None) when its model cannot be used."""
    return resources.get_evaluation(info) if model_or_error(info) is not None else None


def first_page() -> None:
    st.session_state["explore_page"] = 1


def digit_grid(split: str, indices: np.ndarray, captions: list[str], columns: int = 12) -> None:
    x, _ = exploration.split_arrays(data, split)
    components.image_grid(x[indices], captions, columns=columns, scale=3)


st.title("Explore")
view = st.segmented_control(
    "View",
    VIEWS,
    default="Dataset",
    required=True,
    key="explore_view",
    persist_state="session",
    label_visibility="collapsed",
)


# ----- the dataset ----------------------------------------------------------------------------
def dataset_view() -> None:
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
        ev = evaluation_or_error(run)
        within = ev.misclassified if ev is not None else None
    matches = exploration.filter_indices(y, digit, within)
    page = c4.number_input("Page", min_value=1, value=1, step=1, key="explore_page")
    grid = exploration.page_of(matches, page)
    if grid.total == 0:
        st.info("No digit matches these filters. Choose another digit or turn a filter off.")
    else:
        first = (grid.page - 1) * exploration.GRID_PAGE + 1
        st.caption(
            f"{first:,}–{first + len(grid.indices) - 1:,} of {grid.total:,} "
            f"(page {grid.page} of {grid.pages}). Each caption: index in the {split} set · label."
        )
        digit_grid(split, grid.indices, [f"#{i} · {y[i]}" for i in grid.indices], columns=16)

    stats = class_stats(split, data.label)
    st.subheader(f"The average {split} digit, and how much it varies")
    st.caption(
        "Top: each digit's mean image. Bottom: the spread (standard deviation) of every pixel, "
        "brighter where writers disagree."
    )
    components.image_grid(stats.mean, [f"mean {d}" for d in range(10)], columns=10, scale=4)
    spread = stats.std / max(float(stats.std.max()), 1e-6)
    components.image_grid(spread, [f"spread {d}" for d in range(10)], columns=10, scale=4)

    st.subheader("Pixel intensities")
    counts = pixel_counts(split, data.label)
    log_y = st.toggle("Logarithmic axis", value=True, key="explore_hist_log")
    st.plotly_chart(charts.pixel_histogram(counts, log_y=log_y), key="explore_hist")
    st.caption(
        f"{counts[0] / counts.sum():.0%} of the {split} pixels are pure black background; "
        "the ink is mostly near 255, with soft edges in between."
    )
    map_view()


def map_view() -> None:
    st.subheader("A map of the digits")
    st.caption(
        "Each dot is a test digit, placed so that similar images land close together. "
        "Click a dot, or drag a box or lasso, to see the digits."
    )
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
    if tsne and st.session_state.get("explore_tsne_ready") != n:
        st.info(f"t-SNE on {n:,} digits takes a few seconds: press **Compute t-SNE**.")
        return
    key, size = ("tsne", n) if tsne else ("pca", exploration.MAP_SAMPLES)
    maps = [("raw pixels", *pixel_map(key, size, data.label))]
    if features and run is not None and model_or_error(run) is not None:
        learned = feature_map(run, run_key(run), key, size, data.label)
        maps.append((f"learned features of {run.name}", *learned))
    chosen: list[int] = []
    for col, (title, idx, coords) in zip(st.columns(len(maps)), maps, strict=True):
        event = col.plotly_chart(
            charts.embedding_scatter(coords, data.y_test[idx], f"{method} of {title}", idx),
            on_select="rerun",
            selection_mode=("points", "box", "lasso"),
            key=f"explore_map_{'features' if 'learned' in title else 'pixels'}",
        )
        chosen += charts.points_from_selection(event)
    if chosen:
        chosen = list(dict.fromkeys(chosen))
        more = f", the first {SHOWN} shown" if len(chosen) > SHOWN else ""
        st.markdown(
            f"**Selected on the map: {len(chosen):,} digit{'s' * (len(chosen) > 1)}{more}**"
        )
        chosen = chosen[:SHOWN]
        digit_grid("test", np.array(chosen), [f"#{i} · {data.y_test[i]}" for i in chosen])


# ----- the tutorial's preprocessing -----------------------------------------------------------
def preprocessing_view() -> None:
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
    rows, cols = exploration.ink_window(steps.raw)
    raw_col, before_col, after_col = st.columns(3, gap="medium")
    raw = charts.image_figure(
        steps.raw, "1. Raw pixels: (28, 28) uint8", zmin=0, zmax=255, height=340
    )
    raw.add_shape(
        type="rect",
        x0=cols.start - 0.5,
        x1=cols.stop - 0.5,
        y0=rows.start - 0.5,
        y1=rows.stop - 0.5,
        line=dict(color="#ff7f0e", width=2),
    )
    raw_col.plotly_chart(raw, key="explore_pre_raw")
    for col, patch, title, fmt, top, key in (
        (
            before_col,
            steps.reshaped[rows, cols, 0],
            "2. Reshaped to (28, 28, 1): the boxed patch, 0–255",
            "{:.0f}",
            255,
            "before",
        ),
        (after_col, steps.scaled[rows, cols, 0], "3. Scaled: float32, 0–1", "{:.2f}", 1, "after"),
    ):
        fig = charts.image_figure(patch, title, zmin=0, zmax=top, height=340)
        fig.update_traces(text=exploration.pixel_text(patch, fmt), texttemplate="%{text}")
        col.plotly_chart(fig, key=f"explore_pre_{key}")
    st.markdown(
        f"**4. One-hot label**: the digit {steps.label} becomes ten numbers, a 1 at place {steps.label}."
    )
    st.dataframe(
        {str(d): [int(v)] for d, v in enumerate(steps.one_hot)},
        hide_index=True,
        key="explore_pre_onehot",
    )

    st.subheader("What augmentation does")
    base = run.config if run is not None and run.config.augment else ModelConfig()
    origin = (
        f"as run **{run.name}** trains"
        if run is not None and run.config.augment
        else ("the Train page's defaults")
    )
    st.caption(
        f"Random rotation, zoom and shift ({origin}) redraw every training digit a little "
        "differently each epoch, so the network learns the digit, not its exact position."
    )
    show = st.toggle("Show 12 random augmentations of this digit", key="explore_aug")
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
    st.session_state.setdefault("explore_aug_seed", 0)
    if c4.button("New random draws", key="explore_aug_new", disabled=not show):
        st.session_state["explore_aug_seed"] += 1
    if show:
        images = augmented(
            split, index, rotation, zoom, shift, st.session_state["explore_aug_seed"]
        )
        pictures = np.concatenate([steps.scaled[None, ..., 0], images])
        components.image_grid(
            pictures, ["original"] + [f"draw {i}" for i in range(1, 13)], columns=13, scale=4
        )


# ----- a model's errors -----------------------------------------------------------------------
def errors_view() -> None:
    if run is None:
        st.info(
            "No trained model yet, so there are no mistakes to look at. Train one on the Train "
            "page (the fast preset takes a few minutes), then come back. The Dataset and "
            "Preprocessing views work without a model."
        )
        st.page_link("pages/1_Train.py", label="Go to Train", icon=":material/model_training:")
        return
    ev = evaluation_or_error(run)
    if ev is None:
        st.caption("Choose another model in the sidebar, or train a new one on the Train page.")
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Test accuracy", f"{ev.accuracy:.2%}")
    c2.metric("Test loss", f"{ev.loss:.4f}")
    c3.metric("Mistakes", f"{len(ev.misclassified):,} of {len(ev.labels):,}")
    st.caption(
        f"**{run.name}** on the {len(ev.labels):,} test digits: the same figures as "
        "`model.evaluate(x_test, y_test)`."
    )
    confusion_section(ev)

    st.subheader("Precision, recall and F1 of each digit")
    left, right = st.columns([0.45, 0.55], gap="large")
    left.dataframe(exploration.per_class_table(ev), hide_index=True, key="explore_per_class")
    right.plotly_chart(charts.per_class_bars(ev.precision, ev.recall, ev.f1), key="explore_prf")
    st.caption(
        "Precision: of the images answered *d*, how many are *d*. Recall: of the *d*s, how many "
        "were found. F1: their harmonic mean."
    )

    st.subheader("Mistakes worth a look")
    kind = st.segmented_control(
        "Which",
        list(exploration.MISTAKE_VIEWS),
        default="Most confident mistakes",
        required=True,
        key="explore_mistakes",
        label_visibility="collapsed",
    )
    picked = exploration.mistakes(ev, kind, SHOWN)
    if len(picked) == 0:
        st.info("None: the model gets every test digit right.")
    else:
        st.caption("Each caption: test index, true digit → answer (its probability).")
        digit_grid("test", picked, [exploration.error_caption(ev, i) for i in picked])

    detail_section(ev)
    compare_section(ev)


def confusion_section(ev) -> None:
    st.subheader("Confusion matrix")
    left, right = st.columns([0.55, 0.45], gap="large")
    with left:
        a, b = st.columns(2)
        scale = a.segmented_control(
            "Values", ["Counts", "Row %"], default="Counts", required=True, key="explore_cm_scale"
        )
        diagonal = b.toggle("Show the diagonal", value=True, key="explore_cm_diag")
        fig = charts.confusion_heatmap(ev.confusion, scale == "Row %", diagonal)
        # The clickable overlay's big markers would otherwise pad the axes beyond the 10 digits.
        fig.update_xaxes(range=[-0.5, 9.5])
        fig.update_yaxes(range=[9.5, -0.5], autorange=False, constrain="domain")
        event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key="explore_cm")
        st.caption(
            "Rows: the true digit. Columns: the model's answer. Click a cell to see its images."
        )
    cell = charts.cell_from_selection(event)
    if cell is None:
        st.session_state.pop("explore_cm_clicked", None)
    elif cell != st.session_state.get("explore_cm_clicked"):
        # A new click wins over the pickers; afterwards the pickers move freely.
        st.session_state["explore_cm_clicked"] = cell
        st.session_state["explore_true"], st.session_state["explore_pred"] = cell
    default = exploration.most_confused(ev.confusion)
    st.session_state.setdefault("explore_true", default[0])
    st.session_state.setdefault("explore_pred", default[1])
    with right:
        a, b = st.columns(2)
        true = a.selectbox("True digit", range(10), key="explore_true")
        pred = b.selectbox("Predicted digit", range(10), key="explore_pred")
        idx = exploration.cell_indices(ev, true, pred)
        st.markdown(
            f"**True {true}, predicted {pred}: {len(idx):,} image{'s' if len(idx) != 1 else ''}**"
            + (f" · the {SHOWN} surest shown" if len(idx) > SHOWN else "")
        )
        st.caption(f"Each caption: test index, the probability of {pred} and of {true}.")
        if len(idx) == 0:
            st.info(f"No test image of a {true} was answered {pred}.")
        else:
            captions = [
                exploration.prob_caption(i, ev.probabilities[i], pred, true) for i in idx[:SHOWN]
            ]
            digit_grid("test", idx[:SHOWN], captions, columns=4)
            if st.session_state.get("explore_detail_cell") != (true, pred):
                st.session_state["explore_detail_cell"] = (true, pred)
                st.session_state["explore_detail"] = int(idx[0])


def detail_section(ev) -> None:
    st.subheader("One test digit in detail")
    n = len(ev.labels)
    st.session_state.setdefault(
        "explore_detail", int(ev.misclassified[0]) if len(ev.misclassified) else 0
    )
    c1, c2 = st.columns([0.3, 0.7], vertical_alignment="bottom")
    index = c1.number_input(
        f"Test image # (0–{n - 1:,})",
        0,
        n - 1,
        step=1,
        key="explore_detail",
        help="Choosing a confusion-matrix cell puts its first image here.",
    )
    attend = c2.toggle("What the model attends to", value=True, key="explore_attend")
    true, pred = int(ev.labels[index]), int(ev.predictions[index])
    image = data.x_test[index] / 255.0
    cols = st.columns([0.22, 0.34, 0.22, 0.22], gap="medium")
    verdict = "right" if true == pred else "wrong"
    title = f"#{index}: a {true}, answered {pred} ({verdict})"
    cols[0].plotly_chart(charts.image_figure(image, title), key="explore_detail_image")
    cols[1].plotly_chart(
        charts.probability_bars(ev.probabilities[index]), key="explore_detail_probs"
    )
    if attend:
        maps = attention(run, run_key(run), index, pred)
        for col, (name, heat) in zip(cols[2:], maps.items(), strict=False):
            col.plotly_chart(
                charts.overlay_figure(image, heat, f"{name} for {pred}"),
                key=f"explore_detail_{name}",
            )


def compare_section(ev) -> None:
    st.subheader("Compare with another run")
    runs, _ = resources.list_runs()
    others = [r for r in runs if r.name != run.name]
    other = st.columns([0.4, 0.6])[0].selectbox(
        "Compare with",
        [None, *(r.name for r in others)],
        format_func=lambda name: "—" if name is None else name,
        key="explore_compare",
        disabled=not others,
        help="Needs a second trained run." if not others else None,
    )
    if other is None:
        return
    info = next(r for r in others if r.name == other)
    ev_b = evaluation_or_error(info)
    if ev_b is None:
        return
    try:
        comparison = exploration.compare(ev, ev_b)
    except ValueError as exc:
        st.error(f"{exc} Were they evaluated on different data?")
        return
    st.plotly_chart(
        charts.per_class_comparison(comparison.accuracy_a, comparison.accuracy_b, run.name, other),
        key="explore_compare_chart",
    )
    left, right = st.columns(2, gap="large")
    for col, name, loser, idx in (
        (left, run.name, ev_b, comparison.only_a),
        (right, other, ev, comparison.only_b),
    ):
        with col:
            st.markdown(f"**{name} right, the other wrong: {len(idx):,}**")
            if len(idx) == 0:
                st.info("None.")
            else:
                captions = [f"#{i} {ev.labels[i]}, not {loser.predictions[i]}" for i in idx[:SHOWN]]
                digit_grid("test", idx[:SHOWN], captions, columns=6)
    st.caption(
        f"Each caption: test index, the true digit, and the other run's answer. Both runs are "
        f"wrong on {comparison.both_wrong:,} test digits."
    )


{"Dataset": dataset_view, "Preprocessing": preprocessing_view, "Errors": errors_view}[view]()
