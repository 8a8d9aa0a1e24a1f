"""Digit Lab's core: data, models, training, runs, evaluation, drawing and explanations.

Nothing here imports Streamlit (the ui package holds every Streamlit piece), TensorFlow is imported
only where it is needed, and importing a module changes no process-wide state (no environment
variables, no seeds): the command line quiets TensorFlow's start-up notes in its main().
"""
