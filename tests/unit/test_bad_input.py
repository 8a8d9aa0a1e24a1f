"""Every kind of bad input the issue lists (run folders, model files, MNIST files, uploads, links)
gives a clear message, never a traceback: each test asserts the message."""

import errno
import gzip
import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, PngImagePlugin

from core import data as D
from core import draw_session, drawing
from core import runs as R
from core.data import DataError, load_local
from core.drawing import ImageError, load_image_bytes, prepare
from core.models import ModelConfig, read_query
from core.runs import RunError, RunStore
from core.train_form import from_state, override_errors, read_link
from tests.conftest import TINY_CONFIG
from tests.unit.test_data import STEMS, idx_bytes, tiny_arrays, write_folder

# ----- run folders -------------------------------------------------------------------------


@pytest.fixture
def two_runs(store, tiny_model):
    """A store with a good run and a run called 'broken' whose files the test spoils."""
    for name in ("good", "broken"):
        store.save_run(tiny_model, TINY_CONFIG, {"loss": [0.5]}, {"test_accuracy": 0.5}, name=name)
    return store


BAD_FILES = [
    ("config.json", '{"epochs": "ten"}', "config.json: epochs must be a whole number between 1 and 100 (got 'ten')"),
    ("config.json", '{"epochs": 2.5}', "epochs must be a whole number"),
    ("config.json", '{"epochs": 1000}', "epochs must be between 1 and 100 (got 1000)"),
    ("config.json", '{"epochs": 1' + "0" * 400 + "}", "epochs must be a whole number, not 1000"),
    ("config.json", '{"learning_rate": Infinity}', "learning_rate must be a number, not inf"),
    ("config.json", '{"learning_rate": NaN}', "learning_rate must be a number, not nan"),
    ("config.json", '{"conv_blocks": 5}', "conv_blocks must be a list of 1 to 4 blocks, not 5"),
    ("config.json", '{"conv_blocks": []}', "conv_blocks must be a list of 1 to 4 blocks"),
    ("config.json", '{"conv_blocks": [7]}', "block 1 must be an object of filters"),
    ("config.json", '{"conv_blocks": [{"filters": "many"}]}', "block 1 filters must be a whole number"),
    ("config.json", '{"conv_blocks": [{"pool": 1}]}', "block 1 pool must be on or off (got 1)"),
    ("config.json", '{"padding": "diagonal"}', "padding must be one of valid, same (got 'diagonal')"),
    ("config.json", '{"batch_norm": "yes"}', "batch_norm must be on or off (got 'yes')"),
    ("config.json", '{"train_samples": "all"}', "train_samples must be a whole number"),
    ("config.json", '{"preset": 3}', "preset must be a name, not 3"),
    ("config.json", "null", "config.json holds null, not an object of settings"),
    ("config.json", "[1, 2]", "config.json holds a list, not an object of settings"),
    ("config.json", "{not json", "config.json is not valid JSON"),
    ("history.json", "[1, 2]", "history.json holds a list, not an object of curves"),
    ("history.json", '{"loss": "low"}', "history.json: loss must be a list of numbers, not 'low'"),
    ("history.json", '{"loss": [0.5, null]}', "history.json: loss holds None, not a number"),
    ("history.json", '{"loss": [true]}', "history.json: loss holds True, not a number"),
    ("metrics.json", '{"test_accuracy": "high"}', "metrics.json: test_accuracy must be a number, not 'high'"),
    ("metrics.json", '{"test_accuracy": 7}', "test_accuracy must be between 0 and 1, not 7"),
    ("metrics.json", '{"test_loss": null}', "metrics.json: test_loss must be a number, not None"),
    ("metrics.json", '"0.9"', "metrics.json holds text, not an object of numbers"),
    ("meta.json", "[]", "meta.json holds a list, not an object"),
    ("meta.json", '{"saved_at": "yesterday"}', "meta.json: saved_at cannot be 'yesterday'"),
    ("meta.json", '{"saved_at": -5}', "meta.json: saved_at cannot be -5"),
    ("meta.json", '{"status": ["finished"]}', "meta.json: status cannot be ['finished']"),
    ("meta.json", '{"owner": 5}', "meta.json: owner cannot be 5"),
    ("meta.json", '{"epochs_completed": true}', "meta.json: epochs_completed cannot be True"),
]  # fmt: skip


