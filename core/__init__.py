"""Digit Lab's core: data, models, training, runs, evaluation, drawing and explanations.

Nothing here imports Streamlit (the ui package holds every Streamlit piece); TensorFlow is imported
only where it is needed.
"""

import os

from core import memory

# TensorFlow's C++ start-up chatter (oneDNN notes, CPU feature lists) means nothing to a user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Before any TensorFlow import: memory that is freed goes back to the system (core.memory).
memory.configure()
