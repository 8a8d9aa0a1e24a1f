"""Browser end to end: strokes replayed on the real canvas give the page the input that the
offline path gives for the same strokes.

Each drawing is replayed on the Draw page (mouse in a 1400x1000 window; a finger on an 800x1200
touch screen at device scale factor 2, sidebar open), and the 28x28 input the page answered for
(the answer's `data-input`) is compared with the same pointer positions drawn in Python as the
canvas draws them (benchmarks/handwriting.render_canvas: the pencil's curves, a round brush of the
slider's width) and prepared by core.drawing.prepare. Tolerance: see
benchmarks/bench_canvas_replay.INPUT_TOLERANCE (a mean absolute difference of 0.02 after the
better of the whole-pixel shifts by at most one; a lost stroke or a clipped canvas differs by
0.05 to 0.3). benchmarks/bench_canvas_replay.py runs the same on 100+ drawings.
"""

import numpy as np
import pytest

from benchmarks.bench_canvas_replay import (
    INPUT_TOLERANCE,
    MOUSE,
    TOUCH,
    input_distance,
    offline_input,
    replay_all,
)
from benchmarks.handwriting import Replay, canvas_replays
from core import explain
from core.runs import DEFAULT_RUN, RunStore
from tests.browser.support import ROOT

pytestmark = pytest.mark.browser
WAIT_S = 60.0
"""Seconds to wait for the expected answer: sized for a busy 2-core machine."""

# Strokes in canvas pixels. Starting at the top right (x 140-280, y 0-30) is where the canvas's
# own toolbar used to sit, invisible, and swallow the stroke; past x 165 is where an 800-pixel
# touch screen with the sidebar open used to clip the canvas.
ONE_TOP_RIGHT = [[(250, 6), (244, 250)]]
FOUR_TWO_STROKES = [[(205, 12), (70, 170), (240, 170)], [(200, 90), (196, 262)]]
SEVEN_TOP_RIGHT = [[(150, 14), (265, 14), (190, 255)]]
ZERO = [[(140, 40), (80, 90), (70, 180), (140, 240), (210, 180), (205, 80), (140, 40)]]


def replays_for(kind: str) -> list[Replay]:
    """A handful of digits at two brush widths, a third of them from the hand-style set."""
    handmade = [
        Replay(ONE_TOP_RIGHT, 14, 1, "a 1 starting under the toolbar"),
        Replay(FOUR_TWO_STROKES, 14, 4, "a two-stroke 4 starting under the toolbar"),
        Replay(SEVEN_TOP_RIGHT, 28, 7, "a 7 starting under the toolbar"),
        Replay(ZERO, 28, 0, "a 0"),
    ]
    styled = [r for r in canvas_replays(12, seed=3) if r.brush in (14, 28)]
    return handmade + (styled[:3] if kind == "mouse" else styled[:1])


def _ink_box(x: np.ndarray) -> str:
    """Where a 28x28 input's ink is (rows and columns above a fifth), to say how two differ."""
    rows, cols = np.nonzero(np.asarray(x).reshape(28, 28) > 0.2)
    if not len(rows):
        return "none"
    return f"{rows.min()}-{rows.max()} x {cols.min()}-{cols.max()} ({len(rows)} pixels)"


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    if not (ROOT / "models" / "default" / "model.keras").exists():
        pytest.fail("models/default/model.keras is missing: the Draw page tests need it")
    return explain.Predictor(RunStore(tmp_path_factory.mktemp("runs")).load_model(DEFAULT_RUN))


@pytest.mark.parametrize("kind", ["mouse", "touch"])
def test_replayed_strokes_give_the_offline_input(browser, app_server, predictor, kind):
    replays = replays_for(kind)
    assert {r.brush for r in replays} == {14, 28}
    assert sum(r.starts_under_toolbar() for r in replays) >= 3
    assert any(len(r.strokes) == 2 for r in replays)
    device = MOUSE if kind == "mouse" else TOUCH
    outcomes = replay_all(browser, app_server.url, replays, device, wait_s=WAIT_S)
    for outcome in outcomes:
        name = outcome.replay.name
        expected = offline_input(outcome.replay)
        assert outcome.page_input is not None, f"{name}: the page answered nothing"
        distance = input_distance(outcome.page_input, expected)
        assert distance <= INPUT_TOLERANCE, (
            f"{name}: inputs differ by {distance:.3f}; ink rows and columns on the page "
            f"{_ink_box(outcome.page_input)}, offline {_ink_box(expected)}"
        )
        offline_answer = int(np.argmax(predictor(expected)))
        assert outcome.page_answer == offline_answer, f"{name}: page {outcome.page_answer}"
