"""Train page (being built)."""

import streamlit as st

from core import widgets

widgets.setup_page("Train", ":material/model_training:")
widgets.data_caption(widgets.get_data())
widgets.run_picker()
st.title("Train")
st.info("This page is being built.")
