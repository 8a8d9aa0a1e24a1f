"""The Draw page's work on one input, without Streamlit: a canvas or an upload to an answer.

`read` turns a drawing into the MNIST-style input, the class probabilities and a calibrated verdict
in one call (the per-stroke path, kept to a few milliseconds); `explanation` computes the map the
visitor asked for; `stage_views` and `load_upload` keep what is shown and what is decoded to a
sensible size, whatever the upload's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core import drawing, explain

DISPLAY = 280
"""Side in pixels of each preprocessing stage as shown (the canvas's own size)."""
MAX_UPLOAD_SIDE = 1024
"""Uploads are shrunk to this longer side before preprocessing: plenty for a 20-pixel digit, and
a 36-megapixel photo then takes 0.1 s instead of 3 s."""
STAGE_CAPTIONS = (
    "1. your ink",
    "2. cropped to the ink",
    "3. scaled into 20×20",
    "4. centred by mass in 28×28",
)


@dataclass(frozen=True)
class Reading:
    """What the model makes of one drawing."""

    stages: drawing.PreparedStages
    probs: np.ndarray
    """(10,) class probabilities."""
    verdict: explain.Verdict
    fingerprint: str
    """Identifies the 28x28 input, so the page can tell a new drawing from one already saved."""

    @property
    def x28(self) -> np.ndarray:
        """The (28, 28) float32 input the model was given."""
        return self.stages.centered


def read(
    image: np.ndarray | None,
    predictor: explain.Predictor,
    calibration: explain.Calibration | None,
) -> Reading | None:
    """Preprocess, predict and judge one drawing; None when it has no ink."""
    stages = drawing.prepare_stages(image)
    if stages is None:
        return None
    probs, features = predictor.predict_with_features(stages.centered)
    verdict = explain.assess(probs, features, calibration)
    return Reading(stages, probs, verdict, fingerprint(stages.centered))


def fingerprint(x28: np.ndarray) -> str:
    """A short digest of an input's pixels."""
    return hashlib.blake2b(np.ascontiguousarray(x28).tobytes(), digest_size=8).hexdigest()


def naive_reading(image: np.ndarray, predictor: explain.Predictor) -> tuple[np.ndarray, np.ndarray]:
    """(the whole canvas squashed to 28x28, its probabilities): the answer without MNIST's steps."""
    naive = drawing.naive_resize(image)
    return naive, predictor(naive)


def load_upload(data: bytes) -> np.ndarray:
    """An uploaded file as an image array, shrunk to MAX_UPLOAD_SIDE (ImageError when unusable)."""
    array = drawing.load_image_bytes(data)
    h, w = array.shape[:2]
    if max(h, w) <= MAX_UPLOAD_SIDE:
        return array
    img = Image.fromarray(array)
    scale = MAX_UPLOAD_SIDE / max(h, w)
    size = (max(2, round(w * scale)), max(2, round(h * scale)))
    # Box filtering keeps thin strokes as grey instead of dropping them between samples.
    return np.asarray(img.resize(size, Image.Resampling.BOX, reducing_gap=3.0))


def stage_views(stages: drawing.PreparedStages | None) -> list[tuple[np.ndarray, str]]:
    """Each preprocessing stage as a DISPLAY-sized uint8 square with its caption (black if None)."""
    if stages is None:
        blank = np.zeros((DISPLAY, DISPLAY), np.uint8)
        return [(blank, caption) for caption in STAGE_CAPTIONS]
    images = (stages.mask, stages.cropped, stages.scaled, stages.centered)
    return [(_display(img), caption) for img, caption in zip(images, STAGE_CAPTIONS, strict=True)]


def _display(img: np.ndarray) -> np.ndarray:
    """A square, undistorted, pixel-sharp view of a stage at about DISPLAY pixels."""
    square = drawing.enlarge(drawing.pad_square(img), 1)
    side = square.shape[0]
    if side <= DISPLAY:
        return drawing.enlarge(square, max(1, DISPLAY // side))
    return np.asarray(Image.fromarray(square).resize((DISPLAY, DISPLAY), Image.Resampling.BOX))


@dataclass(frozen=True)
class Method:
    """One way of showing why the model answered as it did."""

    compute: Callable[..., np.ndarray]
    signed: bool
    meaning: str


METHODS: dict[str, Method] = {
    "Grad-CAM": Method(
        explain.grad_cam, False, "where the last convolution layer found evidence for the digit"
    ),
    "Saliency": Method(
        explain.saliency, False, "pixels whose change moves the digit's score the most"
    ),
    "Occlusion": Method(
        explain.occlusion,
        True,
        "red: covering that patch lowers the digit's probability; blue: raises it",
    ),
}
"""The maps over the 28x28 input, by the name the page shows."""


def explanation(model, x28: np.ndarray, method: str, target: int) -> np.ndarray:
    """The (28, 28) map of `method` (a METHODS name) for class `target`."""
    return METHODS[method].compute(model, x28, int(target))


def a(digit: int) -> str:
    """'a 7', 'an 8': a digit with its article, for the page's sentences."""
    return f"an {digit}" if digit == 8 else f"a {digit}"


def pct(p: float) -> str:
    """A probability in percent; tiny ones as "<0.1%" rather than a misleading "0.0%"."""
    return f"{p:.1%}" if p >= 0.001 else "<0.1%"


def target_option(digit: int | None, predicted: int | None) -> str:
    """How the "For the digit" picker names a choice (None stands for the answer itself)."""
    if digit is None:
        return "the answer" + ("" if predicted is None else f" ({predicted})")
    if digit == predicted:
        return f"{digit} (the answer)"
    return f"why not {a(digit)}?"


def target_text(target: int, predicted: int, probs: np.ndarray) -> str:
    """What a map for `target` says, beside the model's probability for it and for its answer."""
    if target == predicted:
        return (
            f"The model gives **{target}** a probability of **{pct(probs[target])}**: "
            "the highlighted pixels are what it based that on."
        )
    return (
        f"The model gives **{target}** a probability of **{pct(probs[target])}**, "
        f"against {pct(probs[predicted])} for its answer {predicted}. "
        f"The highlighted pixels are what speaks for {a(target)}; where they are missing is "
        f"why it is not one."
    )
