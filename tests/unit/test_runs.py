"""core.runs: what a run is on disk, atomic writes, corrupt runs, safe names, the default model."""

import errno
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from core import runs as R
from core.runs import ExampleStore, RunError, RunNotFoundError, RunStore
from tests.conftest import TINY_CONFIG as CONFIG

HISTORY = {"epoch": [1.0, 2.0], "loss": [0.9, 0.5], "val_loss": [1.0, 0.7]}
METRICS = {"test_accuracy": 0.875, "test_loss": 0.42}
FILES = {"model.keras", "config.json", "history.json", "metrics.json", "meta.json"}


def save(store, model, name=None, metrics=METRICS, status="finished"):
    return store.save_run(model, CONFIG, HISTORY, metrics, {"status": status}, name=name)


def folder_names(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_save_writes_every_file_and_get_reads_them_back(store, tiny_model):
    info = save(
        store, tiny_model, "first", metrics={"test_accuracy": np.float32(0.875), "test_loss": 0.42}
    )
    assert info.path == store.root / "first"
    assert set(folder_names(info.path)) == FILES
    # The files themselves, read without the store.
    on_disk = {n: json.loads((info.path / n).read_text()) for n in FILES - {"model.keras"}}
    assert on_disk["config.json"]["conv_blocks"] == [
        {"filters": 4, "kernel_size": 3, "convs": 1, "pool": True, "dropout": 0.0}
    ]
    assert on_disk["history.json"] == HISTORY
    assert on_disk["metrics.json"] == METRICS  # the numpy scalar was written as a number
    assert on_disk["meta.json"]["status"] == "finished" and on_disk["meta.json"]["name"] == "first"
    again = store.get("first")
    assert again.config == CONFIG and again.history == HISTORY and again.metrics == METRICS
    assert again.status == "finished" and again.test_accuracy == 0.875 and again.test_loss == 0.42
    assert again.created_at > 0 and not again.builtin
    assert again.row()["name"] == "first" and again.row()["test_accuracy"] == 0.875
    # The model comes back with the same weights: same predictions as the one saved.
    x = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)
    loaded = store.load_model("first")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), tiny_model.predict(x, verbose=0), atol=1e-6
    )
    assert store.model_bytes("first") == (info.path / "model.keras").read_bytes()


def test_names_are_chosen_and_never_reused(store, tiny_model):
    a = save(store, tiny_model)
    b = save(store, tiny_model)
    assert a.name != b.name and a.name.startswith("tiny-") and b.name.startswith(a.name[:10])
    with pytest.raises(RunError, match="already exists"):
        save(store, tiny_model, a.name)
    assert sorted(r.name for r in store.list_runs()[0]) == sorted([a.name, b.name])


def test_unknown_run(store):
    with pytest.raises(RunNotFoundError, match="No run named 'ghost'"):
        store.get("ghost")
    with pytest.raises(RunNotFoundError):
        store.load_model("ghost")
    assert store.list_runs() == ([], [])


# ----- atomic writes -----------------------------------------------------------------------


def half_a_model_then(exc):
    def save_partly(path, *args, **kwargs):
        Path(path).write_bytes(b"PK\x03\x04 half a model")
        raise exc

    return save_partly


@pytest.mark.parametrize(
    "exc", [RuntimeError("crash while saving"), KeyboardInterrupt()], ids=["error", "interrupt"]
)
def test_a_failure_while_saving_leaves_no_run(store, tiny_model, monkeypatch, exc):
    save(store, tiny_model, "good")
    monkeypatch.setattr(tiny_model, "save", half_a_model_then(exc))
    with pytest.raises(type(exc)):
        save(store, tiny_model, "broken")
    assert folder_names(store.root) == ["good"]  # no run, no temporary folder left behind
    runs, bad = store.list_runs()
    assert [r.name for r in runs] == ["good"] and bad == []


def test_a_failure_writing_the_json_leaves_no_run(store, tiny_model):
    with pytest.raises(TypeError):
        store.save_run(tiny_model, CONFIG, {"loss": [object()]}, METRICS, name="unserialisable")
    assert folder_names(store.root) == []
    assert store.list_runs() == ([], [])


