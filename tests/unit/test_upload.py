"""core.upload: a visitor's own .keras file, from a good model to hostile or wrong ones.

Each refusal is checked to leave the run store empty; the Lambda test proves that no code ran
(the lambda would write a file, and does when the same file is loaded unsafely).
"""

import io
import json
import zipfile

import keras
import numpy as np
import pytest
from keras import layers

from core import explain, upload
from core.data import held_out, preprocess_images
from core.upload import UploadError


def keras_bytes(model, tmp_path, name="model.keras") -> bytes:
    path = tmp_path / name
    model.save(path)
    return path.read_bytes()


def dense_model(inputs=(28, 28, 1), classes=10, activation="softmax"):
    x = keras.Input(inputs)
    y = layers.Dense(classes, activation=activation)(layers.Flatten()(x))
    return keras.Model(x, y)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_a_good_model_becomes_the_visitors_evaluated_run(small, store, tmp_path):
    model = dense_model()
    # A few steps of training so that its answers are not all alike.
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(preprocess_images(small.x_train), small.y_train, epochs=2, verbose=0)
    data = keras_bytes(model, tmp_path, "my digits.keras")
    info = upload.import_model(data, "my digits.keras", store, small, owner="visitor-1")
    assert info.name == "upload-my-digits"
    assert info.meta["uploaded"] is True and info.owner == "visitor-1"
    assert info.meta["file_name"] == "my digits.keras" and info.meta["file_bytes"] == len(data)
    # Test accuracy against Keras's own predictions, counted here by hand.
    probs = model.predict(preprocess_images(small.x_test), verbose=0)
    assert info.test_accuracy == pytest.approx(np.mean(probs.argmax(1) == small.y_test), abs=1e-9)
    assert info.test_accuracy > 0.5
    assert [r.name for r in store.list_runs()[0]] == [info.name]
    # The saved run loads (safe mode) and answers as the upload did.
    again = store.load_model(info.name)
    assert np.allclose(again.predict(preprocess_images(small.x_test[:50]), verbose=0), probs[:50])
    # And it calibrates for "unsure" as the Draw page does for any run: half the test set,
    # since nothing is known of what it trained on.
    explain.check_model(again, info.name)
    x, y = held_out(small, info.config)
    assert len(x) == len(small.x_test) // 2
    calibration = explain.calibrate(again, x, y)
    assert 0.5 <= calibration.confidence_threshold <= 0.99
    # A second upload of the same file is a second run, not an overwrite.
    second = upload.import_model(data, "my digits.keras", store, small, owner="visitor-1")
    assert second.name == "upload-my-digits-2"


def test_a_lambda_layer_is_refused_and_its_code_never_runs(small, store, tmp_path):
    marker = tmp_path / "the-lambda-ran"
    code = f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]"
    inputs = keras.Input((28, 28, 1))
    hidden = layers.Lambda(eval(code))(inputs)  # noqa: S307 - the hostile model under test
    model = keras.Model(inputs, layers.Dense(10, activation="softmax")(layers.Flatten()(hidden)))
    path = tmp_path / "lambda.keras"
    model.save(path)
    marker.unlink()  # building the model ran the lambda once; from here on it must not
    data = path.read_bytes()

    with pytest.raises(UploadError, match="Lambda layer.*never runs code"):
        upload.import_model(data, "lambda.keras", store, small, owner="visitor-1")
    assert not marker.exists()
    assert store.list_runs() == ([], [])
    # The second wall: Keras's safe mode alone refuses it too, without running it.
    with pytest.raises(ValueError, match="(?i)lambda"):
        keras.saving.load_model(path, safe_mode=True)
    assert not marker.exists()
    # The test can fail: loading the same file unsafely does run the lambda.
    keras.saving.load_model(path, safe_mode=False)
    assert marker.read_text() == "ran"


