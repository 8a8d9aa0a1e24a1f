"""core.data: MNIST from IDX (gzip, raw), npz, the offline sample; every kind of bad file."""

import gzip
import shutil

import keras
import numpy as np
import pytest

from core import data as D
from core.data import DataError, load_local, load_mnist, load_sample


def test_full_mnist_from_gzip_idx(mnist):
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_train.dtype == np.uint8
    assert mnist.y_train.shape == (60000,) and mnist.y_train.dtype == np.uint8
    assert mnist.x_test.shape == (10000, 28, 28) and mnist.y_test.shape == (10000,)
    # Facts from the data's README, independent of the loader.
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert (mnist.y_train == 0).sum() == 5923 and (mnist.y_train == 1).sum() == 6742
    assert mnist.source == "local" and not mnist.is_sample
    assert str(mnist.x_train.shape) in str(mnist.shapes())


@pytest.fixture
def raw_dir(mnist_dir, tmp_path):
    """The four IDX files un-gzipped into a folder."""
    for stem in D.IDX_FILES.values():
        with gzip.open(mnist_dir / f"{stem}.gz") as src, open(tmp_path / stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return tmp_path


def test_raw_idx_equals_gzip(raw_dir, mnist):
    raw = load_local(raw_dir)
    assert np.array_equal(raw.x_train, mnist.x_train)
    assert np.array_equal(raw.y_test, mnist.y_test)


def test_keras_npz(tmp_path, mnist):
    np.savez(
        tmp_path / "mnist.npz",
        x_train=mnist.x_train[:100],
        y_train=mnist.y_train[:100],
        x_test=mnist.x_test[:50],
        y_test=mnist.y_test[:50],
    )
    d = load_local(tmp_path)
    assert d.x_train.shape == (100, 28, 28) and d.y_test.tolist() == mnist.y_test[:50].tolist()


def test_npz_missing_key_names_the_file(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match="mnist.npz.*y_train"):
        load_local(tmp_path)


def _corrupt(raw_dir, stem, data: bytes):
    (raw_dir / stem).write_bytes(data)


def test_wrong_magic_number(raw_dir):
    path = raw_dir / "train-labels-idx1-ubyte"
    raw = bytearray(path.read_bytes())
    raw[2:4] = (2051).to_bytes(2, "big")  # an image magic where labels belong
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.*magic"):
        load_local(raw_dir)


def test_truncated_file(raw_dir):
    path = raw_dir / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.*truncated"):
        load_local(raw_dir)


def test_counts_disagree(raw_dir):
    path = raw_dir / "t10k-labels-idx1-ubyte"
    raw = path.read_bytes()
    header = raw[:4] + (9999).to_bytes(4, "big")
    path.write_bytes(header + raw[8:-1])
    with pytest.raises(DataError, match="10,000 images.*9,999 labels"):
        load_local(raw_dir)


def test_garbage_gzip(mnist_dir, tmp_path):
    for stem in D.IDX_FILES.values():
        shutil.copy(mnist_dir / f"{stem}.gz", tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"this is not gzip at all")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_local(tmp_path)


def test_missing_files_named(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        load_local(tmp_path)


def test_mnist_dir_environment_variable(monkeypatch, mnist_dir):
    monkeypatch.setenv("MNIST_DIR", str(mnist_dir))
    d = load_mnist()
    assert d.source == "local" and str(mnist_dir) in d.description


def test_offline_sample_is_real_and_deterministic(monkeypatch):
    monkeypatch.delenv("MNIST_DIR", raising=False)
    a = load_mnist(allow_download=False)
    b = load_sample()
    assert a.is_sample and a.source == "sample" and "sample" in a.label.lower()
    assert len(a.x_train) == 4000 and len(a.x_test) == 1000
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_train, b.y_train)
    assert np.bincount(a.y_test, minlength=10).tolist() == [100] * 10
    assert a.x_train.dtype == np.uint8 and a.x_train.max() == 255


def test_preprocessing_matches_the_tutorial(mnist):
    x = mnist.x_train[:5]
    out = D.preprocess_images(x)
    assert out.shape == (5, 28, 28, 1) and out.dtype == np.float32
    assert np.allclose(out[..., 0], x / 255.0)
    assert np.array_equal(
        D.one_hot(mnist.y_train[:50]), keras.utils.to_categorical(mnist.y_train[:50], 10)
    )


def test_dataset_scales_each_batch(mnist):
    x, y = mnist.x_train[:300], mnist.y_train[:300]
    batches = list(D.make_dataset(x, y, 128))
    assert [len(b[0]) for b in batches] == [128, 128, 44]
    images = np.concatenate([b[0].numpy() for b in batches])
    labels = np.concatenate([b[1].numpy() for b in batches])
    assert np.allclose(images[..., 0], x / 255.0)
    assert np.array_equal(labels, keras.utils.to_categorical(y, 10))


def test_shuffled_dataset_covers_every_sample_once(mnist):
    x = np.arange(200, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8)
    y = np.zeros(200, np.uint8)
    seen = np.concatenate(
        [b[0].numpy()[:, 0, 0, 0] for b in D.make_dataset(x, y, 64, shuffle=True)]
    )
    assert sorted(np.rint(seen * 255).astype(int).tolist()) == list(range(200))
    assert seen.tolist() != sorted(seen.tolist())


def test_validation_split_takes_the_end(mnist):
    x, y = mnist.x_train[:100], mnist.y_train[:100]
    x_tr, y_tr, x_val, y_val = D.validation_split(x, y, 0.1)
    assert len(x_tr) == 90 and np.array_equal(x_val, x[90:]) and np.array_equal(y_val, y[90:])
