"""Explore page (being built)."""

import streamlit as st

from core import widgets

widgets.setup_page("Explore", ":material/query_stats:")
widgets.data_caption(widgets.get_data())
widgets.run_picker()
st.title("Explore")
st.info("This page is being built.")
