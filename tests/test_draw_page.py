"""AppTest of the Draw page with a simulated canvas (AppTest runs no JavaScript)."""

import sys
import types

import numpy as np
import pytest
from PIL import Image

from tests.pages_support import open_page, page_text

DRAW = "pages/3_Draw.py"


class FakeCanvasResult:
    def __init__(self, image):
        self.image_data = image


def canvas_of(digit: np.ndarray) -> np.ndarray:
    """A real MNIST digit drawn large on a 280x280 black RGBA canvas, as the component returns."""
    big = np.asarray(Image.fromarray(digit).resize((200, 200), Image.Resampling.BILINEAR))
    gray = np.zeros((280, 280), np.uint8)
    gray[30:230, 50:250] = big
    return np.dstack([gray, gray, gray, np.full_like(gray, 255)])


@pytest.fixture
def fake_canvas(monkeypatch):
    holder = {
        "image": np.dstack([np.zeros((280, 280, 3), np.uint8), np.full((280, 280), 255, np.uint8)])
    }
    # The page imports st_canvas from this module: a stand-in returns the "drawn" image.
    fake = types.ModuleType("streamlit_drawable_canvas")
    fake.st_canvas = lambda **kw: FakeCanvasResult(holder["image"])
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", fake)
    return holder


def answer(at) -> str:
    html = [m.value for m in at.markdown if "draw-answer" in m.value]
    return html[0].split(">")[-2].split("<")[0] if html else ""


def test_empty_canvas_invites_to_draw(app_env, fake_canvas):
    at = open_page(DRAW)
    assert "Draw a digit on the black square" in page_text(at)
    assert answer(at) == ""


def test_a_drawn_digit_is_read_and_explained(app_env, fake_canvas, mnist):
    index = 0  # a 7
    fake_canvas["image"] = canvas_of(mnist.x_test[index])
    at = open_page(DRAW)
    assert answer(at) == str(mnist.y_test[index])
    assert "Top three" in page_text(at)
    charts = at.get("plotly_chart")
    assert len(charts) >= 2  # probabilities and the Grad-CAM overlay
    # Why not a 1? The explanation follows the chosen class.
    at.selectbox(key="draw_target").set_value(1).run()
    assert "The model gives **1** a probability" in page_text(at)
    at.segmented_control(key="draw_view").set_value("Activations").run()
    assert not at.exception
    assert len(at.get("plotly_chart")) >= 3  # one grid per conv layer
    at.toggle(key="draw_naive").set_value(True).run()
    assert "Without cropping and centring" in page_text(at)


def test_teach_it_back_saves_the_example(app_env, fake_canvas, mnist):
    fake_canvas["image"] = canvas_of(mnist.x_test[1])
    at = open_page(DRAW)
    at.selectbox(key="draw_label").set_value(3)
    at.button[-1].click().run()  # the form's submit button
    assert "Saved as a 3" in page_text(at)
    files = list((app_env / "examples").glob("3-*.npy"))
    assert len(files) == 1
    saved = np.load(files[0])
    assert saved.shape == (28, 28) and saved.dtype == np.uint8 and saved.max() > 200


def test_upload_of_garbage_gives_a_clear_message(app_env, fake_canvas):
    at = open_page(DRAW)
    at.segmented_control(key="draw_source").set_value("Upload").run()
    assert not at.exception
    assert "PNG or JPEG" in at.get("file_uploader")[0].proto.label


def test_a_model_that_does_not_fit_is_named(app_env, fake_canvas):
    import keras

    from core.models import ModelConfig
    from core.runs import RunStore

    inputs = keras.Input((32, 32, 3))
    model = keras.Model(
        inputs, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs))
    )
    RunStore(app_env / "runs").save_run(
        model, ModelConfig(), {}, {"test_accuracy": 0.1}, {}, "cifar-ish"
    )
    at = open_page(DRAW, {"run": "cifar-ish"})
    assert any("Run 'cifar-ish' expects inputs of shape" in e.value for e in at.error)
