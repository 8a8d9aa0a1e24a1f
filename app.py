"""Digit Lab home page: what it is, the tutorial's ten steps and where each lives, status."""

import streamlit as st

from ui import frame

data, run = frame.page("Home", ":material/home:")

st.title("Digit Lab")
st.markdown(
    "Train, watch and question a convolutional network on **MNIST**, the 70,000 handwritten "
    "digits every deep-learning course starts with. Digit Lab turns each step of the classic "
    "Keras tutorial (Conv2D → Conv2D → MaxPool → Dropout → Dense, Adam, 10 epochs, over 99% "
    "test accuracy) into something you can see and steer."
)

left, mid, right = st.columns(3)
with left, st.container(border=True):
    st.markdown("#### :material/model_training: Train")
    st.write(
        "Pick the tutorial's network or change it, press Train, and watch loss and accuracy "
        "move live. Stop it, keep the run, compare it with others."
    )
    st.page_link("pages/1_Train.py", label="Open Train", icon=":material/arrow_forward:")
with mid, st.container(border=True):
    st.markdown("#### :material/query_stats: Explore")
    st.write(
        "Browse the dataset, see the tutorial's preprocessing on one digit, and open the "
        "confusion matrix of a trained model down to the images behind every mistake."
    )
    st.page_link("pages/2_Explore.py", label="Open Explore", icon=":material/arrow_forward:")
with right, st.container(border=True):
    st.markdown("#### :material/draw: Draw")
    st.write(
        "Draw a digit with your mouse or finger. See what the network sees, what it answers, "
        "how sure it is, and which pixels made it decide."
    )
    st.page_link("pages/3_Draw.py", label="Open Draw", icon=":material/arrow_forward:")

st.subheader("The tutorial's ten steps, and where each lives")
STEPS = [
    ("Load MNIST", "`mnist.load_data()`", "Explore › Dataset", "pages/2_Explore.py"),
    ("Look at the data", "shapes, a few digits", "Explore › Dataset", "pages/2_Explore.py"),
    (
        "Reshape",
        "`(n, 28, 28)` → `(n, 28, 28, 1)`",
        "Explore › Preprocessing",
        "pages/2_Explore.py",
    ),
    ("Scale", "uint8 0-255 → float32 0-1", "Explore › Preprocessing", "pages/2_Explore.py"),
    (
        "One-hot the labels",
        "`5` → `[0,0,0,0,0,1,0,0,0,0]`",
        "Explore › Preprocessing",
        "pages/2_Explore.py",
    ),
    (
        "Define the network",
        "Conv2D, MaxPool, Dropout, Dense",
        "Train › Network",
        "pages/1_Train.py",
    ),
    ("Compile", "cross-entropy loss, Adam, accuracy", "Train › Training", "pages/1_Train.py"),
    ("Fit", "10 epochs, batch 32, live curves", "Train › Watch", "pages/1_Train.py"),
    ("Evaluate", "test accuracy, confusion matrix", "Explore › Errors", "pages/2_Explore.py"),
    ("Predict", "your own handwriting", "Draw", "pages/3_Draw.py"),
]
for number, (step, detail, where, page) in enumerate(STEPS, start=1):
    c1, c2, c3 = st.columns([0.45, 0.35, 0.2], vertical_alignment="center")
    c1.markdown(f"**{number}. {step}**  \n{detail}")
    c2.markdown(where)
    c3.page_link(page, label="Go", icon=":material/arrow_forward:")

st.subheader("Status")
c1, c2 = st.columns(2)
with c1, st.container(border=True):
    st.markdown("**Data**")
    st.write(data.description)
    st.caption(
        f"{len(data.x_train):,} training and {len(data.x_test):,} test images, "
        "28×28 pixels, kept as uint8 in memory."
    )
    if data.is_sample:
        st.warning(
            "This is the small offline sample, not the full MNIST. Set `MNIST_DIR` to a folder "
            "with the four MNIST files to use all 70,000 digits."
        )
with c2, st.container(border=True):
    st.markdown("**Model**")
    if run is None:
        st.write("No model yet. Train one on the Train page.")
    else:
        st.write(frame.run_label(run))
        st.caption(
            "Chosen in the sidebar; Explore and Draw use it. "
            + ("It ships with the app." if run.builtin else f"Saved in `{run.path}`.")
        )
