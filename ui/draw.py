"""The Draw page's Streamlit pieces: the input, the answer, what the model sees, why, teach it back.

Each function draws one part of the page; `pages/3_Draw.py` lays them out. The work on a drawing
(preprocessing, prediction, explanations, wording) lives in `core.draw_session`.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from core import charts, draw_session, drawing, explain, memory
from core.draw_session import Reading, a, pct
from core.models import estimate_training_seconds, preset
from core.runs import RunError
from ui import model_upload, resources, visitor

if TYPE_CHECKING:
    import keras
    from streamlit.delta_generator import DeltaGenerator

_DECODING = threading.Lock()
"""One upload decodes at a time in the whole server: a large PNG costs up to 450 MB while it
decodes, and several visitors uploading at once must not add those up."""
CANVAS = 280
"""Side of the drawing square in pixels."""
VIEWS = [*draw_session.METHODS, "Activations"]
FILTERS_PER_PAGE = 16
"""Filters shown at once per convolution layer; a pager reaches the others."""
BIG = (
    "<div style='text-align:center;opacity:0.7'>{label}</div><div {attrs} style='font-size:7rem;"
    "font-weight:700;line-height:1;text-align:center;opacity:{opacity}'>{text}</div>"
)
"""The big digit (or "?") with its label above."""
HTML = {"unsafe_allow_html": True}
VIEW_HELP = (
    "Grad-CAM: where the last convolution layer found evidence. Saliency: the pixels the "
    "score is most sensitive to. Occlusion: what covering each patch does to the probability, in "
    "percentage points. Activations: every filter, the dense layer and the softmax."
)


CANVAS_FIX = """<script>
(() => {
  // streamlit-drawable-canvas keeps an invisible toolbar over the top right strip of the canvas
  // (140 x 30 px) until the pointer has hovered there for 0.1 s: a stroke that starts there, as
  // a finger's always does, draws nothing. The page has its own Clear, so the toolbar goes. The
  // canvas lives in a shadow root, out of reach of the page's CSS: the style goes inside it.
  if (window.__digitlabCanvasFix) return;
  window.__digitlabCanvasFix = true;
  const css = ".dc-toolbar { display: none !important; }";
  const fix = () => {
    const hosts = document.querySelectorAll(
      "[class*='st-key-draw_canvas_'] [data-testid='stBidiComponentIsolated']");
    for (const host of hosts) {
      const root = host.shadowRoot;
      if (!root || root.querySelector("style[data-digitlab]")) continue;
      const style = document.createElement("style");
      style.dataset.digitlab = "toolbar";
      style.textContent = css;
      root.appendChild(style);
      new MutationObserver(fix).observe(root, { childList: true });
    }
  };
  new MutationObserver(fix).observe(document.body, { childList: true, subtree: true });
  fix();
  // The canvas sends a finished stroke 200 ms after the pointer lifts (a debounce); its own
  // "send now" button, hidden with the toolbar, sends it at once: the answer comes 0.2 s sooner.
  let drawing = null;
  document.addEventListener("pointerdown", (event) => {
    const host = event.target.closest &&
      event.target.closest("[data-testid='stBidiComponentIsolated']");
    drawing = host && host.closest("[class*='st-key-draw_canvas_']") ? host : null;
  }, true);
  document.addEventListener("pointerup", () => {
    const host = drawing;
    drawing = null;
    // After the canvas's own handlers (and their microtasks) have kept the stroke.
    if (host) setTimeout(() => {
      const send = host.shadowRoot &&
        host.shadowRoot.querySelector("button[title='Update the app with this drawing']");
      if (send) send.click();
    }, 0);
  }, true);
})();
</script>"""
"""Hides the canvas's toolbar, which otherwise swallows strokes that start under it, and sends
each finished stroke at once (bench_canvas_replay.py measured both)."""


def new_input() -> None:
    """A new drawing or upload: explain its own answer, and forget the label picked before."""
    st.session_state["draw_target"] = None
    st.session_state["draw_label"] = None


def clear_canvas() -> None:
    """Clear: a new key mounts an empty canvas."""
    st.session_state["draw_canvas_id"] += 1
    new_input()


def save_example(x28: np.ndarray | None, label: int | None, fingerprint: str | None) -> None:
    """Teach it back: keep the 28x28 input with the visitor's label (once per drawing)."""
    try:
        resources.get_examples(visitor.me()).add(x28, label)
        error = None
    except (RunError, ValueError) as exc:
        error = str(exc)
    st.session_state["draw_saved"] = {"fingerprint": fingerprint, "label": label, "error": error}


