"""AppTest helpers shared by the page tests."""

import re
import time

from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


def open_page(page: str, query: dict | None = None, state: dict | None = None) -> AppTest:
    """Run app.py, then switch to a page (directory mode), optionally with URL parameters and
    session state set first (a visitor id, say)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    if page != "app.py":
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def run_until(at: AppTest, condition, timeout: float = 120.0) -> AppTest:
    """Rerun the page (a fragment ticks once per run) until condition(at) holds."""
    deadline = time.monotonic() + timeout
    while True:
        at.run()
        assert not at.exception, at.exception
        if condition(at):
            return at
        assert time.monotonic() < deadline, "the page never reached the expected state"
        time.sleep(0.2)


def page_text(at: AppTest) -> str:
    """All markdown, captions, alerts and metrics of the page as one string."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    for kind in ("error", "warning", "info", "success"):
        parts += [e.value for e in getattr(at, kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


def live_batches(at: AppTest) -> int:
    """Batches on the Train page's live loss chart (the light SVG one, drawn while a job trains
    with interactive charts off); 0 when there is none."""
    for m in at.markdown:
        if "<svg" in m.value and "Loss:" in m.value:
            return int(re.search(r'data-batches="(\d+)"', m.value).group(1))
    return 0


def probe_cells(at: AppTest) -> list[tuple[str, int, int, int]]:
    """The Train page's probe strip, per digit: ("right" or "wrong", guess, percent, truth)."""
    strips = [h.proto.body for h in at.get("html") if "probe-strip" in h.proto.body]
    if not strips:
        return []
    cells = re.findall(
        r'<figure class="probe (right|wrong)".*?guess <b>(\d)</b> \((\d+)%\).*?true (\d)',
        strips[-1],
    )
    return [(v, int(g), int(p), int(t)) for v, g, p, t in cells]
