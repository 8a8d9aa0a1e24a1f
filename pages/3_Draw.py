"""Draw: draw a digit, see what the network sees, what it predicts, and why."""

import streamlit as st

from core import draw_session, explain
from core.runs import RunError
from ui import draw, drawings, frame, resources

_, run = frame.page("Draw", ":material/draw:")
st.session_state.setdefault("draw_canvas_id", 0)

st.title("Draw a digit")
st.caption(
    "Draw one digit, 0 to 9, with the mouse or a finger: the network answers when you lift it."
)
if run is None:
    draw.no_model()
    st.stop()
try:
    predictor, calibration = resources.get_predictor(run)
except (RunError, explain.IncompatibleModelError) as exc:
    st.error(f"{exc}", icon=":material/error:")
    st.stop()

left, right = draw.input_and_answer()
with left:
    source = draw.source_picker()
    image = draw.canvas_input() if source == "Draw" else draw.upload_input()
reading = draw_session.read(image, predictor, calibration)
surface = "canvas" if source == "Draw" else "image"

# One layout whether or not there is a drawing: the sections wait, disabled, so nothing jumps when
# the first answer arrives, and the browser has already loaded the code of every element by then
# (measured: a session's first answer came 0.45 s after the mouse-up instead of 0.75 s).
with right:
    draw.answer_panel(reading, calibration, source, image)

st.subheader("What the model sees")
st.caption(
    "MNIST's digits were cropped to their ink, scaled into a 20×20 box and centred by their centre "
    "of mass in 28×28. Your drawing goes through the same steps."
)
draw.stages(reading)
draw.naive_comparison(reading, image, predictor, surface)

st.subheader("Why")
view, target = draw.explanation_pickers(reading)
if reading is None:
    st.caption("Draw (or upload) a digit to see which of its pixels drove the answer.")
elif view == "Activations":
    draw.activations(predictor.model, reading)
else:
    draw.explanation_map(predictor.model, reading, view, target)

st.subheader("Teach it back")
st.write(
    "Was the answer wrong? Pick the digit you meant and save your drawing: Train can add your "
    "labelled drawings to its training data."
)
draw.teach_back(reading)
drawings.my_drawings()
