"""Draw page (being built)."""

import streamlit as st

from core import widgets

widgets.setup_page("Draw", ":material/draw:")
widgets.data_caption(widgets.get_data())
widgets.run_picker()
st.title("Draw")
st.info("This page is being built.")
