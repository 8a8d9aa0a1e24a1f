"""AppTest helpers shared by the page tests."""

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
