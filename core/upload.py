"""A visitor's own `.keras` model: checked, loaded without running its code, evaluated, saved as a run.

The checks come in the order that keeps a hostile file harmless: the zip's declared sizes before
anything is inflated, the configuration's layer classes before Keras reads it (no Lambda, no
class from outside Keras), then Keras's own `safe_mode=True`, then the input and output shapes,
then the answers on the test set, which must be probabilities.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.data import INPUT_SHAPE, NUM_CLASSES, MnistData
from core.models import ModelConfig
from core.runs import RunInfo, RunStore

if TYPE_CHECKING:
    import keras

MB = 1024 * 1024
MAX_UPLOAD_MB = 50
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * MB
"""The largest .keras file taken, as uploaded."""
MAX_INFLATED_MB = 50
MAX_INFLATED_BYTES = MAX_INFLATED_MB * MB
"""The most its members may add up to once inflated: a model that size takes about as much memory
once loaded (Digit Lab's own models are under 10 MB)."""
CONFIG_MEMBER = "config.json"
WEIGHTS_MEMBER = "model.weights.h5"
ALLOWED_MEMBERS = frozenset({"metadata.json", CONFIG_MEMBER, WEIGHTS_MEMBER})
"""What Keras 3 writes for a model without assets; anything else is refused."""
CODE_CLASSES = frozenset({"Lambda", "TFSMLayer", "__lambda__", "function"})
"""Configuration classes that stand for Python code (or a SavedModel from a path) to be run."""
UPLOADED_CONFIG = ModelConfig(preset="uploaded", validation_split=0.0)
"""What an uploaded run records as its configuration: nothing is known of how it was trained,
and without a validation split its confidence is calibrated on half of the test set."""
PROBABILITY_TOLERANCE = 1e-3


class UploadError(ValueError):
    """An uploaded model that Digit Lab refuses; the message says why and what would work."""


def check_archive(data: bytes, filename: str = "the file") -> dict[str, Any]:
    """The model's configuration, once the zip's declared sizes and members are acceptable.

    Nothing is inflated before the sizes in the zip's directory are checked, and reading stops
    at the declared size (Python's zipfile fails a member that inflates to more).
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"{filename} is {len(data) / MB:,.1f} MB; the limit is {MAX_UPLOAD_MB} MB."
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise UploadError(
            f"{filename} is not a .keras file: a .keras model is a zip archive, and this is not "
            "one. Save the model with `model.save('name.keras')` (Keras 3)."
        ) from exc
    names = {m.filename for m in members}
    if CONFIG_MEMBER not in names or WEIGHTS_MEMBER not in names:
        raise UploadError(
            f"{filename} is a zip archive but not a Keras model: it lacks "
            f"{' and '.join(sorted({CONFIG_MEMBER, WEIGHTS_MEMBER} - names))}. "
            "Save the model with `model.save('name.keras')` (Keras 3)."
        )
    extra = sorted(names - ALLOWED_MEMBERS)
    if extra:
        raise UploadError(
            f"{filename} holds files a plain Keras model does not ({', '.join(extra[:5])}); "
            f"only {', '.join(sorted(ALLOWED_MEMBERS))} are accepted."
        )
    inflated = sum(m.file_size for m in members)
    if inflated > MAX_INFLATED_BYTES:
        raise UploadError(
            f"{filename} would inflate to {inflated / MB:,.1f} MB; the limit is "
            f"{MAX_INFLATED_MB} MB. Digit Lab takes models of MNIST's size."
        )
    try:
        config = json.loads(archive.read(CONFIG_MEMBER))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise UploadError(f"{filename}: its {CONFIG_MEMBER} is unreadable ({exc}).") from exc
    if not isinstance(config, dict):
        raise UploadError(f"{filename}: its {CONFIG_MEMBER} does not describe a model.")
    return config


def _objects(node: Any) -> Iterator[dict]:
    """Every JSON object in a configuration, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def check_config(config: dict[str, Any], filename: str = "the file") -> None:
    """Refuse a configuration that names code to run: a Lambda layer, a Python function, or a
    class from outside Keras (which safe_mode would load only if it is registered)."""
    for obj in _objects(config):
        name = obj.get("class_name")
        if name in CODE_CLASSES:
            what = "a Lambda layer" if name in ("Lambda", "__lambda__") else f"a {name!r} object"
            raise UploadError(
                f"{filename} holds {what}, which is Python code. Digit Lab loads models in Keras's "
                "safe mode and never runs code from an upload: rebuild the model with Keras's "
                "built-in layers only."
            )
        module = obj.get("module")
        if isinstance(module, str) and not (module == "keras" or module.startswith("keras.")):
            raise UploadError(
                f"{filename} uses {name or 'an object'} from {module!r}, which is not part of "
                "Keras. Digit Lab loads only Keras's built-in layers."
            )
        registered = obj.get("registered_name")
        if isinstance(registered, str) and ">" in registered:
            raise UploadError(
                f"{filename} uses the custom object {registered!r}. Digit Lab loads only Keras's "
                "built-in layers."
            )


def load_checked(data: bytes, filename: str = "the file") -> keras.Model:
    """The Keras model in an uploaded .keras file, loaded in safe mode after every check."""
    check_config(check_archive(data, filename), filename)
    import keras

    # Keras's public loader reads a path: the checked bytes go to a private temporary folder
    # that is removed as soon as the model is in memory.
    with tempfile.TemporaryDirectory(prefix="digitlab-upload-") as folder:
        path = Path(folder) / "upload.keras"
        path.write_bytes(data)
        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # noqa: BLE001 - any failure means the file is not a usable model
            detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            raise UploadError(
                f"{filename} could not be loaded as a Keras model ({type(exc).__name__}: "
                f"{detail or 'no detail'})."
            ) from exc
    check_shapes(model, filename)
    return model


def _shape(shape: tuple) -> str:
    return "x".join("?" if s is None else str(s) for s in shape) or "a single number"


def check_shapes(model: keras.Model, filename: str = "the file") -> None:
    """Refuse a model that does not take one 28x28x1 digit and answer with 10 values."""
    inputs = getattr(model, "inputs", None) or []
    outputs = getattr(model, "outputs", None) or []
    if len(inputs) != 1 or len(outputs) != 1:
        raise UploadError(
            f"{filename} has {len(inputs)} input(s) and {len(outputs)} output(s); Digit Lab needs "
            "one 28x28x1 image in and 10 digit probabilities out."
        )
    shape = tuple(inputs[0].shape[1:])
    if shape != INPUT_SHAPE:
        raise UploadError(
            f"{filename} takes inputs of shape {_shape(shape)}; Digit Lab's digits are 28x28x1 "
            "(grey MNIST images): build it on `keras.Input(shape=(28, 28, 1))`."
        )
    out = tuple(outputs[0].shape[1:])
    if out != (NUM_CLASSES,):
        raise UploadError(
            f"{filename} answers with shape {_shape(out)}; Digit Lab needs 10 outputs, one "
            'probability per digit (a last `Dense(10, activation="softmax")` layer).'
        )


def check_probabilities(probabilities: np.ndarray, filename: str = "the file") -> None:
    """Refuse outputs that are not probabilities (logits, say): the figures would be wrong."""
    p = np.asarray(probabilities, dtype=np.float64)
    valid = p.ndim == 2 and np.isfinite(p).all() and (p >= -PROBABILITY_TOLERANCE).all()
    if not valid or np.abs(p.sum(axis=1) - 1.0).max(initial=0.0) > PROBABILITY_TOLERANCE:
        raise UploadError(
            f"{filename} answers with values that are not probabilities (they must be at least "
            "0 and add up to 1 for every digit): end the model with a softmax, "
            '`Dense(10, activation="softmax")`.'
        )


def import_model(
    data: bytes,
    filename: str,
    store: RunStore,
    mnist: MnistData,
    owner: str | None,
) -> RunInfo:
    """Check, load, evaluate on the test set and save an uploaded model as the owner's run."""
    from core.evaluation import evaluate_probabilities, predict_proba

    model = load_checked(data, filename)
    try:
        probabilities = predict_proba(model, mnist.x_test)
    except Exception as exc:  # noqa: BLE001 - a model that cannot answer is refused, not a crash
        raise UploadError(
            f"{filename} failed on the test digits ({type(exc).__name__}: "
            f"{str(exc).strip()[:200] or 'no detail'})."
        ) from exc
    check_probabilities(probabilities, filename)
    result = evaluate_probabilities(probabilities, mnist.y_test)
    stem = Path(filename).stem or "model"
    return store.save_run(
        model,
        UPLOADED_CONFIG,
        history={},
        metrics={"test_loss": result.loss, "test_accuracy": result.accuracy},
        meta={
            "status": "finished",
            "uploaded": True,
            "file_name": Path(filename).name[:200],
            "file_bytes": len(data),
            "owner": owner,
            "data_source": mnist.label,
            "epochs_completed": None,
            "train_seconds": None,
        },
        name=store.unique_name(f"upload-{stem}"),
    )
