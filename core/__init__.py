"""Digit Lab's core: data, models, training, runs, evaluation, drawing and explanations.

Nothing here imports Streamlit except core.widgets; TensorFlow is imported only where it is needed.
"""