@pytest.mark.parametrize("where", ["model", "json"])
def test_a_full_disk_is_a_clear_error_and_keeps_other_runs(store, tiny_model, monkeypatch, where):
    kept = save(store, tiny_model, "kept")
    before = {n: (kept.path / n).read_bytes() for n in FILES}

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "model":
        monkeypatch.setattr(tiny_model, "save", full)
    else:
        monkeypatch.setattr(R, "_write_json", full)
    with pytest.raises(RunError, match="disk is full") as info:
        save(store, tiny_model, "new")
    assert "untouched" in str(info.value)
    assert folder_names(store.root) == ["kept"]
    assert {n: (kept.path / n).read_bytes() for n in FILES} == before
    monkeypatch.undo()
    assert store.get("kept").test_accuracy == 0.875 and store.load_model("kept") is not None


def test_other_os_errors_say_so(store, tiny_model, monkeypatch):
    def io_error(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(tiny_model, "save", io_error)
    with pytest.raises(RunError, match="could not be saved.*Input/output error"):
        save(store, tiny_model, "new")
    assert folder_names(store.root) == []


# ----- corrupt runs ------------------------------------------------------------------------


def test_corrupt_runs_are_listed_apart_from_good_ones(store, tiny_model):
    save(store, tiny_model, "good")
    save(store, tiny_model, "bad-json")
    (store.root / "bad-json" / "config.json").write_text("{not json")
    save(store, tiny_model, "no-model")
    (store.root / "no-model" / "model.keras").unlink()
    save(store, tiny_model, "no-meta")
    (store.root / "no-meta" / "meta.json").unlink()
    (store.root / "stray-file.txt").write_text("not a run")
    (store.root / ".tmp-crashed-1234").mkdir()  # a save that was interrupted long ago
    runs, bad = store.list_runs()
    assert [r.name for r in runs] == ["good"]
    reasons = {b.name: b.reason for b in bad}
    assert set(reasons) == {"bad-json", "no-model", "no-meta"}
    assert "unreadable" in reasons["bad-json"]
    assert "model.keras is missing" in reasons["no-model"]
    assert "meta.json is missing" in reasons["no-meta"]
    assert all(b.path == store.root / b.name for b in bad)


@pytest.mark.parametrize("content", [b"garbage, not a zip", "truncated"])
def test_a_corrupt_model_file_is_a_clear_error(store, tiny_model, content):
    info = save(store, tiny_model, "garbled")
    path = info.path / "model.keras"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if content == "truncated" else content)
    with pytest.raises(RunError, match="model of run 'garbled' cannot be loaded") as err:
        store.load_model("garbled")
    assert "train it again" in str(err.value)


# ----- names -------------------------------------------------------------------------------

