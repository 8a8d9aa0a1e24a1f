"""Two visitors in two browser contexts (two cookie jars) on one server: whose job is whose, a
reload keeps your job yours, the default model stays the shipped one, the operator's token."""

import re

from playwright.sync_api import expect

from tests.browser.support import ADMIN_TOKEN, assert_no_exception, pick_option, wait_idle

LONG = "/Train?preset=tutorial&train_samples=20000&epochs=5"  # minutes: stopped below
SHORT = "/Train?preset=fast&train_samples=2000&epochs=1"
WAIT = 120_000


def open_train(p, url: str) -> None:
    p.goto(url)
    expect(p.get_by_role("heading", name="Train a network")).to_be_visible(timeout=WAIT)


def test_two_visitors_each_keep_their_own_jobs_and_runs(browser, app_server):
    a = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    b = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    try:
        open_train(a, app_server.url + LONG)
        a.get_by_role("button", name="Train", exact=True).click()
        expect(a.get_by_text(re.compile(r"Running — Training"))).to_be_visible(timeout=WAIT)

        # B is someone else: their own form, A's job only as a place in the queue, no Stop.
        open_train(b, app_server.url + SHORT)
        expect(b.get_by_role("spinbutton", name="Epochs")).to_have_value("1")
        expect(a.get_by_role("spinbutton", name="Epochs")).to_have_value("5")
        expect(b.get_by_text(re.compile(r"training now: another visitor's"))).to_be_visible()
        expect(b.get_by_role("button", name="Stop")).to_have_count(0)
        # While A trains, B's model is the shipped one.
        expect(b.get_by_role("combobox", name="Model")).to_have_value(
            re.compile(r"^default \(shipped default\)")
        )

        # B's own job waits behind A's; B may stop only that one.
        b.get_by_role("button", name="Train", exact=True).click()
        expect(b.get_by_text("Place in the queue: 1")).to_be_visible(timeout=WAIT)
        expect(b.get_by_role("button", name="Stop")).to_be_enabled()

        # A reloads: a new session, the same browser, the same visitor: A's job is still A's.
        a.reload()
        expect(a.get_by_text(re.compile(r"Running — Training"))).to_be_visible(timeout=WAIT)
        expect(a.get_by_role("button", name="Stop")).to_be_enabled(timeout=WAIT)
        a.get_by_role("button", name="Stop").click()
        expect(a.get_by_text(re.compile("keeping what it learned"))).to_be_visible(timeout=WAIT)
        expect(b.get_by_text(re.compile(r"Finished — Test accuracy")).first).to_be_visible(
            timeout=WAIT
        )

        # A's run: B can look but not delete it, until B unlocks moderation.
        runs = {p.name for p in app_server.runs_dir.iterdir() if not p.name.startswith(".")}
        alices = next(name for name in runs if name.startswith("tutorial"))
        b.reload()
        expect(b.get_by_role("heading", name="Runs")).to_be_visible(timeout=WAIT)
        b.get_by_text("Manage a run: rename, delete, download").click()
        pick_option(b, "Run", alices)
        expect(b.get_by_role("button", name="Delete", exact=True)).to_be_disabled()
        wait_idle(b)
        b.locator('[data-testid="stSidebar"]').get_by_text("Operator").click()
        token = b.get_by_label("Admin token")
        token.fill(ADMIN_TOKEN)
        token.press("Enter")
        expect(b.get_by_text("Moderation is on")).to_be_visible(timeout=WAIT)
        wait_idle(b)
        sure = b.get_by_text("Yes, delete it")
        if not sure.is_visible():  # the rerun closed the expander
            b.get_by_text("Manage a run: rename, delete, download").click()
        pick_option(b, "Run", alices)
        sure.click()
        b.get_by_role("button", name="Delete", exact=True).click()
        expect(b.locator('[data-testid="stDataFrame"]').last).not_to_contain_text(
            alices, timeout=WAIT
        )
        assert not (app_server.runs_dir / alices).exists()
        assert_no_exception(a)
        assert_no_exception(b)
    finally:
        a.context.close()
        b.context.close()
