"""Digit Lab's core: data, models, training, runs, evaluation, drawing and explanations.

Nothing here imports Streamlit except core.widgets; TensorFlow is imported only where it is needed.
"""

import os

# TensorFlow's C++ start-up chatter (oneDNN notes, CPU feature lists) means nothing to a user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
