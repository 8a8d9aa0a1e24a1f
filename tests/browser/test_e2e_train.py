"""Browser end to end, beyond test_browser_train.py: the Train form across a page visit,
and a link with values the form cannot show."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import assert_no_exception

pytestmark = pytest.mark.browser


def test_the_form_survives_a_visit_to_another_page(page, app_server):
    page.goto(app_server.url + "/Train")
    expect(page.get_by_role("heading", name="Train a network")).to_be_visible(timeout=60_000)
    page.locator('[data-testid="stButtonGroup"] button', has_text="fast").click()
    expect(page.get_by_role("spinbutton", name="Block 1 filters")).to_have_value("16")
    expect(page).to_have_url(re.compile(r"preset=fast"))
    # The sidebar's link to Draw, then back to Train: both carry no configuration.
    page.get_by_role("link", name="Draw", exact=True).click()
    expect(page.get_by_role("heading", name="Draw").first).to_be_visible(timeout=60_000)
    page.get_by_role("link", name="Train", exact=True).click()
    expect(page.get_by_role("heading", name="Train a network")).to_be_visible(timeout=60_000)
    expect(page.get_by_role("spinbutton", name="Block 1 filters")).to_have_value("16")
    expect(page.get_by_role("spinbutton", name="Batch size")).to_have_value("256")
    expect(page).to_have_url(re.compile(r"preset=fast"))
    assert_no_exception(page)


def test_a_link_with_bad_values_explains_and_blocks_train(page, app_server):
    page.goto(app_server.url + "/Train?dense_dropout=5&optimizer=foo&epochs=1000")
    expect(page.get_by_role("heading", name="Train a network")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("dense_dropout must be between 0 and 0.9 (got 5)")).to_be_visible()
    expect(page.get_by_text("optimizer='foo' in the link is not readable")).to_be_visible()
    expect(page.get_by_text("epochs must be between 1 and 100 (got 1000)")).to_be_visible()
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_disabled()
    # The link's values are named, never rewritten: the address bar still holds them.
    expect(page).to_have_url(re.compile(r"epochs=1000"))
    expect(page).to_have_url(re.compile(r"dense_dropout=5"))
    assert_no_exception(page)
    # Taking the values the fields show unblocks Train.
    page.get_by_role("button", name="Use the values shown").click()
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_enabled(timeout=60_000)
    expect(page).to_have_url(re.compile(r"epochs=10(&|$)"), timeout=60_000)
    assert_no_exception(page)
