"""Every page's first call: page config, the shared sidebar (navigation, run picker, data source).

Pages import this and call `page(...)`; nothing is copied from page to page.
"""

from __future__ import annotations

import streamlit as st

from core.data import MnistData
from core.runs import RunInfo
from ui import patch, resources

PAGES = (
    ("app.py", "Home", ":material/home:"),
    ("pages/1_Train.py", "Train", ":material/model_training:"),
    ("pages/2_Explore.py", "Explore", ":material/query_stats:"),
    ("pages/3_Draw.py", "Draw", ":material/draw:"),
)
RUN_KEY = "run"
"""Session-state key of the run chosen in the sidebar (a plain key, so it survives page switches)."""


def setup_page(title: str, icon: str = ":material/pin:", wide: bool = True) -> None:
    """Page config, shared state and the sidebar's navigation."""
    patch.apply()
    st.set_page_config(
        page_title=f"{title} · Digit Lab",
        page_icon=icon,
        layout="wide" if wide else "centered",
    )
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


def run_label(info: RunInfo) -> str:
    """How a run is named in pickers: name, accuracy, and a mark for the default model."""
    acc = f"{info.test_accuracy:.2%}" if info.test_accuracy is not None else "n/a"
    tag = " (shipped default)" if info.builtin else ""
    stopped = " (stopped)" if info.status == "stopped" else ""
    return f"{info.name}{tag}{stopped} · {acc}"


def run_picker() -> RunInfo | None:
    """The sidebar's run picker; returns the chosen run, or None when there is none."""
    runs, bad = resources.list_runs()
    with st.sidebar:
        if not runs:
            st.info("No trained model yet: train one on the **Train** page.")
            return None
        names = [r.name for r in runs]
        wanted = st.session_state.get(RUN_KEY)
        index = names.index(wanted) if wanted in names else 0
        choice = st.selectbox(
            "Model",
            names,
            index=index,
            format_func=lambda n: run_label(runs[names.index(n)]),
            help="The trained run that Explore and Draw use. Train new ones on the Train page.",
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
    data = resources.get_data()
    data_caption(data)
    return data, run_picker()
