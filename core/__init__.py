"""Digit Lab's core: data, models, training, runs, evaluation, drawing and explanations.

Nothing here imports Streamlit (the ui package holds every Streamlit piece), TensorFlow is imported
only where it is needed, and importing a module changes no process-wide state (no environment
variables, no seeds). The programs that use core set up their process once, before TensorFlow is
imported: the app in ui/__init__.py, the command line and the workers in their main()
(`core.memory.configure`).
"""
