"""Train: tune the network, launch training, watch it live, stop it, compare runs."""

import pandas as pd
import streamlit as st

from core import train_form
from core.models import estimate_training_seconds
from ui import frame, job_panel, resources, resume_panel, runs_panel, visitor
from ui.config_form import config_form, init_state

data, _ = frame.page("Train", ":material/model_training:")
available = len(data.x_train)
init_state({k: v for k, v in st.query_params.to_dict().items() if k != "run"}, available)

st.title("Train a network")
st.caption(
    "Pick the tutorial's network or change it, press Train and watch it learn. "
    "The page's address holds the whole setup: share it to reproduce this run."
)

form, side = st.columns([0.55, 0.45], gap="large")
with form:
    result = config_form(available, resources.get_examples(visitor.me()).count())
    st.caption(f"Data: {data.label}. {data.description}.")
config, errors = result.config, result.errors

# Keep the whole configuration in the address bar, so a link reproduces this setup.
query = config.to_query()
if any(st.query_params.get(k) != v for k, v in query.items()):
    st.query_params.update(query)
if config.train_samples is None and "train_samples" in st.query_params:
    del st.query_params["train_samples"]

with side:
    st.markdown("**Model summary**")
    if errors:
        st.warning("Fix the highlighted fields to see the model.", icon=":material/warning:")
    else:
        rows, total = st.cache_data(train_form.summary_rows, max_entries=64, show_spinner=False)(
            config
        )
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        n_train, _ = config.split_sizes(available)
        st.markdown(
            f"**{total:,} parameters** · {n_train:,} training digits · "
            f"≈ **{estimate_training_seconds(config, available):.0f} s** on 2 cores"
        )

busy = job_panel.train_button(config, errors, result.unshown)
job_panel.queue_view()
resume_panel.interrupted(busy)
resume_panel.continue_run(busy)
job = job_panel.chosen_job()
if job is not None:
    job_panel.watch(job, data)

runs_panel.runs_section()
