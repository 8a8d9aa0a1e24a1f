"""A visitor's own labelled drawings ("teach it back"): a list they can look through and prune.

Nobody else sees them: each visitor's drawings live in a folder of their own.
"""

from __future__ import annotations

import streamlit as st

from core.draw_session import a
from core.drawing import enlarge
from core.runs import RunError
from ui import resources, visitor

COLUMNS = 8
SHOWN = 48


def _delete(name: str) -> None:
    try:
        resources.get_examples(visitor.me()).delete(name)
        st.session_state.pop("drawings_error", None)
    except RunError as exc:
        st.session_state["drawings_error"] = str(exc)


def my_drawings() -> None:
    """The visitor's labelled drawings, newest first, each with its label and a delete button."""
    examples = resources.get_examples(visitor.me()).examples()
    title = f"Your labelled drawings ({len(examples)})"
    with st.expander(title, icon=":material/collections:", expanded=False):
        if not examples:
            st.caption("None yet. Only you see the drawings you label here.")
            return
        if st.session_state.get("drawings_error"):
            st.error(st.session_state["drawings_error"], icon=":material/error:")
        shown = examples[::-1][:SHOWN]
        more = f"; the newest {SHOWN} are shown" if len(examples) > SHOWN else ""
        st.caption(f"Only you see these{more}. Train adds them when you tick the box there.")
        for start in range(0, len(shown), COLUMNS):
            for col, example in zip(
                st.columns(COLUMNS), shown[start : start + COLUMNS], strict=False
            ):
                col.image(enlarge(example.image, 3), caption=a(example.label), width="stretch")
                col.button(
                    "Delete",
                    key=f"drawings_delete_{example.name}",
                    icon=":material/delete:",
                    on_click=_delete,
                    args=(example.name,),
                )
