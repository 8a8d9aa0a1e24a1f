"""Every Streamlit piece that is not a page: the frame and sidebar, cached loaders, components.

Pages call into this package; `core/` never imports it (nor Streamlit).
"""