@pytest.mark.parametrize(("file", "content", "words"), BAD_FILES)
def test_a_run_file_of_the_wrong_type_makes_only_that_run_unreadable(
    two_runs, file, content, words
):
    store = two_runs
    (store.root / "broken" / file).write_text(content)
    runs, bad = store.list_runs()
    assert [r.name for r in runs] == ["good"]
    assert [b.name for b in bad] == ["broken"]
    assert bad[0].reason.startswith("Run 'broken' is unreadable: ")
    assert words in bad[0].reason, bad[0].reason
    with pytest.raises(RunError, match="Run 'broken' is unreadable") as info:
        store.get("broken")
    assert words in str(info.value)
    # What every page does with the listed runs still works for the good one.
    assert runs[0].row()["test_accuracy"] == 0.5
    # The unreadable run can be deleted like any other.
    store.delete("broken")
    assert store.list_runs()[1] == [] and not (store.root / "broken").exists()


@pytest.mark.parametrize(
    ("file", "spoil", "words"),
    [
        ("history.json", lambda p: p.write_text('{"loss": [' + "0.5, " * 300_000 + "0.5]}"),
         "history.json is larger than 1024 kB"),
        ("meta.json", lambda p: p.write_text("[" * 60_000 + "]" * 60_000),
         "meta.json is larger than 64 kB"),
        ("history.json", lambda p: p.write_text("[" * 200_000 + "]" * 200_000),
         "history.json is nested too deeply"),
        ("config.json", lambda p: p.write_bytes(b'{"preset": "\xff\xfe"}'), "config.json is not UTF-8"),
        ("metrics.json", lambda p: (p.unlink(), p.mkdir()), "metrics.json cannot be read"),
        ("model.keras", lambda p: p.write_bytes(b""), "model.keras is empty"),
        ("model.keras", lambda p: (p.unlink(), p.mkdir()), "model.keras is not a file"),
        ("model.keras", lambda p: _sparse(p, R.MAX_MODEL_BYTES + 1), "over Digit Lab's limit of 67 MB"),
    ],
    ids=["huge-history", "huge-meta", "deep-nesting", "not-utf8", "a-folder", "empty-model",
         "model-folder", "huge-model"],
)  # fmt: skip
def test_huge_odd_or_missing_files_make_the_run_unreadable(two_runs, file, spoil, words):
    store = two_runs
    spoil(store.root / "broken" / file)
    runs, bad = store.list_runs()
    assert [r.name for r in runs] == ["good"] and [b.name for b in bad] == ["broken"]
    assert words in bad[0].reason, bad[0].reason
    store.delete("broken")
    assert not (store.root / "broken").exists()


def _sparse(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


@pytest.mark.parametrize("name", ["my run", "ünïcode", "x" * 80, "default"])
def test_a_folder_with_a_name_no_run_may_have_is_listed_and_can_be_deleted(two_runs, name):
    store = RunStore(two_runs.root, default_dir=two_runs.root / "good")  # so 'default' is taken
    (store.root / "broken").rename(store.root / name)
    runs, bad = store.list_runs()
    assert {r.name for r in runs} == {"good", "default"}
    reasons = {b.name: b.reason for b in bad}
    assert set(reasons) == {name}
    words = "has the shipped model's name" if name == "default" else "is not a valid run name"
    assert words in reasons[name], reasons[name]
    if name != "default":
        store.delete(name)
        assert not (store.root / name).exists()


def test_an_oddly_named_folder_can_be_renamed_into_a_readable_run(two_runs):
    store = two_runs
    (store.root / "broken").rename(store.root / "my run")
    renamed = store.rename("my run", "fixed")
    assert renamed.name == "fixed" and renamed.test_accuracy == 0.5
    assert {r.name for r in store.list_runs()[0]} == {"good", "fixed"}


def test_renaming_an_unreadable_run_returns_it_as_unreadable(two_runs):
    store = two_runs
    (store.root / "broken" / "config.json").write_text("null")
    moved = store.rename("broken", "still-broken")
    assert isinstance(moved, R.UnreadableRun) and "config.json holds null" in moved.reason
    assert json.loads((store.root / "still-broken" / "meta.json").read_text())["name"] == (
        "still-broken"
    )


def test_an_unreadable_runs_folder_is_one_unreadable_entry(store, monkeypatch):
    store.root.mkdir()

    def denied(self):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "iterdir", denied)
    runs, bad = store.list_runs()
    assert runs == [] and len(bad) == 1
    assert "runs folder" in bad[0].reason and "Permission denied" in bad[0].reason


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_rename_and_delete_on_a_read_only_folder_are_clear_and_lose_nothing(
    two_runs, monkeypatch, code
):
    store = two_runs
    before = {p.name: p.read_bytes() for p in (store.root / "good").iterdir()}

    def read_only(*args, **kwargs):
        raise OSError(code, "Read-only file system" if code == errno.EROFS else "Permission denied")

    monkeypatch.setattr(R.os, "rename", read_only)
    with pytest.raises(RunError, match="could not be renamed: the runs folder is read-only") as e:
        store.rename("good", "better")
    assert "Nothing was changed" in str(e.value)
    with pytest.raises(RunError, match="could not be deleted: the runs folder is read-only"):
        store.delete("good")
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in (store.root / "good").iterdir()} == before
    assert sorted(p.name for p in store.root.iterdir()) == ["broken", "good"]


