"""Saved runs on the Train page: the table, curves and hyperparameters compared, rename, delete,
download."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import charts, export, records, train_form
from core.runs import COLUMN_FORMATS, COLUMN_SPECS, DEFAULT_RUN, RunError, RunInfo
from ui import resources, visitor


def runs_section() -> None:
    """Everything about saved runs, or an invitation to train one."""
    st.subheader("Runs")
    runs, bad = resources.list_runs()
    _unreadable(bad)
    if not runs:
        st.info("No saved runs yet: train one above.")
        return
    chosen = _table(runs)
    _compare(runs, chosen)
    _manage(runs)


def _unreadable(bad) -> None:
    """Run folders that cannot be read: why, and a way to delete them."""
    for b in bad:
        c1, c2 = st.columns([0.85, 0.15], vertical_alignment="center")
        c1.warning(f"Run folder **{b.name}** is unreadable and was skipped: {b.reason}")
        allowed = visitor.may_change(None) and b.name != DEFAULT_RUN
        if c2.button(
            "Delete it",
            key=f"train_delete_bad_{b.name}",
            disabled=not allowed,
            help=None if allowed else "Only the operator can delete the deployment's folders.",
        ):
            try:
                resources.get_store().delete(b.name)
                st.rerun()
            except RunError as exc:
                c1.error(str(exc))


def _table(runs: list[RunInfo]) -> list[RunInfo]:
    table = pd.DataFrame([_row(r) for r in runs])
    me = visitor.me()
    table.insert(1, "owner", [visitor.display_name(r.owner, me) for r in runs])
    table["test_accuracy"] = table["test_accuracy"] * 100
    formats = {
        name: st.column_config.NumberColumn(name, format=fmt)
        for name, fmt in COLUMN_FORMATS.items()
    }
    picked = st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="multi-row",
        key="train_runs_table",
        column_config=formats
        | {
            "test_accuracy": st.column_config.NumberColumn("test accuracy", format="%.2f%%"),
            "train_seconds": st.column_config.NumberColumn("train s", format="%.1f"),
        },
    )
    chosen = [runs[i] for i in picked.selection.rows] if picked else []
    _exports(runs, chosen)
    return chosen


def _row(info: RunInfo) -> dict:
    """A table row; an uploaded model's knob columns are blank, since nobody knows them."""
    row = info.row()
    if info.meta.get("uploaded"):
        row.update({spec.knob.column: None for spec in COLUMN_SPECS})
        row.update(preset="uploaded", blocks="")
    return row


def _exports(runs: list[RunInfo], chosen: list[RunInfo]) -> None:
    """Download buttons: the runs table, and one run's history (the first selected by default)."""
    table, pick, history = st.columns([0.3, 0.3, 0.4], vertical_alignment="bottom")
    with table:
        st.caption("The runs table")
        a, b = st.columns(2)
        a.download_button(
            "CSV",
            data=lambda: export.table_csv(runs),
            file_name="digitlab-runs.csv",
            mime="text/csv",
            icon=":material/download:",
            key="train_export_table_csv",
        )
        b.download_button(
            "JSON",
            data=lambda: export.table_json(runs),
            file_name="digitlab-runs.json",
            mime="application/json",
            icon=":material/download:",
            key="train_export_table_json",
        )
    offered = chosen or runs
    names = [r.name for r in offered]
    if st.session_state.get("train_export_run") not in names:
        st.session_state["train_export_run"] = names[0]
    name = pick.selectbox(
        "History of run",
        names,
        key="train_export_run",
        help="The runs selected in the table, or every run when none is selected.",
    )
    info = offered[names.index(name)]
    with history:
        a, b, c = st.columns(3)
        a.download_button(
            "Per epoch CSV",
            data=lambda: export.history_csv(info.history),
            file_name=f"{name}-history.csv",
            mime="text/csv",
            key="train_export_history_csv",
        )
        b.download_button(
            "Per batch CSV",
            data=lambda: export.history_csv(info.history, per_batch=True),
            file_name=f"{name}-batches.csv",
            mime="text/csv",
            key="train_export_batches_csv",
            disabled=not info.history.get("per_batch"),
            help=None
            if info.history.get("per_batch")
            else "This run was saved before runs kept their per-batch curve.",
        )
        c.download_button(
            "All as JSON",
            data=lambda: export.run_json(info),
            file_name=f"{name}.json",
            mime="application/json",
            key="train_export_history_json",
        )


