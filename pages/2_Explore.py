"""Explore: the dataset, the tutorial's preprocessing, and the images behind a model's mistakes."""

import streamlit as st

from ui import frame
from ui.explore import dataset, errors, preprocessing

VIEWS = ("Dataset", "Preprocessing", "Errors")

data, run = frame.page("Explore", ":material/query_stats:")

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

if view == "Dataset":
    dataset.overview(data)
    split = dataset.samples(data, run)
    dataset.class_averages(data, split)
    dataset.pixel_intensities(data, split)
    dataset.digit_map(data, run)

elif view == "Preprocessing":
    split, index, steps = preprocessing.one_digit(data)
    preprocessing.augmentation(run, split, index, steps)

elif run is None:
    st.info(
        "No trained model yet, so there are no mistakes to look at. Train one on the Train "
        "page (the fast preset takes a few minutes), then come back. The Dataset and "
        "Preprocessing views work without a model."
    )
    st.page_link("pages/1_Train.py", label="Go to Train", icon=":material/model_training:")

elif (ev := errors.summary(run)) is not None:
    errors.confusion(data, ev)
    errors.per_class(ev)
    errors.mistakes(data, ev)
    errors.detail(data, run, ev)
    errors.compare(data, run, ev)