def no_model() -> None:
    """Say that there is no model to ask, and how long training one takes."""
    seconds = estimate_training_seconds(preset("fast"))
    st.info(
        "There is no model to ask yet: no run has been trained and the default model that ships "
        "in `models/default/` is missing. Train one on the Train page (the **fast** preset takes "
        f"about {seconds / 60:.0f} minute(s) here), then come back and pick it under **Model**.",
        icon=":material/info:",
    )
    st.page_link(
        "pages/1_Train.py",
        label="Train the fast preset",
        icon=":material/model_training:",
        query_params={"preset": "fast"},
    )


def input_and_answer() -> tuple[DeltaGenerator, DeltaGenerator]:
    """Two containers side by side: the input, as wide as the canvas, and the answer beside it,
    or below it when the two do not fit (a phone, or a narrow window with the sidebar open), so
    the canvas is never clipped."""
    row = st.container(horizontal=True, gap="large")
    return row.container(width=CANVAS), row.container(width="stretch")


def source_picker() -> str:
    """Draw or Upload; a change starts a new input."""
    model_upload.model_upload("draw")
    return st.segmented_control(
        "Input",
        ["Draw", "Upload"],
        default="Draw",
        required=True,
        key="draw_source",
        on_change=new_input,
        label_visibility="collapsed",
    )


def canvas_input() -> np.ndarray | None:
    """The drawing square with its brush width and Clear; the RGBA drawing, or None."""
    # Imported per call: the component declares itself on import, which needs a running app,
    # and the page tests put a stand-in in its place.
    from streamlit_drawable_canvas import st_canvas

    result = st_canvas(
        stroke_width=st.session_state.get("draw_brush", 18),
        stroke_color="#FFFFFF",
        background_color="#000000",
        height=CANVAS,
        width=CANVAS,
        drawing_mode="freedraw",
        update_streamlit=True,
        return_image_data=True,
        key=f"draw_canvas_{st.session_state.draw_canvas_id}",
        on_change=new_input,
    )
    st.html(CANVAS_FIX, unsafe_allow_javascript=True)
    row = st.container(horizontal=True, vertical_alignment="bottom")
    row.slider("Brush width", 6, 40, 18, key="draw_brush")
    row.button(
        "Clear", icon=":material/delete:", key="draw_clear", on_click=clear_canvas, width="content"
    )
    return result.image_data if result is not None else None


def upload_input() -> np.ndarray | None:
    """The file uploader; the decoded picture, or None (with a message when it is unusable)."""
    upload = st.file_uploader(
        "A PNG or JPEG of one digit: dark on light or light on dark, any size",
        type=["png", "jpg", "jpeg"],
        key="draw_upload",
        on_change=new_input,
    )
    if upload is None:
        return None
    data = upload.getvalue()
    image, problem = decoded_upload(hashlib.sha256(data).hexdigest(), data)
    if problem is not None:
        st.error(f"{upload.name}: {problem}", icon=":material/broken_image:")
    return image


# One entry: at most a 1024x1024 RGBA uint8 picture, 4 MB (draw_session.MAX_UPLOAD_SIDE).
@st.cache_data(max_entries=8, show_spinner="Reading the picture…")
def decoded_upload(digest: str, _data: bytes) -> tuple[np.ndarray | None, str | None]:
    """(the upload decoded and shrunk, None) or (None, why it is unusable), once per file.

    Keyed by the file's SHA-256, so a rerun (any click on the page) and another tab with the same
    file reuse it (Streamlit computes a key once while the others wait): decoding a 6300x6300
    RGBA PNG takes 5 s and 450 MB at its peak. What the decoder freed goes back to the system.
    """
    with _DECODING:
        try:
            return draw_session.load_upload(_data), None
        except drawing.ImageError as exc:
            return None, str(exc)
        finally:
            memory.trim_heap()