def _compare(runs: list[RunInfo], chosen: list[RunInfo]) -> None:
    view = st.segmented_control(
        "Compare",
        ["Curves of the selected runs", "Hyperparameters vs accuracy"],
        default="Curves of the selected runs",
        key="train_compare",
    )
    if view == "Curves of the selected runs":
        if not chosen:
            st.caption("Select rows in the table to overlay their curves.")
            return
        metric_col, kind_col, scale_col = st.columns([0.4, 0.35, 0.25], vertical_alignment="bottom")
        metric = metric_col.radio(
            "Metric",
            ["accuracy", "loss", "learning_rate"],
            format_func=lambda m: m.replace("_", " "),
            horizontal=True,
            key="train_overlay_metric",
        )
        kind = kind_col.segmented_control(
            "Points",
            ["Per epoch", "Per batch, smoothed"],
            default="Per epoch",
            required=True,
            key="train_overlay_kind",
        )
        log_x = scale_col.toggle("Log-scale x", key="train_overlay_log_x")
        st.plotly_chart(
            charts.runs_overlay(
                {r.name: records.with_batches(r.history) for r in chosen},
                metric,
                per_batch=kind == "Per batch, smoothed",
                smoothing=st.session_state.get("train_smoothing", 0.6),
                log_x=log_x,
                early_stopping={r.name: r.meta.get("early_stopping") for r in chosen},
            ),
            key="train_overlay",
        )
        st.caption(
            "Open markers: an epoch cut short by Stop, at the epochs it trained. Stars: the best "
            "epoch that early stopping kept; crosses: where it fired."
        )
    elif view:
        trained = [r for r in runs if not r.meta.get("uploaded")]
        st.plotly_chart(
            charts.parallel_coordinates(
                train_form.parallel_rows(trained), train_form.parallel_dimensions()
            ),
            key="train_parallel",
        )


def _manage(runs: list[RunInfo]) -> None:
    store = resources.get_store()
    with st.expander("Manage a run: rename, delete, download"):
        names = [r.name for r in runs]
        name = st.selectbox("Run", names, key="train_manage_run")
        info = runs[names.index(name)]
        allowed = visitor.may_change(info.owner) and not info.builtin
        why = (
            "The shipped default model cannot be changed."
            if info.builtin
            else None
            if allowed
            else "Only the operator can change the deployment's runs."
            if info.owner is None
            else f"Only {visitor.display_name(info.owner)}, who trained it, can change this run."
        )
        c1, c2, c3 = st.columns(3)
        new = c1.text_input(
            "New name", value=name, key=f"train_rename_{name}", disabled=not allowed, help=why
        )
        if c1.button("Rename", key="train_rename", disabled=not allowed or new == name, help=why):
            try:
                store.rename(name, new)
                st.rerun()
            except RunError as exc:
                c1.error(str(exc))
        sure = c2.checkbox(
            "Yes, delete it", key=f"train_sure_{name}", disabled=not allowed, help=why
        )
        if c2.button("Delete", key="train_delete", disabled=not allowed or not sure, help=why):
            try:
                store.delete(name)
                st.rerun()
            except RunError as exc:
                c2.error(str(exc))
        c3.download_button(
            "Download .keras",
            data=lambda: store.model_bytes(name),  # read the file only when it is downloaded
            file_name=f"{name}.keras",
            mime="application/octet-stream",
            key="train_download",
        )
