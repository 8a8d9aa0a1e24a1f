"""Your own model: a .keras upload, shared by Explore and Draw, that becomes one of your runs.

The checks, loading, evaluation and saving are `core.upload`'s; this draws the uploader in the
sidebar under the Model picker, and makes the new run the chosen one.
"""

from __future__ import annotations

import streamlit as st

from core import upload
from core.runs import RunError
from ui import resources, visitor
from ui.frame import RUN_KEY


def model_upload(prefix: str) -> None:
    """Under the sidebar's Model picker: upload a .keras, add it as a run, and pick it.

    `prefix` is the page's key prefix ("explore", "draw"): each page keeps its own uploader.
    """
    result_key = f"{prefix}_model_upload"
    with st.sidebar:
        with st.popover("Use your own model", icon=":material/upload_file:", width="stretch"):
            st.caption(
                "A Keras 3 model saved with `model.save('name.keras')` that takes 28×28×1 digits "
                f"and answers with 10 probabilities, up to {upload.MAX_UPLOAD_MB} MB. It is "
                "loaded in safe mode (no code in it runs), evaluated on the test digits and "
                "added to your runs."
            )
            file = st.file_uploader(
                "Your .keras file",
                type=["keras"],
                key=f"{prefix}_model_file",
                max_upload_size=upload.MAX_UPLOAD_MB,
                on_change=st.session_state.pop,
                args=(result_key, None),
            )
            add = st.button(
                "Add it as a run",
                type="primary",
                icon=":material/add:",
                key=f"{prefix}_model_add",
                disabled=file is None,
            )
            if add and file is not None:
                _add(file.name, file.getvalue(), result_key)
            result = st.session_state.get(result_key)
            if result and result.get("error"):
                st.error(result["error"], icon=":material/error:")
            elif result and result.get("run") == st.session_state.get(RUN_KEY):
                st.success(result["text"], icon=":material/check_circle:")


def _add(name: str, data: bytes, result_key: str) -> None:
    """Check, evaluate and save the upload; on success choose the new run and redraw the page."""
    with st.spinner("Checking your model and evaluating it on the test digits…"):
        try:
            info = upload.import_model(
                data, name, resources.get_store(), resources.get_data(), owner=visitor.me()
            )
        except (upload.UploadError, RunError) as exc:
            st.session_state[result_key] = {"error": str(exc)}
            return
    st.session_state[result_key] = {
        "run": info.name,
        "text": f"**{info.name}** is one of your runs: test accuracy {info.test_accuracy:.2%}.",
    }
    st.session_state[RUN_KEY] = info.name
    st.query_params["run"] = info.name
    st.rerun()