def answer_panel(
    reading: Reading | None,
    calibration: explain.Calibration | None,
    source: str,
    image: np.ndarray | None,
) -> None:
    """The big digit, its confidence and top three (or an invitation), then every probability."""
    big, info = st.columns([0.3, 0.7], vertical_alignment="center")
    if reading is None:
        waiting(big, info, source, image)
    else:
        answer(big, info, reading.verdict, calibration, draw_session.input_code(reading.x28))
    probs = reading.probs if reading is not None else np.zeros(10)
    st.plotly_chart(charts.probability_bars(probs), key="draw_probs")


def waiting(
    big: DeltaGenerator, info: DeltaGenerator, source: str, image: np.ndarray | None
) -> None:
    """A faded "?" and what to do, laid out as the answer will be."""
    label = "no drawing yet" if source == "Draw" else "no image yet"
    big.markdown(BIG.format(label=label, attrs="", opacity=0.2, text="?"), **HTML)
    with info:
        if source == "Draw":
            st.markdown("### :material/gesture: Draw a digit on the black square")
            st.write(
                "Use most of the square, as on paper. The answer, the probability of every "
                "digit and the pixels that drove it will appear here."
            )
        else:
            st.markdown("### :material/upload: Upload a picture of a digit")
            st.write("A photo or scan of one handwritten digit; it goes through the same steps.")
            if image is not None:
                st.warning("This image has no visible ink: upload a picture of a digit.")
        st.metric("Confidence", "–")


def answer(
    big: DeltaGenerator,
    info: DeltaGenerator,
    verdict: explain.Verdict,
    calibration: explain.Calibration | None,
    code: str = "",
) -> None:
    """The big answer (faded when unsure), its confidence, the top three and the verdict.

    The answer carries the 28x28 input it was computed from (`code`, see
    draw_session.input_code), so a browser test can compare it with the offline path.
    """
    big.markdown(
        BIG.format(
            label="best guess, not sure" if verdict.unsure else "the answer",
            attrs=f"data-testid='draw-answer' data-input='{code}'",
            opacity=0.45 if verdict.unsure else 1,
            text=verdict.predicted,
        ),
        **HTML,
    )
    with info:
        st.metric(
            "Confidence",
            f"{verdict.confidence:.1%}",
            help=f"{calibration.rule} {explain.MARKS_RULE}",
        )
        st.markdown("Top three: " + " · ".join(f"**{d}** {pct(p)}" for d, p in verdict.top3))
        if verdict.unsure:
            st.warning(verdict.reason, icon=":material/help:")
        else:
            st.caption(
                f"Sure: at least {calibration.confidence_threshold:.0%} confident, and close "
                f"to the digits seen in training (thresholds measured on "
                f"{calibration.samples:,} validation digits)."
            )


def stages(reading: Reading | None) -> None:
    """The four preprocessing stages side by side (black squares before a drawing)."""
    views = draw_session.stage_views(reading.stages if reading is not None else None)
    for col, (img, caption) in zip(st.columns(4), views, strict=True):
        col.image(img, caption=caption, width=180)
    if reading is not None and reading.stages.stroke_note:
        st.caption(f"Also: {reading.stages.stroke_note}.")


def naive_comparison(
    reading: Reading | None,
    image: np.ndarray | None,
    predictor: explain.Predictor,
    surface: str,
) -> None:
    """A toggle to compare with the whole `surface` squeezed to 28x28, and what the model says."""
    on = st.toggle(
        f"Compare with a naive resize of the whole {surface}",
        key="draw_naive",
        disabled=reading is None,
    )
    if not on or reading is None:
        return
    naive, naive_probs = draw_session.naive_reading(image, predictor)
    verdict = reading.verdict
    c1, c2 = st.columns([0.25, 0.75])
    c1.image(drawing.enlarge(naive, 6), caption=f"the whole {surface} squeezed to 28×28", width=180)
    c2.markdown(
        f"Without cropping and centring, the model answers **{int(naive_probs.argmax())}** "
        f"({naive_probs.max():.0%}) instead of **{verdict.predicted}** "
        f"({verdict.confidence:.0%})."
    )
    c2.plotly_chart(charts.probability_bars(naive_probs), key="draw_naive_probs")


