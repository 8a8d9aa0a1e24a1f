"""Draw: draw a digit, see what the network sees, what it predicts, and why."""

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from core import charts, drawing, explain, widgets
from core.runs import RunError

CANVAS = 280

widgets.setup_page("Draw", ":material/draw:")
widgets.data_caption(widgets.get_data())
run = widgets.run_picker()
st.session_state.setdefault("draw_canvas_id", 0)

st.title("Draw a digit")
st.caption(
    "Draw one digit, 0 to 9, with the mouse or a finger. The network answers when you lift it."
)
if run is None:
    st.info("There is no model to ask yet. Train one on the Train page, then come back.")
    st.page_link("pages/1_Train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()
try:
    predictor, calibration = widgets.get_predictor(run)
except (RunError, explain.IncompatibleModelError) as exc:
    st.error(str(exc))
    st.stop()

left, right = st.columns([0.42, 0.58], gap="large")
with left:
    source = st.segmented_control(
        "Input", ["Draw", "Upload"], default="Draw", key="draw_source", label_visibility="collapsed"
    )
    image = None
    if source != "Upload":
        width = st.slider("Brush width", 6, 40, 18, key="draw_brush")
        result = st_canvas(
            stroke_width=width,
            stroke_color="#FFFFFF",
            background_color="#000000",
            height=CANVAS,
            width=CANVAS,
            drawing_mode="freedraw",
            update_streamlit=True,
            return_image_data=True,
            key=f"draw_canvas_{st.session_state.draw_canvas_id}",
        )
        image = result.image_data if result is not None else None
        if st.button("Clear", icon=":material/delete:", key="draw_clear"):
            st.session_state.draw_canvas_id += 1
            st.rerun()
    else:
        upload = st.file_uploader(
            "A PNG or JPEG of one digit (dark on light or light on dark, any size)",
            type=["png", "jpg", "jpeg"],
            key="draw_upload",
        )
        if upload is not None:
            try:
                image = drawing.load_image_bytes(upload.getvalue())
            except drawing.ImageError as exc:
                st.error(f"{exc}")
stages = drawing.prepare_stages(image) if image is not None else None

with right:
    if stages is None:
        st.markdown("### ✍️ Draw a digit on the black square")
        st.write(
            "Use most of the square, like writing on paper. The answer, the probability of "
            "every digit and the pixels that drove it will appear here."
        )
        if image is not None and source == "Upload":
            st.warning("This image has no visible ink: upload a picture of a digit.")
        st.stop()
    probs, features = predictor.predict_with_features(stages.centered)
    verdict = explain.assess(probs, features, calibration)
    big, info = st.columns([0.3, 0.7], vertical_alignment="center")
    big.markdown(
        f"<div data-testid='draw-answer' style='font-size:7rem;font-weight:700;line-height:1;"
        f"text-align:center;opacity:{0.45 if verdict.unsure else 1}'>{verdict.predicted}</div>",
        unsafe_allow_html=True,
    )
    with info:
        st.metric("Confidence", f"{verdict.confidence:.1%}")
        st.write("Top three: " + ", ".join(f"**{d}** ({p:.1%})" for d, p in verdict.top3))
        if verdict.unsure:
            st.warning(verdict.reason, icon=":material/help:")
    st.plotly_chart(charts.probability_bars(probs), key="draw_probs")

st.subheader("What the model sees")
st.caption(
    "MNIST's digits were cropped, scaled into a 20×20 box and centred by their centre of mass "
    "in 28×28. Your drawing goes through the same steps."
)
cols = st.columns(4)
for col, img, caption in zip(
    cols,
    [stages.mask, stages.cropped, stages.scaled, stages.centered],
    ["1. your ink", "2. cropped to the ink", "3. scaled into 20×20", "4. centred by mass, 28×28"],
    strict=True,
):
    square = drawing.pad_square(img)
    col.image(drawing.enlarge(square, max(1, 280 // len(square))), caption=caption, width=160)
if st.toggle("Compare with a naive resize of the whole canvas", key="draw_naive"):
    naive = drawing.naive_resize(image)
    naive_probs = predictor(naive)
    c1, c2 = st.columns([0.25, 0.75])
    c1.image(drawing.enlarge(naive, 10), caption="whole canvas squeezed to 28×28", width=160)
    c2.markdown(
        f"Without cropping and centring, the model answers **{int(naive_probs.argmax())}** "
        f"({naive_probs.max():.0%}) instead of **{verdict.predicted}**."
    )
    c2.plotly_chart(charts.probability_bars(naive_probs), key="draw_naive_probs")

st.subheader("Why")
view = st.segmented_control(
    "Explanation",
    ["Grad-CAM", "Saliency", "Occlusion", "Activations"],
    default="Grad-CAM",
    key="draw_view",
)
target = st.selectbox(
    "Explain the answer for digit",
    range(10),
    index=verdict.predicted,
    format_func=lambda d: (
        f"{d} (the answer)" if d == verdict.predicted else f"{d} — why not a {d}?"
    ),
    key="draw_target",
)
model = predictor.model
if view == "Activations":
    st.caption("What each convolution layer's filters respond to in your digit (first 16).")
    for layer in explain.activations(model, stages.centered):
        st.plotly_chart(
            charts.activation_grid(layer.array, title=f"{layer.name}: {layer.array.shape}"),
            key=f"draw_act_{layer.name}",
        )
elif view:
    maps = {
        "Grad-CAM": (explain.grad_cam, False, "where the last conv layer found evidence"),
        "Saliency": (explain.saliency, False, "pixels whose change moves the probability most"),
        "Occlusion": (explain.occlusion, True, "red: covering it lowers the probability"),
    }
    fn, signed, meaning = maps[view]
    heat = fn(model, stages.centered, target)
    c1, c2 = st.columns([0.45, 0.55])
    c1.plotly_chart(
        charts.overlay_figure(stages.centered, heat, f"{view} for {target}: {meaning}", signed),
        key="draw_heat",
    )
    c2.markdown(
        f"The model gives **{target}** a probability of **{probs[target]:.1%}**. "
        + (
            "Bright areas are what it used to say so."
            if target == verdict.predicted
            else f"Bright areas are what speaks for a {target}; compare with the answer "
            f"{verdict.predicted}."
        )
    )

st.subheader("Teach it back")
with st.form("draw_teach", border=True):
    st.write("Was the answer wrong? Give the right digit; your drawing is kept for training.")
    label = st.selectbox("The digit I meant", range(10), index=verdict.predicted, key="draw_label")
    if st.form_submit_button("Save this example", icon=":material/save:"):
        try:
            widgets.get_examples().add(stages.centered, label)
            st.success(
                f"Saved as a {label}. {widgets.get_examples().count()} example(s) so far: "
                "tick 'Add my labelled drawings' on the Train page to learn from them."
            )
        except (RunError, ValueError) as exc:
            st.error(str(exc))
