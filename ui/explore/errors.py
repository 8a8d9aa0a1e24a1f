"""The Errors view: a run's test figures, confusion matrix, per-class metrics and mistakes."""

from __future__ import annotations

import streamlit as st

from core import charts, exploration
from core.data import MnistData
from core.evaluation import Evaluation
from core.runs import RunInfo
from ui import model_upload, resources
from ui.explore import common

SHOWN = exploration.SHOWN


def summary(run: RunInfo) -> Evaluation | None:
    """The run's test accuracy, loss and number of mistakes; its evaluation (None if unusable)."""
    model_upload.model_upload("explore")
    ev = common.evaluation_or_error(run)
    if ev is None:
        st.caption("Choose another model in the sidebar, or train a new one on the Train page.")
        return None
    c1, c2, c3 = st.columns(3)
    c1.metric("Test accuracy", f"{ev.accuracy:.2%}")
    c2.metric("Test loss", f"{ev.loss:.4f}")
    c3.metric("Mistakes", f"{len(ev.misclassified):,} of {len(ev.labels):,}")
    st.caption(
        f"**{run.name}** on the {len(ev.labels):,} test digits: the same figures as "
        "`model.evaluate(x_test, y_test)`."
    )
    return ev


def confusion(data: MnistData, ev: Evaluation) -> None:
    """The clickable confusion matrix and, beside it, the images of the chosen cell."""
    st.subheader("Confusion matrix")
    left, right = st.columns([0.55, 0.45], gap="large")
    with left:
        event = _confusion_chart(ev)
    _follow_click(charts.cell_from_selection(event), ev)
    with right:
        _cell_images(data, ev)


def _confusion_chart(ev: Evaluation):
    """The heatmap with its value and diagonal controls; the chart's selection event."""
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
    st.caption("Rows: the true digit. Columns: the model's answer. Click a cell to see its images.")
    return event


def _follow_click(cell: tuple[int, int] | None, ev: Evaluation) -> None:
    """A newly clicked cell sets the pickers; without a click they start at the worst confusion."""
    if cell is None:
        st.session_state.pop("explore_cm_clicked", None)
    elif cell != st.session_state.get("explore_cm_clicked"):
        # A new click wins over the pickers; afterwards the pickers move freely.
        st.session_state["explore_cm_clicked"] = cell
        st.session_state["explore_true"], st.session_state["explore_pred"] = cell
    default = exploration.most_confused(ev.confusion)
    st.session_state.setdefault("explore_true", default[0])
    st.session_state.setdefault("explore_pred", default[1])


def _cell_images(data: MnistData, ev: Evaluation) -> None:
    """The true/predicted pickers and the surest images of that cell."""
    a, b = st.columns(2)
    true = a.selectbox("True digit", range(10), key="explore_true")
    pred = b.selectbox("Predicted digit", range(10), key="explore_pred")
    idx = exploration.cell_indices(ev, true, pred)
    st.markdown(f"**{exploration.cell_heading(true, pred, len(idx))}**")
    st.caption(f"Each caption: test index, the probability of {pred} and of {true}.")
    if len(idx) == 0:
        st.info(f"No test image of a {true} was answered {pred}.")
        return
    captions = exploration.cell_captions(ev, idx[:SHOWN], true, pred)
    common.digit_grid(data.x_test, idx[:SHOWN], captions, columns=4)
    if st.session_state.get("explore_detail_cell") != (true, pred):
        # A newly chosen cell shows its first image in detail.
        st.session_state["explore_detail_cell"] = (true, pred)
        st.session_state["explore_detail"] = int(idx[0])


def per_class(ev: Evaluation) -> None:
    """Precision, recall and F1 of each digit, as a table and as bars."""
    st.subheader("Precision, recall and F1 of each digit")
    left, right = st.columns([0.45, 0.55], gap="large")
    left.dataframe(exploration.per_class_table(ev), hide_index=True, key="explore_per_class")
    right.plotly_chart(charts.per_class_bars(ev.precision, ev.recall, ev.f1), key="explore_prf")
    st.caption(
        "Precision: of the images answered *d*, how many are *d*. Recall: of the *d*s, how many "
        "were found. F1: their harmonic mean."
    )


