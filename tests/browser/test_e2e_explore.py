"""Explore in a real browser: click a confusion-matrix cell and see that cell's test images."""

from __future__ import annotations

import re

import numpy as np
import pytest
from playwright.sync_api import expect

from core.data import LABEL_MAGIC, read_idx
from core.runs import DEFAULT_MODEL_DIR
from tests.browser.support import assert_no_exception, mnist_dir, wait_idle

SLOW = 120_000  # ms: the first Errors render loads Keras, the model, and evaluates 10,000 digits
WAIT = 60_000  # ms: any other rerun, on a busy 2-core machine

pytestmark = pytest.mark.browser

CELL_JS = """([t, p]) => {
  const gd = document.querySelector('.st-key-explore_cm .js-plotly-plot');
  const box = gd.getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  return {x: box.left + xa._offset + xa.d2p(p), y: box.top + ya._offset + ya.d2p(t)};
}"""
IMAGES_LOADED = """() => [...document.querySelectorAll('[data-testid="stImage"] img')]
  .every(img => img.complete && img.naturalWidth > 0)"""
COUNTS_JS = """() => document.querySelector('.st-key-explore_cm .js-plotly-plot')._fullData[0].z"""
CAPTION = '[data-testid="stImageCaption"]'


def mnist_test_labels() -> np.ndarray:
    folder = mnist_dir()
    name = next(
        n for n in ("t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte") if (folder / n).exists()
    )
    return read_idx(folder / name, LABEL_MAGIC)


def click_point(tab, chart, point: dict) -> None:
    """Hover a Plotly point until its tooltip shows (Plotly picks the point on hover), then click."""
    tab.mouse.move(point["x"], point["y"])
    expect(chart.locator(".hoverlayer .hovertext").first).to_be_visible(timeout=WAIT)
    tab.mouse.click(point["x"], point["y"])


def scroll_to(tab, locator) -> None:
    """Bring an element to the top of Streamlit's scrolling main area."""
    locator.scroll_into_view_if_needed()
    tab.evaluate(
        "(y) => document.querySelector('[data-testid=\"stMain\"]').scrollBy(0, y)",
        locator.bounding_box()["y"] - 60,
    )


def captions_in(locator) -> list[str]:
    return locator.locator(CAPTION).all_inner_texts()


def open_errors(page, app_server):
    if not (DEFAULT_MODEL_DIR / "model.keras").exists():
        pytest.skip("the shipped default model is missing")
    page.goto(f"{app_server.url}/Explore?run=default")
    expect(page.get_by_text("Where the data comes from")).to_be_visible(timeout=SLOW)
    page.get_by_role("radio", name="Errors").click()
    chart = page.locator(".st-key-explore_cm .js-plotly-plot")
    expect(chart).to_be_visible(timeout=SLOW)
    return chart


