"""The one private Streamlit patch: keep Streamlit from clearing the Keras session after each run.

After every script run, and so after every fragment tick, Streamlit 1.67 calls
`keras.backend.clear_session()` from `script_runner._clean_problem_modules`: it empties
TensorFlow's kernel cache and forces a full garbage collection while a job trains on another
thread. Measured here, that made training with the Train page open 2.6x slower (0.39 -> 0.87 of
the command line's speed once skipped) and a drawing's answer take 0.8 s instead of 0.37 s.
Digit Lab names its layers and models explicitly and never relies on Keras's global session
state, so the step can go. The rest of Streamlit's clean-up (closing matplotlib figures) stays.

`tests/unit/test_ui_walls.py` fails loudly if a Streamlit upgrade renames the private function.
"""

from __future__ import annotations

import sys

from streamlit.runtime.scriptrunner import script_runner

PATCHED_NAME = "_clean_problem_modules"


def clean_without_clearing_keras() -> None:
    """Streamlit's after-run clean-up, minus keras.backend.clear_session()."""
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def apply() -> None:
    """Install the patch (idempotent); raise if Streamlit no longer has the function."""
    if not hasattr(script_runner, PATCHED_NAME):
        raise RuntimeError(
            f"streamlit.runtime.scriptrunner.script_runner.{PATCHED_NAME} is gone: Streamlit "
            "changed its after-run clean-up. Check whether it still clears the Keras session "
            "and update ui/patch.py."
        )
    setattr(script_runner, PATCHED_NAME, clean_without_clearing_keras)
