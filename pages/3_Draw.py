"""Draw: draw a digit, see what the network sees, what it predicts, and why."""

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from core import charts, draw_session, drawing, explain
from core.models import estimate_training_seconds, preset
from core.runs import RunError
from ui import frame, resources

CANVAS = 280
VIEWS = [*draw_session.METHODS, "Activations"]
BIG = (
    "<div style='text-align:center;opacity:0.7'>{label}</div><div {attrs} style='font-size:7rem;"
    "font-weight:700;line-height:1;text-align:center;opacity:{opacity}'>{text}</div>"
)
HTML = {"unsafe_allow_html": True}

frame.setup_page("Draw", ":material/draw:")
frame.data_caption(resources.get_data())
run = frame.run_picker()
st.session_state.setdefault("draw_canvas_id", 0)


def a(digit: int) -> str:
    """'a 7', 'an 8'."""
    return f"an {digit}" if digit == 8 else f"a {digit}"


def pct(p: float) -> str:
    """A probability in percent; tiny ones as "<0.1%" rather than a misleading "0.0%"."""
    return f"{p:.1%}" if p >= 0.001 else "<0.1%"


def new_input() -> None:
    """A new drawing or upload: explain its own answer, and forget the label picked before."""
    st.session_state["draw_target"] = None
    st.session_state["draw_label"] = None


def clear_canvas() -> None:
    st.session_state["draw_canvas_id"] += 1  # a new key mounts an empty canvas
    new_input()


def save_example(x28, label: int, fingerprint: str) -> None:
    """Teach it back: keep the 28x28 input with the visitor's label (once per drawing)."""
    try:
        resources.get_examples().add(x28, label)
        error = None
    except (RunError, ValueError) as exc:
        error = str(exc)
    st.session_state["draw_saved"] = {"fingerprint": fingerprint, "label": label, "error": error}


st.title("Draw a digit")
st.caption(
    "Draw one digit, 0 to 9, with the mouse or a finger: the network answers when you lift it."
)
if run is None:
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
    st.stop()
try:
    predictor, calibration = resources.get_predictor(run)
except (RunError, explain.IncompatibleModelError) as exc:
    st.error(f"{exc}", icon=":material/error:")
    st.stop()

left, right = st.columns([0.4, 0.6], gap="large")
with left:
    source = st.segmented_control(
        "Input",
        ["Draw", "Upload"],
        default="Draw",
        required=True,
        key="draw_source",
        on_change=new_input,
        label_visibility="collapsed",
    )
    image = None
    if source == "Draw":
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
        image = result.image_data if result is not None else None
        brush, clear = st.columns([0.7, 0.3], vertical_alignment="bottom")
        brush.slider("Brush width", 6, 40, 18, key="draw_brush")
        clear.button("Clear", icon=":material/delete:", key="draw_clear", on_click=clear_canvas)
    else:
        upload = st.file_uploader(
            "A PNG or JPEG of one digit: dark on light or light on dark, any size",
            type=["png", "jpg", "jpeg"],
            key="draw_upload",
            on_change=new_input,
        )
        if upload is not None:
            try:
                image = draw_session.load_upload(upload.getvalue())
            except drawing.ImageError as exc:
                st.error(f"{upload.name}: {exc}", icon=":material/broken_image:")
reading = draw_session.read(image, predictor, calibration)
surface = "canvas" if source == "Draw" else "image"

# One layout whether or not there is a drawing: the sections wait, disabled, so nothing jumps when
# the first answer arrives, and the browser has already loaded the code of every element by then
# (measured: a session's first answer came 0.45 s after the mouse-up instead of 0.75 s).
verdict = reading.verdict if reading is not None else None
with right:
    big, info = st.columns([0.3, 0.7], vertical_alignment="center")
    if verdict is None:
        big.markdown(
            BIG.format(
                label="no drawing yet" if source == "Draw" else "no image yet",
                attrs="",
                opacity=0.2,
                text="?",
            ),
            **HTML,
        )
        with info:
            if source == "Draw":
                st.markdown("### :material/gesture: Draw a digit on the black square")
                st.write(
                    "Use most of the square, as on paper. The answer, the probability of every "
                    "digit and the pixels that drove it will appear here."
                )
            else:
                st.markdown("### :material/upload: Upload a picture of a digit")
                st.write(
                    "A photo or scan of one handwritten digit; it goes through the same steps."
                )
                if image is not None:
                    st.warning("This image has no visible ink: upload a picture of a digit.")
            st.metric("Confidence", "–")
    else:
        big.markdown(
            BIG.format(
                label="best guess, not sure" if verdict.unsure else "the answer",
                attrs="data-testid='draw-answer'",
                opacity=0.45 if verdict.unsure else 1,
                text=verdict.predicted,
            ),
            **HTML,
        )
        with info:
            st.metric("Confidence", f"{verdict.confidence:.1%}", help=calibration.rule)
            st.markdown("Top three: " + " · ".join(f"**{d}** {pct(p)}" for d, p in verdict.top3))
            if verdict.unsure:
                st.warning(verdict.reason, icon=":material/help:")
            else:
                st.caption(
                    f"Sure: at least {calibration.confidence_threshold:.0%} confident, and close "
                    f"to the digits seen in training (thresholds measured on "
                    f"{calibration.samples:,} validation digits)."
                )
    probs = reading.probs if reading is not None else np.zeros(10)
    st.plotly_chart(charts.probability_bars(probs), key="draw_probs")