def test_clicking_a_confusion_cell_shows_its_images(page, app_server):
    chart = open_errors(page, app_server)
    counts = np.array(page.evaluate(COUNTS_JS), dtype=int)
    assert counts.shape == (10, 10) and counts.sum() == 10_000
    # The page opens on the most frequent confusion; click the second most frequent one.
    off = counts.copy()
    np.fill_diagonal(off, -1)
    order = np.argsort(-off, axis=None, kind="stable")
    first = np.unravel_index(order[0], off.shape)
    true, pred = (int(v) for v in np.unravel_index(order[1], off.shape))
    expect(page.get_by_text(re.compile(rf"^True {first[0]}, predicted {first[1]}:"))).to_be_visible(
        timeout=WAIT
    )
    # The first run also draws the detail's attention maps: let it end before clicking.
    wait_idle(page, SLOW)

    scroll_to(page, page.get_by_text("Confusion matrix", exact=True))
    click_point(page, chart, page.evaluate(CELL_JS, [true, pred]))
    n = int(counts[true, pred])
    heading = page.get_by_text(re.compile(rf"^True {true}, predicted {pred}: {n:,} images?"))
    expect(heading).to_be_visible(timeout=WAIT)
    expect(page.get_by_role("combobox", name="True digit")).to_have_value(str(true), timeout=WAIT)
    expect(page.get_by_role("combobox", name="Predicted digit")).to_have_value(str(pred))

    # Every image shown is a test digit `true` (by the MNIST label file) with p(pred) given.
    panel = page.locator('[data-testid="stColumn"]').filter(has=heading).last
    pattern = re.compile(rf"^#(\d+) p\({pred}\)=(0\.\d\d|1\.00) p\({true}\)=[01]\.\d\d$")
    cell_captions = panel.locator(CAPTION).filter(has_text=pattern)
    expect(cell_captions).to_have_count(min(n, 24), timeout=WAIT)
    wait_idle(page)
    captions = captions_in(panel)
    matches = [pattern.match(c.strip()) for c in captions]
    assert len(matches) == min(n, 24) and all(matches), captions
    labels = mnist_test_labels()
    assert all(labels[int(m.group(1))] == true for m in matches)
    probs = [float(m.group(2)) for m in matches]
    assert probs == sorted(probs, reverse=True)
    detail = page.get_by_role("spinbutton", name=re.compile("Test image #"))
    expect(detail).to_have_value(matches[0].group(1), timeout=WAIT)
    page.wait_for_function(IMAGES_LOADED, timeout=WAIT)
    assert_no_exception(page)
    assert chart.is_visible()


def test_dataset_map_and_preprocessing(page, app_server):
    page.goto(f"{app_server.url}/Explore?run=default")
    expect(page.locator('[data-testid="stCode"]').first).to_contain_text(
        "x_train shape: (60000, 28, 28)", timeout=SLOW
    )
    expect(page.get_by_text("#0 · 5", exact=True)).to_be_visible(timeout=WAIT)
    page.wait_for_function(IMAGES_LOADED, timeout=WAIT)

    # Beside the map of raw pixels, the same map of the model's learned features.
    scroll_to(page, page.get_by_text("A map of the digits", exact=True))
    page.get_by_text("Beside it: what the model learned").click()
    expect(page.locator(".st-key-explore_map_features .js-plotly-plot")).to_be_visible(timeout=SLOW)
    # Select a point on the pixel map: its digit appears below, with its label.
    pixel_map = page.locator(".st-key-explore_map_pixels .js-plotly-plot")
    expect(pixel_map).to_be_visible(timeout=WAIT)
    wait_idle(page, SLOW)
    target = page.evaluate(
        """() => {
          const gd = document.querySelector('.st-key-explore_map_pixels .js-plotly-plot');
          const t = gd._fullData[0], box = gd.getBoundingClientRect();
          const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
          const i = Math.floor(t.x.length / 2);
          return {x: box.left + xa._offset + xa.d2p(t.x[i]), y: box.top + ya._offset + ya.d2p(t.y[i])};
        }"""
    )
    before = set(page.locator(CAPTION).all_inner_texts())
    click_point(page, pixel_map, target)
    expect(page.get_by_text(re.compile(r"^Selected on the map: "))).to_be_visible(timeout=WAIT)
    wait_idle(page)
    chosen = [c for c in page.locator(CAPTION).all_inner_texts() if c not in before]
    assert chosen, "selecting a point shows no digit"
    labels = mnist_test_labels()
    for caption in chosen:
        index, label = re.match(r"^#(\d+) · (\d)$", caption.strip()).groups()
        assert labels[int(index)] == int(label)
    page.wait_for_function(IMAGES_LOADED, timeout=WAIT)

    page.get_by_role("radio", name="Preprocessing").click()
    expect(page.locator('[data-testid="stCode"]').first).to_contain_text(
        "to_categorical", timeout=WAIT
    )
    page.get_by_text("Show 12 random augmentations of this digit").click()
    draws = page.locator(CAPTION).filter(has_text=re.compile(r"^draw \d+$"))
    expect(draws).to_have_count(12, timeout=SLOW)
    page.wait_for_function(IMAGES_LOADED, timeout=WAIT)
    assert_no_exception(page)
