"""Carry on training: resume a job a restart interrupted, or train a saved run further."""

from __future__ import annotations

import dataclasses
import time

import streamlit as st

from core.engine import EngineError, JobRequest
from core.models import SPECS, ConfigError
from core.runs import RunError
from ui import job_panel, resources, visitor


def _submit(request: JobRequest) -> None:
    try:
        job = resources.get_engine().submit(request)
    except (EngineError, RunError, ConfigError) as exc:
        st.session_state["train_resume_error"] = str(exc)
        return
    st.session_state.pop("train_resume_error", None)
    st.session_state[job_panel.JOB] = job.id
    st.session_state[job_panel.PICK] = job.id


def _resume(checkpoint_id: str, config) -> None:
    _submit(JobRequest(config, owner=visitor.me(), resume=checkpoint_id))


def _continue(run_name: str, config, use_examples: bool) -> None:
    extra = resources.get_examples(visitor.me()).load() if use_examples else None
    _submit(JobRequest(config, owner=visitor.me(), extra_examples=extra, start_from=run_name))


def interrupted(busy: bool) -> None:
    """This visitor's interrupted jobs (an operator sees everyone's), each with Resume."""
    engine = job_panel.engine()
    if engine is None:
        return
    found = engine.interrupted(visitor.me(), everyone=visitor.is_admin())
    if st.session_state.get("train_resume_error"):
        st.error(st.session_state["train_resume_error"], icon=":material/error:")
    for c in found:
        when = time.strftime("%H:%M", time.localtime(c.saved_at))
        c1, c2, c3 = st.columns([0.64, 0.18, 0.18], vertical_alignment="center")
        c1.warning(
            f"**Interrupted**: a {c.config.preset} job, {c.epochs_done} of {c.config.epochs} "
            f"epochs done (checkpoint saved at {when}, {c.train_seconds:.0f} s of training). "
            "The server restarted or its worker was lost.",
            icon=":material/pause_circle:",
        )
        c2.button(
            "Resume",
            key=f"train_resume_{c.id}",
            icon=":material/play_arrow:",
            on_click=_resume,
            args=(c.id, c.config),
            disabled=busy,
            help="Your job is still running." if busy else "Carry on from the last epoch.",
        )
        c3.button(
            "Discard",
            key=f"train_discard_{c.id}",
            on_click=engine.discard,
            args=(c.id,),
            disabled=not visitor.may_change(c.owner),
        )


def continue_run(busy: bool) -> None:
    """Train a saved run further: more epochs, with the visitor's labelled drawings if wanted."""
    runs = [r for r in resources.list_runs()[0] if r.status in ("finished", "stopped")]
    with st.expander("Continue training a saved run", icon=":material/fast_forward:"):
        if not runs:
            st.caption("Train a run first; then it can be trained further here.")
            return
        names = [r.name for r in runs]
        c1, c2, c3 = st.columns([0.45, 0.25, 0.3], vertical_alignment="bottom")
        name = c1.selectbox("Run", names, key="train_continue_run")
        lo, hi = int(SPECS["epochs"].knob.lo), int(SPECS["epochs"].knob.hi)
        more = c2.number_input("More epochs", lo, hi, 2, key="train_continue_epochs")
        count = resources.get_examples(visitor.me()).count()
        use = c3.checkbox(
            f"Add my {count} labelled drawing(s)",
            key="train_continue_examples",
            disabled=count == 0,
        )
        info = runs[names.index(name)]
        config = dataclasses.replace(info.config, epochs=int(more))
        problems = config.errors(len(resources.get_data().x_train))
        for message in problems.values():
            st.error(message, icon=":material/error:")
        st.caption(
            f"Starts from {name}'s weights ({info.meta.get('epochs_completed', '?')} epochs) with "
            "a fresh optimizer and schedule; the result is a new run of yours."
        )
        st.button(
            "Continue",
            key="train_continue",
            icon=":material/fast_forward:",
            on_click=_continue,
            args=(name, config, use),
            disabled=busy or bool(problems),
            help="Your job is still running." if busy else None,
        )