def explanation_pickers(reading: Reading | None) -> tuple[str, int | None]:
    """The explanation and the digit to explain; (view, target), target None before a drawing."""
    c1, c2 = st.columns(2)
    view = c1.segmented_control(
        "Explanation",
        VIEWS,
        default="Grad-CAM",
        required=True,
        key="draw_view",
        disabled=reading is None,
        help=VIEW_HELP,
    )
    predicted = reading.verdict.predicted if reading is not None else None
    chosen = c2.selectbox(
        "For the digit",
        [None, *range(10)],
        format_func=lambda d: draw_session.target_option(d, predicted),
        key="draw_target",
        required=True,
        disabled=reading is None or view == "Activations",
    )
    return view, predicted if chosen is None else int(chosen)


def activations(model: keras.Model, reading: Reading) -> None:
    """The drawing's way through the network: every filter of every convolution layer (a page
    of FILTERS_PER_PAGE at a time), the dense layer's units, then the scores and their softmax."""
    trace = explain.trace(model, reading.x28)
    st.caption(
        "Your digit's way through the network, as in CNN Explainer: each convolution filter "
        "lights up where it finds its pattern (brighter is stronger, on one scale per layer); "
        "the dense layer's units weigh all of those maps; the output layer scores each digit, "
        "and the softmax turns the scores into the probabilities above."
    )
    for layer in trace.convs:
        h, w, n = layer.array.shape
        pages = [f"{i + 1}–{min(i + FILTERS_PER_PAGE, n)}" for i in range(0, n, FILTERS_PER_PAGE)]
        shown = st.segmented_control(
            f"{layer.name}: {n} filters of {h}×{w}; show filters",
            pages,
            default=pages[0],
            required=True,
            key=f"draw_filters_{layer.name}",
        )
        start = pages.index(shown) * FILTERS_PER_PAGE if shown in pages else 0
        st.plotly_chart(
            charts.filter_grid(layer.array, start, FILTERS_PER_PAGE),
            key=f"draw_act_{layer.name}",
        )
    for layer in trace.dense:
        st.plotly_chart(
            charts.dense_units(
                layer.array, f"{layer.name}: {layer.array.size} units (the ten strongest in blue)"
            ),
            key=f"draw_dense_{layer.name}",
        )
    st.plotly_chart(charts.logits_and_softmax(trace.logits, trace.probs), key="draw_softmax")


def explanation_map(model: keras.Model, reading: Reading, view: str, target: int) -> None:
    """The `view` map for `target` over the input, on the answer's scale, with what it shows."""
    method = draw_session.METHODS[view]
    predicted = reading.verdict.predicted
    heat = draw_session.explanation(model, reading.x28, view, target, predicted)
    c1, c2 = st.columns([0.45, 0.55])
    c1.plotly_chart(
        charts.scaled_overlay(
            reading.x28, heat.values, f"{view} for {target}", heat.signed, heat.limit, heat.unit
        ),
        key="draw_heat",
    )
    c2.markdown(f"**{view}** shows {method.meaning}.")
    c2.markdown(draw_session.target_text(target, predicted, reading.probs))
    if not method.signed and target != predicted:
        c2.caption(
            f"On the same scale as the map of the answer ({predicted}): a digit the model gives "
            "little chance stays dark."
        )


def teach_back(reading: Reading | None) -> None:
    """Pick the digit meant and save the drawing with it; then say so, or why it failed."""
    saved = st.session_state.get("draw_saved") or {}
    this = reading is not None and saved.get("fingerprint") == reading.fingerprint
    already = this and saved["error"] is None
    c1, c2 = st.columns([0.6, 0.4], vertical_alignment="bottom")
    label = c1.segmented_control(
        "The digit you meant", list(range(10)), key="draw_label", disabled=reading is None
    )
    c2.button(
        "Save this example" if label is None else f"Save as {a(label)}",
        icon=":material/save:",
        key="draw_save",
        disabled=reading is None or label is None or already,
        on_click=save_example,
        args=(None, None, None) if reading is None else (reading.x28, label, reading.fingerprint),
    )
    if this and saved["error"]:
        st.error(saved["error"], icon=":material/error:")
    elif already:
        st.success(
            f"Saved as {a(saved['label'])}: {resources.get_examples(visitor.me()).count()} labelled "
            "drawing(s) so far. To learn from them, tick **Add my labelled drawings from the "
            "Draw page** on the Train page."
        )
        st.page_link("pages/1_Train.py", label="Go to Train", icon=":material/model_training:")
