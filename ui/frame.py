"""Every page's first call: page config, the shared sidebar (navigation, run picker, data source).

Pages import this and call `page(...)`; nothing is copied from page to page.
"""

from __future__ import annotations

import streamlit as st

from core.data import DataError, MnistData
from core.runs import RunInfo
from ui import patch, resources, visitor

PAGES = (
    ("app.py", "Home", ":material/home:"),
    ("pages/1_Train.py", "Train", ":material/model_training:"),
    ("pages/2_Explore.py", "Explore", ":material/query_stats:"),
    ("pages/3_Draw.py", "Draw", ":material/draw:"),
)
RUN_KEY = "run"
"""Session-state key of the run chosen in the sidebar (a plain key, so it survives page switches)."""


def setup_page(title: str, icon: str = ":material/pin:", wide: bool = True) -> None:
    """Page config, the visitor, shared state and the sidebar's navigation."""
    patch.apply()
    st.set_page_config(
        page_title=f"{title} · Digit Lab",
        page_icon=icon,
        layout="wide" if wide else "centered",
    )
    visitor.identify()
    if RUN_KEY not in st.session_state:
        st.session_state[RUN_KEY] = st.query_params.get("run")
    elif "run" in st.query_params and st.query_params["run"] != st.session_state[RUN_KEY]:
        # A link such as Train's "open in Explore" names a run: it wins.
        st.session_state[RUN_KEY] = st.query_params["run"]
    with st.sidebar:
        st.markdown("### :material/grid_view: Digit Lab")
        for path, label, page_icon in PAGES:
            st.page_link(path, label=label, icon=page_icon)
        st.divider()
    visitor.operator_box()


def run_label(info: RunInfo) -> str:
    """How a run is named in pickers: name, accuracy, whose it is, and a mark for the default."""
    acc = f"{info.test_accuracy:.2%}" if info.test_accuracy is not None else "n/a"
    tag = " (shipped default)" if info.builtin else ""
    stopped = " (stopped)" if info.status == "stopped" else ""
    me = visitor.me()
    shared = (
        "" if info.builtin or info.owner == me else f" · {visitor.display_name(info.owner, me)}"
    )
    return f"{info.name}{tag}{stopped} · {acc}{shared}"


def pickable_runs(runs: list[RunInfo]) -> tuple[list[RunInfo], RunInfo | None]:
    """The runs a visitor may pick (theirs first, then the shipped model, then others' shared
    ones) and their default: their own latest finished run, else the shipped model, never
    someone else's."""
    me = visitor.me()
    mine = [r for r in runs if r.owner == me]
    shipped = [r for r in runs if r.builtin]
    others = [r for r in runs if r.owner != me and not r.builtin]
    finished = [r for r in mine if r.status == "finished"]
    default = finished[0] if finished else (shipped[0] if shipped else None)
    return mine + shipped + others, default


def run_picker() -> RunInfo | None:
    """The sidebar's run picker; returns the chosen run, or None when there is none."""
    runs, bad = resources.list_runs()
    runs, default = pickable_runs(runs)
    with st.sidebar:
        if not runs:
            st.info("No trained model yet: train one on the **Train** page.")
            return None
        names = [r.name for r in runs]
        labels = {r.name: run_label(r) for r in runs}  # format_func must not read the session
        wanted = st.session_state.get(RUN_KEY)
        if wanted not in names:
            wanted = default.name if default else names[0]
        choice = st.selectbox(
            "Model",
            names,
            index=names.index(wanted),
            format_func=labels.__getitem__,
            help="The trained run that Explore and Draw use: yours, the shipped one, or one "
            "another visitor shared (read-only). Train new ones on the Train page.",
        )
        st.session_state[RUN_KEY] = choice
        if st.query_params.get("run") != choice:
            st.query_params["run"] = choice
        if bad:
            st.warning(
                f"{len(bad)} run folder(s) could not be read: "
                + ", ".join(b.name for b in bad)
                + ". See the Train page."
            )
        return runs[names.index(choice)]


def data_caption(data: MnistData) -> None:
    """The sidebar's note on where the data came from."""
    with st.sidebar:
        if data.is_sample:
            st.warning(f"**Offline sample.** {data.description}.")
        else:
            st.caption(f"Data: {data.description}")


def page(title: str, icon: str) -> tuple[MnistData, RunInfo | None]:
    """Every page's first call: the frame, the data (with its caption) and the chosen run."""
    setup_page(title, icon)
    try:
        data = resources.get_data()
    except DataError as exc:
        st.error(
            f"MNIST could not be loaded: {exc}\n\nFix or remove that file, or point `MNIST_DIR` "
            "at a folder holding the four MNIST files (or a Keras `mnist.npz`), then reload.",
            icon=":material/database:",
        )
        st.stop()
    data_caption(data)
    return data, run_picker()