st.subheader("What the model sees")
st.caption(
    "MNIST's digits were cropped to their ink, scaled into a 20×20 box and centred by their centre "
    "of mass in 28×28. Your drawing goes through the same steps."
)
views = draw_session.stage_views(reading.stages if reading is not None else None)
for col, (img, caption) in zip(st.columns(4), views, strict=True):
    col.image(img, caption=caption, width=180)
if reading is not None and reading.stages.stroke_note:
    st.caption(f"Also: {reading.stages.stroke_note}.")
naive_on = st.toggle(
    f"Compare with a naive resize of the whole {surface}",
    key="draw_naive",
    disabled=reading is None,
)
if naive_on and reading is not None:
    naive, naive_probs = draw_session.naive_reading(image, predictor)
    c1, c2 = st.columns([0.25, 0.75])
    c1.image(drawing.enlarge(naive, 6), caption=f"the whole {surface} squeezed to 28×28", width=180)
    c2.markdown(
        f"Without cropping and centring, the model answers **{int(naive_probs.argmax())}** "
        f"({naive_probs.max():.0%}) instead of **{verdict.predicted}** "
        f"({verdict.confidence:.0%})."
    )
    c2.plotly_chart(charts.probability_bars(naive_probs), key="draw_naive_probs")

st.subheader("Why")
c1, c2 = st.columns(2)
view = c1.segmented_control(
    "Explanation",
    VIEWS,
    default="Grad-CAM",
    required=True,
    key="draw_view",
    disabled=reading is None,
    help="Grad-CAM: where the last convolution layer found evidence. Saliency: the pixels the "
    "score is most sensitive to. Occlusion: what covering each patch does to the probability. "
    "Activations: what every convolution layer's filters respond to.",
)
predicted = verdict.predicted if verdict is not None else None
chosen = c2.selectbox(
    "For the digit",
    [None, *range(10)],
    format_func=lambda d: (
        "the answer" + ("" if predicted is None else f" ({predicted})")
        if d is None
        else f"{d} (the answer)"
        if d == predicted
        else f"why not {a(d)}?"
    ),
    key="draw_target",
    required=True,
    disabled=reading is None or view == "Activations",
)
if reading is None:
    st.caption("Draw (or upload) a digit to see which of its pixels drove the answer.")
elif view == "Activations":
    st.caption("What each convolution layer's filters respond to in your digit (first 16 filters).")
    for layer in explain.activations(predictor.model, reading.x28):
        h, w, n = layer.array.shape
        st.plotly_chart(
            charts.activation_grid(layer.array, title=f"{layer.name}: {h}×{w}, {n} filters"),
            key=f"draw_act_{layer.name}",
        )
else:
    target = predicted if chosen is None else int(chosen)
    method = draw_session.METHODS[view]
    heat = draw_session.explanation(predictor.model, reading.x28, view, target)
    c1, c2 = st.columns([0.45, 0.55])
    c1.plotly_chart(
        charts.overlay_figure(reading.x28, heat, f"{view} for {target}", method.signed),
        key="draw_heat",
    )
    c2.markdown(f"**{view}** shows {method.meaning}.")
    if target == predicted:
        c2.markdown(
            f"The model gives **{target}** a probability of **{pct(reading.probs[target])}**: "
            "the highlighted pixels are what it based that on."
        )
    else:
        c2.markdown(
            f"The model gives **{target}** a probability of **{pct(reading.probs[target])}**, "
            f"against {pct(reading.probs[predicted])} for its answer {predicted}. "
            f"The highlighted pixels are what speaks for {a(target)}; where they are missing is "
            f"why it is not one."
        )

st.subheader("Teach it back")
examples = resources.get_examples()
saved = st.session_state.get("draw_saved") or {}
this = reading is not None and saved.get("fingerprint") == reading.fingerprint
already = this and saved["error"] is None
st.write(
    "Was the answer wrong? Pick the digit you meant and save your drawing: Train can add your "
    "labelled drawings to its training data."
)
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
        f"Saved as {a(saved['label'])}: {examples.count()} labelled drawing(s) so far. To learn from "
        "them, tick **Add my labelled drawings from the Draw page** on the Train page."
    )
    st.page_link("pages/1_Train.py", label="Go to Train", icon=":material/model_training:")