def mistakes(data: MnistData, ev: Evaluation) -> None:
    """A gallery of the most confident mistakes, the hardest digits or the least sure answers."""
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
        return
    st.caption("Each caption: test index, true digit → answer (its probability).")
    common.digit_grid(data.x_test, picked, [exploration.error_caption(ev, i) for i in picked])


def detail(data: MnistData, run: RunInfo, ev: Evaluation) -> None:
    """One test digit, the model's probabilities for it, and what the model attends to."""
    st.subheader("One test digit in detail")
    n = len(ev.labels)
    st.session_state.setdefault("explore_detail", exploration.first_mistake(ev))
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
    title = exploration.detail_title(index, true, pred)
    cols[0].plotly_chart(charts.image_figure(image, title), key="explore_detail_image")
    probabilities = charts.probability_bars(ev.probabilities[index])
    cols[1].plotly_chart(probabilities, key="explore_detail_probs")
    if attend:
        maps = common.attention(run, index, pred)
        for col, (name, heat) in zip(cols[2:], maps.items(), strict=False):
            col.plotly_chart(
                charts.overlay_figure(image, heat, f"{name} for {pred}"),
                key=f"explore_detail_{name}",
            )


def compare(data: MnistData, run: RunInfo, ev: Evaluation) -> None:
    """Per-class accuracy of this run against another, and the digits only one gets right."""
    st.subheader("Compare with another run")
    other = _other_run(run)
    ev_b = common.evaluation_or_error(other) if other is not None else None
    if ev_b is None:
        return
    try:
        comparison = exploration.compare(ev, ev_b)
    except ValueError as exc:
        st.error(f"{exc} Were they evaluated on different data?")
        return
    st.plotly_chart(
        charts.per_class_comparison(
            comparison.accuracy_a, comparison.accuracy_b, run.name, other.name
        ),
        key="explore_compare_chart",
    )
    _confusions_side_by_side(run.name, ev, other.name, ev_b)
    left, right = st.columns(2, gap="large")
    for col, name, winner, loser, idx in (
        (left, run.name, ev, ev_b, comparison.only_a),
        (right, other.name, ev_b, ev, comparison.only_b),
    ):
        with col:
            st.markdown(f"**{name} right, the other wrong: {len(idx):,}**")
            if len(idx) == 0:
                st.info("None.")
            else:
                captions = exploration.comparison_captions(winner, loser, idx[:SHOWN])
                common.digit_grid(data.x_test, idx[:SHOWN], captions, columns=6)
    st.caption(
        f"Each caption: test index, the true digit, and the other run's answer. Both runs are "
        f"wrong on {comparison.both_wrong:,} test digits."
    )


def _confusions_side_by_side(name_a: str, ev_a: Evaluation, name_b: str, ev_b: Evaluation) -> None:
    """Both runs' confusion matrices on one colour scale, the mistakes alone by default."""
    st.markdown("**Confusion matrices side by side**")
    a, b = st.columns(2)
    scale = a.segmented_control(
        "Values",
        ["Counts", "Row %"],
        default="Counts",
        required=True,
        key="explore_compare_cm_scale",
    )
    diagonal = b.toggle("Show the diagonal", value=False, key="explore_compare_cm_diag")
    figures = charts.confusion_pair(
        ev_a.confusion, ev_b.confusion, name_a, name_b, scale == "Row %", diagonal
    )
    for col, fig, side in zip(st.columns(2, gap="large"), figures, ("a", "b"), strict=True):
        col.plotly_chart(fig, key=f"explore_compare_cm_{side}")
    st.caption(
        "One colour scale for both: the same shade is the same number of mistakes (or share of "
        "the row). The diagonal, the right answers, is hidden unless shown."
    )


def _other_run(run: RunInfo) -> RunInfo | None:
    """The picker of a second run to compare with; the run chosen, or None."""
    runs, _ = resources.list_runs()
    others = [r for r in runs if r.name != run.name]
    name = st.columns([0.4, 0.6])[0].selectbox(
        "Compare with",
        [None, *(r.name for r in others)],
        format_func=lambda name: "—" if name is None else name,
        key="explore_compare",
        disabled=not others,
        help="Needs a second trained run." if not others else None,
    )
    return next((r for r in others if r.name == name), None)
