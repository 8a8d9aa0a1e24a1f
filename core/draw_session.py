"""The Draw page's work on one input, without Streamlit: a canvas or an upload to an answer.

`read` turns a drawing into the MNIST-style input, the class probabilities and a calibrated verdict
in one call (the per-stroke path, kept to a few milliseconds); `explanation` computes the map the
visitor asked for; `stage_views` and `load_upload` keep what is shown and what is decoded to a
sensible size, whatever the upload's.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from core import drawing, explain

if TYPE_CHECKING:
    import keras

DISPLAY = 280
"""Side in pixels of each preprocessing stage as shown (the canvas's own size)."""
MAX_UPLOAD_SIDE = 1024
"""Uploads are shrunk to this longer side before preprocessing: plenty for a 20-pixel digit, and
a 36-megapixel photo then takes 0.1 s instead of 3 s."""
_DECODE_SLOTS = threading.BoundedSemaphore(1)
"""Uploads decoded at once: one decode may take up to drawing.MAX_DECODE_BYTES."""
DECODED_KEPT = 8
"""Decoded uploads kept (at most 4 MB each at MAX_UPLOAD_SIDE)."""
_DECODED: OrderedDict[bytes, np.ndarray] = OrderedDict()
_DECODED_LOCK = threading.Lock()
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
    verdict = explain.assess(probs, features, calibration, stages.marks)
    return Reading(stages, probs, verdict, fingerprint(stages.centered))


def fingerprint(x28: np.ndarray) -> str:
    """A short digest of an input's pixels."""
    return hashlib.blake2b(np.ascontiguousarray(x28).tobytes(), digest_size=8).hexdigest()


def input_code(x28: np.ndarray) -> str:
    """The 28x28 input as 1,568 hex digits (each pixel rounded to 0-255), row by row."""
    return (
        (np.clip(np.asarray(x28, np.float32), 0.0, 1.0) * 255.0 + 0.5)
        .astype(np.uint8)
        .tobytes()
        .hex()
    )


def decode_input(code: str) -> np.ndarray:
    """The (28, 28) float32 input that input_code wrote (to within 1/510 per pixel)."""
    return np.frombuffer(bytes.fromhex(code), np.uint8).reshape(28, 28).astype(np.float32) / 255.0


def naive_reading(image: np.ndarray, predictor: explain.Predictor) -> tuple[np.ndarray, np.ndarray]:
    """(the whole canvas squashed to 28x28, its probabilities): the answer without MNIST's steps."""
    naive = drawing.naive_resize(image)
    return naive, predictor(naive)


def load_upload(data: bytes) -> np.ndarray:
    """An uploaded file as a read-only image array, longer side at most MAX_UPLOAD_SIDE
    (ImageError, with a message for the visitor, when it is unusable).

    Decoded once per distinct file (the last few are kept, by digest, however many reruns or
    tabs ask), and one at a time, so uploads in several tabs cannot pile up
    their decoding memory.
    """
    key = hashlib.blake2b(data, digest_size=16).digest()
    with _DECODED_LOCK:
        if key in _DECODED:
            _DECODED.move_to_end(key)
            return _DECODED[key]
    with _DECODE_SLOTS:
        array = drawing.load_image_bytes(data, max_side=MAX_UPLOAD_SIDE)
    h, w = array.shape[:2]
    if max(h, w) > MAX_UPLOAD_SIDE:
        scale = MAX_UPLOAD_SIDE / max(h, w)
        size = (max(2, round(w * scale)), max(2, round(h * scale)))
        # Box filtering keeps thin strokes as grey instead of dropping them between samples.
        array = np.asarray(Image.fromarray(array).resize(size, Image.Resampling.BOX))
    array = np.array(array)  # its own memory, not Pillow's
    array.flags.writeable = False  # shared by every caller: never changed in place
    with _DECODED_LOCK:
        _DECODED[key] = array
        while len(_DECODED) > DECODED_KEPT:
            _DECODED.popitem(last=False)
    return array


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

    name: str
    signed: bool
    meaning: str


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "Grad-CAM",
            False,
            "where the last convolution layer found evidence for the digit, spread over the "
            "pixels in proportion to its probability",
        ),
        Method(
            "Saliency",
            False,
            "the pixels whose change moves the digit's score the most, spread over the pixels "
            "in proportion to its probability",
        ),
        Method(
            "Occlusion",
            True,
            "how many percentage points (pp) the digit's probability drops when a 4×4 patch around "
            "each pixel is blanked: red, the patch speaks for the digit; blue, against it",
        ),
    )
}
"""The maps over the 28x28 input, by the name the page shows."""
OCCLUSION_MIN_SCALE = 1.0
"""Percentage points: the occlusion colour scale spans at least this, so noise stays pale."""


@dataclass(frozen=True)
class Heat:
    """A map over the 28x28 input, with the colour scale it is shown on."""

    values: np.ndarray
    """(28, 28) float32."""
    signed: bool
    limit: float
    """The colour scale runs over [-limit, limit] when signed, else [0, limit]."""
    unit: str
    """What the colour bar measures."""


def explanation(model: keras.Model, x28: np.ndarray, method: str, target: int, answer: int) -> Heat:
    """The map of `method` (a METHODS name) for class `target`, on the same scale as the map of
    the answer, so "why not a 1?" at a probability of 0 stays dark where the answer glows."""
    target, answer = int(target), int(answer)
    if method == "Occlusion":
        maps = explain.occlusion_maps(model, x28) * 100.0  # probability drops in points
        values = maps[target]
        limit = max(float(np.abs(maps[[target, answer]]).max()), OCCLUSION_MIN_SCALE)
        return Heat(values, True, limit, "probability drop (pp)")
    compute = explain.grad_cam if method == "Grad-CAM" else explain.saliency
    values = compute(model, x28, target, relative_to=answer)
    # 1 is the answer's brightest pixel; another class can only outshine it when it is close.
    return Heat(values, False, max(1.0, float(values.max())), "1 = the answer's brightest pixel")


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