BAD_NAMES = ["../x", "/etc", "a/b", "..", "", ".", ".hidden", "a\\b", "x" * 65, "ok\n"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_names_that_could_leave_the_runs_folder_are_refused(tmp_path, store, tiny_model, name):
    save(store, tiny_model, "mine")
    with pytest.raises(RunError):
        store.check_name(name)
    with pytest.raises(RunError):
        store.get(name)
    with pytest.raises(RunError):
        store.delete(name)
    with pytest.raises(RunError):
        store.rename("mine", name)
    if name:  # an empty name means "choose one" when saving
        with pytest.raises(RunError):
            save(store, tiny_model, name)
    assert folder_names(store.root) == ["mine"]
    assert folder_names(tmp_path) == ["runs"]  # nothing written beside the runs folder
    assert Path("/etc").is_dir()


def test_good_names_are_accepted(store):
    for name in ("a", "run-1", "My_run.v2", "9" * 64):
        assert store.check_name(name) == name


# ----- rename, delete and the shipped default model ----------------------------------------


def test_rename_and_delete(store, tiny_model):
    save(store, tiny_model, "mine")
    save(store, tiny_model, "other")
    renamed = store.rename("mine", "renamed")
    assert renamed.name == "renamed" and renamed.meta["name"] == "renamed"
    assert json.loads((store.root / "renamed" / "meta.json").read_text())["name"] == "renamed"
    assert folder_names(store.root) == ["other", "renamed"]
    with pytest.raises(RunNotFoundError):
        store.get("mine")
    with pytest.raises(RunError, match="already exists"):
        store.rename("renamed", "other")
    with pytest.raises(RunNotFoundError):
        store.rename("ghost", "new-name")
    store.delete("renamed")
    assert folder_names(store.root) == ["other"]
    with pytest.raises(RunNotFoundError):
        store.delete("renamed")


@pytest.fixture
def with_default(tmp_path, tiny_model):
    """A store whose shipped default model is a run saved into a separate folder."""
    shipped = RunStore(tmp_path / "shipped", default_dir=None)
    save(shipped, tiny_model, "model", metrics={"test_accuracy": 0.99, "test_loss": 0.03})
    store = RunStore(tmp_path / "runs", default_dir=tmp_path / "shipped" / "model")
    save(store, tiny_model, "mine")
    return store


def test_the_default_model_is_listed_last_and_read_only(with_default, tmp_path, tiny_model):
    store = with_default
    default_dir = tmp_path / "shipped" / "model"
    before = {p.name: p.read_bytes() for p in default_dir.iterdir()}
    runs, bad = store.list_runs()
    assert [r.name for r in runs] == ["mine", "default"] and bad == []
    assert runs[-1].builtin and runs[-1].test_accuracy == 0.99
    assert [r.name for r in store.list_runs(include_default=False)[0]] == ["mine"]
    with pytest.raises(RunError, match="cannot be deleted"):
        store.delete("default")
    with pytest.raises(RunError, match="cannot be renamed"):
        store.rename("default", "mine-now")
    with pytest.raises(RunError, match="already exists"):
        store.rename("mine", "default")
    with pytest.raises(RunError, match="already exists"):
        save(store, tiny_model, "default")
    assert {p.name: p.read_bytes() for p in default_dir.iterdir()} == before
    assert store.load_model("default") is not None
    assert folder_names(store.root) == ["mine"]
    store.delete("mine")
    assert [r.name for r in store.list_runs()[0]] == ["default"]


def test_a_broken_default_model_is_listed_as_unreadable(with_default, tmp_path):
    (tmp_path / "shipped" / "model" / "metrics.json").write_text("[1, 2")
    runs, bad = with_default.list_runs()
    assert [r.name for r in runs] == ["mine"] and [b.name for b in bad] == ["default"]


# ----- user examples -----------------------------------------------------------------------


def test_examples_round_trip(tmp_path):
    examples = ExampleStore(tmp_path / "examples")
    assert examples.count() == 0 and examples.load()[0].shape == (0, 28, 28)
    stroke = np.zeros((28, 28), np.float32)
    stroke[6:22, 13:16] = 1.0
    stroke[6:9, 10:13] = 0.5
    uint8 = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    examples.add(stroke, 1)
    examples.add(uint8, 7)
    assert examples.count() == 2
    x, y = examples.load()
    assert x.shape == (2, 28, 28) and x.dtype == np.uint8 and y.dtype == np.uint8
    by_label = dict(zip(y.tolist(), x, strict=True))
    assert sorted(by_label) == [1, 7]
    # Floats in [0, 1] are stored as round(value * 255).
    np.testing.assert_array_equal(by_label[1], np.rint(stroke * 255).astype(np.uint8))
    assert by_label[1][7, 11] == 128 and by_label[1][10, 14] == 255
    np.testing.assert_array_equal(by_label[7], uint8)
    assert keras.utils.to_categorical(y, 10).shape == (2, 10)
    examples.clear()
    assert examples.count() == 0


@pytest.mark.parametrize(
    ("image", "label"),
    [
        (np.zeros((27, 28)), 1),
        (np.zeros((28, 28, 1)), 1),
        (np.zeros((784,)), 1),
        (np.zeros((28, 28)), 10),
        (np.zeros((28, 28)), -1),
    ],
)
def test_examples_reject_bad_shapes_and_labels(tmp_path, image, label):
    examples = ExampleStore(tmp_path / "examples")
    with pytest.raises(ValueError):
        examples.add(image, label)
    assert examples.count() == 0


def test_unreadable_example_files_are_skipped(tmp_path):
    examples = ExampleStore(tmp_path)
    examples.add(np.ones((28, 28), np.uint8), 3)
    (tmp_path / "5-garbage.npy").write_bytes(b"not numpy")
    np.save(tmp_path / "4-wrong-shape.npy", np.zeros((10, 10), np.uint8))
    x, y = examples.load()
    assert y.tolist() == [3] and x.shape == (1, 28, 28)


def test_a_full_disk_while_adding_an_example(tmp_path, monkeypatch):
    examples = ExampleStore(tmp_path)
    examples.add(np.ones((28, 28), np.uint8), 2)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(R.os, "fsync", full)
    with pytest.raises(RunError, match="disk is full"):
        examples.add(np.ones((28, 28), np.uint8), 3)
    monkeypatch.undo()
    # The earlier example is intact and no temporary file is left behind.
    assert examples.load()[1].tolist() == [2]
    assert [p.suffix for p in tmp_path.iterdir()] == [".npy"]
