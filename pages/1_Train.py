"""Train: tune the network, launch training, watch it live, stop it, compare runs."""

import streamlit as st

from ui import frame, job_panel, resources, resume_panel, runs_panel, summary_panel, visitor
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
    summary_panel.summary(config, errors, available)

busy = job_panel.train_button(config, errors, result.unshown)
job_panel.queue_view()
resume_panel.interrupted(busy)
resume_panel.continue_run(busy)
job = job_panel.chosen_job()
if job is not None:
    job_panel.watch(job, data)

runs_panel.runs_section()