@pytest.mark.parametrize(
    "config",
    [
        {"class_name": "Sequential", "config": {"layers": [{"class_name": "TFSMLayer"}]}},
        {"module": "os", "class_name": "system", "config": {}},
        {"module": "keras.layers", "class_name": "Dense", "registered_name": "evil>Layer"},
    ],
)
def test_code_or_classes_from_outside_keras_are_refused_before_keras_reads_them(
    config, small, store, monkeypatch
):
    def never(*args, **kwargs):
        raise AssertionError("Keras must not see this file")

    monkeypatch.setattr(keras.saving, "load_model", never)
    data = zip_bytes({"config.json": json.dumps(config).encode(), "model.weights.h5": b"x"})
    with pytest.raises(UploadError, match="Keras"):
        upload.import_model(data, "odd.keras", store, small, owner="v")
    assert store.list_runs() == ([], [])


def test_wrong_shapes_are_refused_with_what_would_work(small, store, tmp_path):
    cases = (
        (dense_model(inputs=(32, 32, 3)), "inputs of shape 32x32x3.*28x28x1"),
        (dense_model(classes=5), "answers with shape 5.*10 outputs"),
    )
    for model, message in cases:
        with pytest.raises(UploadError, match=message):
            upload.import_model(keras_bytes(model, tmp_path), "wrong.keras", store, small, "v")
    two = keras.Input((28, 28, 1)), keras.Input((28, 28, 1))
    merged = layers.Dense(10, activation="softmax")(layers.Flatten()(layers.Add()(list(two))))
    with pytest.raises(UploadError, match="2 input"):
        upload.import_model(
            keras_bytes(keras.Model(list(two), merged), tmp_path), "two.keras", store, small, "v"
        )
    # Logits, not probabilities: the figures would be wrong, so it is refused too.
    with pytest.raises(UploadError, match="not probabilities.*softmax"):
        model = dense_model(activation=None)
        upload.import_model(keras_bytes(model, tmp_path), "logits.keras", store, small, "v")
    assert store.list_runs() == ([], [])


def test_a_zip_that_is_not_a_model_and_a_file_that_is_not_a_zip(small, store):
    readme = zip_bytes({"readme.txt": b"hello"})
    with pytest.raises(UploadError, match="zip archive but not a Keras model.*config.json"):
        upload.import_model(readme, "notes.keras", store, small, owner="v")
    with pytest.raises(UploadError, match="not a .keras file"):
        upload.import_model(b"GIF89a not a zip", "picture.keras", store, small, owner="v")
    # A model's members plus something else (assets Keras would unpack to disk): refused.
    extra = zip_bytes({"config.json": b"{}", "model.weights.h5": b"", "assets/run.sh": b"rm"})
    with pytest.raises(UploadError, match="assets/run.sh"):
        upload.import_model(extra, "extra.keras", store, small, owner="v")
    # A model whose weights are not HDF5: Keras's error, in one clear sentence.
    junk = zip_bytes({"config.json": b'{"class_name": "Sequential"}', "model.weights.h5": b"junk"})
    with pytest.raises(UploadError, match="could not be loaded as a Keras model"):
        upload.import_model(junk, "junk.keras", store, small, owner="v")
    assert store.list_runs() == ([], [])


def test_an_oversized_model_is_refused_before_anything_is_inflated(small, store, monkeypatch):
    # 60 MB of zeros deflate to about 60 KB: only the zip's declared sizes tell.
    big = zip_bytes({"config.json": b"{}", "model.weights.h5": bytes(60 * 1024 * 1024)})
    assert len(big) < 1024 * 1024

    def no_inflating(*args, **kwargs):
        raise AssertionError("a member was opened before the sizes were checked")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_inflating)
    with pytest.raises(UploadError, match="inflate to 60.0 MB; the limit is 50 MB"):
        upload.import_model(big, "big.keras", store, small, owner="v")
    # A file over the upload limit is refused before it is even opened as a zip.
    with pytest.raises(UploadError, match="the limit is 50 MB"):
        upload.check_archive(bytes(upload.MAX_UPLOAD_BYTES + 1), "huge.keras")
    assert store.list_runs() == ([], [])
