"""Every Streamlit piece that is not a page: the frame and sidebar, cached loaders, components.

Pages call into this package; `core/` never imports it (nor Streamlit).
"""

from core import memory

# The app's process, set up once before any page imports TensorFlow (core.memory says why).
memory.configure()