# ----- model files -------------------------------------------------------------------------


def _keras_zip(path: Path, members: dict[str, bytes], deflate: bool = False) -> None:
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def forbid_inflating(monkeypatch) -> None:
    """From now on, opening any zip member or asking Keras to load fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("inflated before the size check")

    monkeypatch.setattr(zipfile.ZipFile, "open", refuse)
    monkeypatch.setattr("keras.saving.load_model", refuse)


def test_a_compressed_bomb_model_is_refused_by_its_declared_sizes(two_runs, monkeypatch):
    path = two_runs.root / "broken" / "model.keras"
    _keras_zip(path, {"config.json": b"{}", "model.weights.h5": bytes(80_000_000)}, deflate=True)
    forbid_inflating(monkeypatch)
    assert path.stat().st_size < 1_000_000  # 80 MB of zeros, a few hundred kB on disk
    with pytest.raises(RunError, match="would inflate to 80 MB, over Digit Lab's limit of 67 MB"):
        two_runs.load_model("broken")


def test_weights_whose_compressed_datasets_declare_too_much_are_refused(two_runs, tmp_path):
    import h5py

    weights = tmp_path / "model.weights.h5"
    with h5py.File(weights, "w") as f:
        # 80 MB declared, nothing written: a few kB on disk, 80 MB when read.
        f.create_dataset("layers/dense/vars/0", shape=(20_000, 1_000), dtype="f4",
                         compression="gzip", chunks=(1000, 1000))  # fmt: skip
    path = two_runs.root / "broken" / "model.keras"
    _keras_zip(path, {"config.json": b"{}", "metadata.json": b"{}",
                      "model.weights.h5": weights.read_bytes()})  # fmt: skip
    with pytest.raises(RunError, match="its weights would inflate to 80 MB"):
        two_runs.load_model("broken")


def test_a_model_archive_with_strange_members_is_refused(two_runs, monkeypatch):
    path = two_runs.root / "broken" / "model.keras"
    _keras_zip(path, {"config.json": b"{}", "../../evil.py": b"print('hi')"})
    forbid_inflating(monkeypatch)
    with pytest.raises(RunError, match="not a Keras model's config.json") as info:
        two_runs.load_model("broken")
    assert "Delete the run or train it again" in str(info.value)


# ----- MNIST files -------------------------------------------------------------------------


def _gzip_folder(tmp_path):
    return write_folder(tmp_path / "idx", tiny_arrays(), gz=True)


def test_a_corrupt_gzip_is_a_data_error_naming_the_file(tmp_path):
    folder = _gzip_folder(tmp_path)
    path = folder / f"{STEMS['x_test']}.gz"
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 40] = b"\xff" * 40  # inside the deflate stream, past the IDX header
    path.write_bytes(bytes(raw))
    with pytest.raises(
        DataError, match=r"t10k-images-idx3-ubyte\.gz: cannot read the file, it is damaged"
    ):
        load_local(folder)


def test_a_gzip_whose_header_promises_too_much_is_refused_before_reading(tmp_path, monkeypatch):
    folder = _gzip_folder(tmp_path)
    header = struct.pack(">IIII", 2051, 100_000, 28, 28)  # 78 MB promised
    (folder / f"{STEMS['x_train']}.gz").write_bytes(gzip.compress(header + bytes(1000)))
    with pytest.raises(
        DataError, match=r"train-images-idx3-ubyte\.gz: the header promises \(100000, 28, 28\)"
    ) as info:
        load_local(folder)
    assert "more than an MNIST file holds" in str(info.value) and "not read" in str(info.value)


def test_a_gzip_that_inflates_past_its_header_is_read_no_further(tmp_path, monkeypatch):
    folder = _gzip_folder(tmp_path)
    images = tiny_arrays()["x_train"]
    # The header says 6 images; the stream goes on for 20 MB of zeros.
    bomb = gzip.compress(idx_bytes(images) + bytes(20_000_000), compresslevel=1)
    (folder / f"{STEMS['x_train']}.gz").write_bytes(bomb)
    inflated = []
    real_open = gzip.open

    class Counting:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def read(self, n=-1):
            out = self.f.read(n)
            inflated.append(len(out))
            return out

    monkeypatch.setattr(D.gzip, "open", lambda *a, **k: Counting(real_open(*a, **k)))
    with pytest.raises(
        DataError, match=r"train-images-idx3-ubyte\.gz: truncated or padded.*or more"
    ):
        load_local(folder)
    assert sum(inflated) <= len(idx_bytes(images)) + 1


def test_a_corrupt_npz_is_a_data_error_naming_the_file(tmp_path):
    np.savez_compressed(tmp_path / "mnist.npz", **tiny_arrays())
    raw = (tmp_path / "mnist.npz").read_bytes()
    (tmp_path / "mnist.npz").write_bytes(raw[: len(raw) // 2])  # cut: no zip directory left
    with pytest.raises(DataError, match=r"mnist\.npz: not a readable npz file, it is damaged"):
        load_local(tmp_path)


def test_an_npz_with_a_damaged_member_is_a_data_error_naming_the_file(tmp_path):
    arrays = tiny_arrays()
    arrays["x_train"] = np.zeros((6, 28, 28), np.uint8)
    np.savez_compressed(tmp_path / "mnist.npz", **arrays)
    raw = bytearray((tmp_path / "mnist.npz").read_bytes())
    start = raw.index(b"x_train.npy") + len("x_train.npy") + 10
    raw[start : start + 20] = b"\x00" * 20
    (tmp_path / "mnist.npz").write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"mnist\.npz"):
        load_local(tmp_path)


def _declare(npz: Path, member: str, size: int) -> None:
    """Make the zip directory declare `size` inflated bytes for member (nothing else changes)."""
    raw = bytearray(npz.read_bytes())
    entry = raw.index(b"PK\x01\x02")
    while raw[entry + 46 : entry + 46 + len(member)] != member.encode():
        entry = raw.index(b"PK\x01\x02", entry + 4)
    raw[entry + 24 : entry + 28] = struct.pack("<I", size)
    npz.write_bytes(bytes(raw))


def test_an_npz_member_declaring_too_much_is_refused_before_inflating(tmp_path, monkeypatch):
    np.savez_compressed(tmp_path / "mnist.npz", **tiny_arrays())
    _declare(tmp_path / "mnist.npz", "x_train.npy", 3_000_000_000)
    with pytest.raises(DataError, match=r"mnist\.npz\[x_train\]: declares 3,000,000,000 bytes"):
        load_local(tmp_path)


def test_an_npz_array_larger_than_mnist_is_refused_from_its_header(tmp_path):
    arrays = tiny_arrays()
    arrays["y_train"] = np.zeros(D.MAX_IMAGES + 1, np.uint8)
    np.savez_compressed(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(DataError, match=r"mnist\.npz\[y_train\]: has shape \(60001,\), more than"):
        load_local(tmp_path)


@pytest.mark.parametrize(
    ("value", "words"),
    [(np.zeros((6, 28, 28), np.float32), "holds float32 values"),
     (np.full((6, 28, 28), 300, np.int16), "values outside 0-255")],
)  # fmt: skip
def test_an_npz_of_the_wrong_kind_of_numbers_is_refused(tmp_path, value, words):
    arrays = tiny_arrays()
    arrays["x_train"] = value
    np.savez(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(DataError, match=r"mnist\.npz\[x_train\]") as info:
        load_local(tmp_path)
    assert words in str(info.value)


def test_an_npz_of_wider_integers_within_range_still_loads(tmp_path):
    arrays = tiny_arrays()
    np.savez(tmp_path / "mnist.npz", **{k: v.astype(np.int64) for k, v in arrays.items()})
    loaded = load_local(tmp_path)
    assert loaded.x_train.dtype == np.uint8 and np.array_equal(loaded.x_train, arrays["x_train"])


# ----- uploads -----------------------------------------------------------------------------


def _encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _digit(side: int = 300) -> Image.Image:
    """A dark 7 on white paper."""
    img = Image.new("L", (side, side), 255)
    ImageDraw.Draw(img).line(
        [(side * 0.2, side * 0.2), (side * 0.75, side * 0.2), (side * 0.4, side * 0.85)],
        fill=0,
        width=max(2, side // 15),
    )
    return img


@pytest.mark.parametrize(("size", "words"), [((1, 50), "1 x 50"), ((50, 1), "50 x 1"),
                                             ((1, 1), "1 x 1"), ((7, 300), "7 x 300")])  # fmt: skip
def test_images_one_pixel_high_or_wide_get_a_clear_message(size, words):
    with pytest.raises(ImageError, match="too small to hold a digit") as info:
        load_image_bytes(_encode(Image.new("L", size, 255)))
    assert words in str(info.value) and "at least 8 pixels" in str(info.value)
    with pytest.raises(ImageError, match="too small"):
        draw_session.load_upload(_encode(Image.new("L", size, 255)))


def test_an_image_that_would_not_fit_in_memory_is_refused_from_its_header(monkeypatch):
    # 36 megapixels of CMYK, converted whole: 288 MB, refused before a pixel is decoded.
    data = _encode(Image.new("CMYK", (6000, 6000)), "TIFF", compression="tiff_adobe_deflate")

    def no_decoding(self):
        raise AssertionError("decoded before the memory check")

    monkeypatch.setattr("PIL.TiffImagePlugin.TiffImageFile.load", no_decoding)
    with pytest.raises(
        ImageError, match="would take about 288 MB of memory to decode, over the 200 MB"
    ):
        load_image_bytes(data)


def test_a_png_with_a_compressed_text_bomb_is_refused():
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "a" * 3_000_000, zip=True)
    data = _encode(_digit(64), pnginfo=info)
    assert len(data) < 10_000
    with pytest.raises(ImageError, match="more compressed metadata than is safe to unpack"):
        load_image_bytes(data)


def test_a_picture_over_pillows_bomb_limit_is_refused():
    data = _encode(Image.new("1", (10_000, 10_000)))  # 100 megapixels, a few kB
    with pytest.raises(ImageError, match="too large"):
        load_image_bytes(data)


def test_a_truncated_jpeg_is_damaged():
    data = _encode(_digit().convert("RGB"), "JPEG")
    with pytest.raises(ImageError, match="truncated or damaged"):
        load_image_bytes(data[: len(data) // 2])


def test_a_large_upload_is_shrunk_before_it_becomes_an_array_and_decoded_once(monkeypatch):
    data = _encode(_digit(3000).convert("RGBA"))
    array = draw_session.load_upload(data)
    assert array.shape == (1000, 1000, 4) and array.dtype == np.uint8
    assert not array.flags.writeable  # shared by every rerun and tab: never changed in place
    monkeypatch.setattr(drawing, "load_image_bytes", lambda *a, **k: pytest.fail("decoded twice"))
    assert draw_session.load_upload(data) is array
    reference = prepare(np.asarray(_digit(300)))
    assert np.corrcoef(prepare(array).ravel(), reference.ravel())[0, 1] > 0.95


def test_a_large_jpeg_is_decoded_at_a_reduced_scale():
    data = _encode(_digit(4000).convert("RGB"), "JPEG", quality=90)
    array = load_image_bytes(data, max_side=1024)
    assert max(array.shape[:2]) <= 1024
    reference = prepare(np.asarray(_digit(300)))
    assert np.corrcoef(prepare(array).ravel(), reference.ravel())[0, 1] > 0.95


def _modes() -> dict[str, bytes]:
    digit = _digit(200)
    frames = [digit.convert("P"), Image.new("P", (200, 200), 0)]
    animated = io.BytesIO()
    frames[0].save(animated, "GIF", save_all=True, append_images=frames[1:], duration=100)
    palette = digit.convert("P")
    palette.info["transparency"] = 255
    return {
        "animated-gif": animated.getvalue(),
        "cmyk-jpeg": _encode(digit.convert("CMYK"), "JPEG"),
        "cmyk-tiff": _encode(digit.convert("CMYK"), "TIFF"),
        "16-bit-png": _encode(Image.fromarray(np.asarray(digit).astype(np.uint16) * 257)),
        "32-bit-tiff": _encode(digit.convert("I"), "TIFF"),
        "float-tiff": _encode(digit.convert("F"), "TIFF"),
        "palette-transparent": _encode(palette),
        "la-png": _encode(digit.convert("LA")),
        "bilevel": _encode(digit.convert("1")),
        "ycbcr-jpeg": _encode(digit.convert("RGB"), "JPEG", subsampling=0),
        "lab-tiff": _encode(digit.convert("RGB").convert("LAB"), "TIFF"),
        "webp": _encode(digit.convert("RGB"), "WEBP"),
        "bmp": _encode(digit, "BMP"),
    }


@pytest.mark.parametrize("kind", list(_modes()))
def test_every_mode_of_upload_is_read_like_the_plain_one(kind):
    reference = prepare(np.asarray(_digit(200)))
    for max_side in (None, 100):
        array = load_image_bytes(_modes()[kind], max_side=max_side)
        assert array.dtype == np.uint8 and array.ndim in (2, 3)
        if max_side:
            assert max(array.shape[:2]) <= max_side
        x = prepare(array)
        assert x is not None, kind
        assert np.corrcoef(x.ravel(), reference.ravel())[0, 1] > 0.9, kind


# ----- links -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"learning_rate": "10"}, "learning_rate", "learning_rate must be between 1e-05 and 1 (got 10)"),
        ({"epochs": "0"}, "epochs", "epochs must be between 1 and 100 (got 0)"),
        ({"batch_size": "-3"}, "batch_size", "batch_size must be between 1 and 4096 (got -3)"),
        ({"padding": "round"}, "padding", "padding='round' in the link is not readable: use valid, same"),
        ({"epochs": "ten"}, "epochs", "epochs='ten' in the link is not readable: use a whole number"),
        ({"learning_rate": "inf"}, "learning_rate", "learning_rate='inf' in the link is not readable"),
        ({"augment": "maybe"}, "augment", "augment='maybe' in the link is not readable: use 1 or 0"),
        ({"blocks": "32-3"}, "conv_blocks", "blocks='32-3' in the link is not readable"),
        ({"blocks": "999-3-1-p-0"}, "conv_blocks[0].filters", "block 1 filters must be between 1 and 256 (got 999)"),
    ],
)  # fmt: skip
def test_bad_link_values_are_named_against_their_field_and_never_rewritten(params, field, words):
    link = read_link(params, available=60_000)
    config = from_state(link.state, link.overrides)
    messages = config.errors() | override_errors(link.overrides)
    assert words in messages[field], messages
    # The value the link gave is the one the form holds, not a widget's minimum.
    readable = read_query(params, ModelConfig())[1] == {}
    if readable and field in ("learning_rate", "epochs", "batch_size"):
        assert getattr(config, field) == float(params[field])


def test_zlib_errors_are_what_a_damaged_deflate_stream_raises():
    """The premise of the corrupt-gzip test: zlib.error is not an OSError."""
    with pytest.raises(zlib.error):
        zlib.decompress(b"x\x9c\xff\xff\xff\xff")
    assert not issubclass(zlib.error, OSError)
