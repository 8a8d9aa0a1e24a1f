"""core.runs: atomic saves, corrupt runs listed apart, safe names, the read-only default model."""

import errno
import json

import keras
import numpy as np
import pytest

from core.models import build_model
from core.runs import ExampleStore, RunError, RunStore


@pytest.fixture(scope="module")
def model(tiny_model_config):
    return build_model(tiny_model_config)


@pytest.fixture(scope="module")
def tiny_model_config():
    from core.models import ConvBlock, ModelConfig

    return ModelConfig(
        conv_blocks=(ConvBlock(2, 3, 1, True, 0.0),), dense_units=0, train_samples=500
    )


def save(store, model, cfg, name=None, acc=0.5):
    return store.save_run(
        model, cfg, {"epoch": [1], "loss": [1.0]}, {"test_accuracy": acc, "test_loss": 1.0},
        {"status": "finished"}, name=name,
    )  # fmt: skip


def test_save_and_read_back(tmp_path, model, tiny_model_config):
    store = RunStore(tmp_path, default_dir=None)
    info = save(store, model, tiny_model_config, "first")
    assert {p.name for p in info.path.iterdir()} == {
        "model.keras", "config.json", "history.json", "metrics.json", "meta.json",
    }  # fmt: skip
    again = store.get("first")
    assert again.config == tiny_model_config and again.test_accuracy == 0.5
    loaded = store.load_model("first")
    x = np.random.default_rng(0).random((3, 28, 28, 1)).astype(np.float32)
    assert np.allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(RunError, match="already exists"):
        save(store, model, tiny_model_config, "first")


def test_a_crash_while_saving_leaves_nothing(tmp_path, model, tiny_model_config, monkeypatch):
    store = RunStore(tmp_path, default_dir=None)
    save(store, model, tiny_model_config, "good")

    def crash(path, *args, **kwargs):
        open(path, "wb").write(b"half a model")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(model, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save(store, model, tiny_model_config, "broken")
    runs, bad = store.list_runs()
    assert [r.name for r in runs] == ["good"] and bad == []
    assert [p.name for p in tmp_path.iterdir()] == ["good"]


def test_full_disk_is_a_clear_error_and_keeps_other_runs(
    tmp_path, model, tiny_model_config, monkeypatch
):
    store = RunStore(tmp_path, default_dir=None)
    save(store, model, tiny_model_config, "kept")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model, "save", full)
    with pytest.raises(RunError, match="disk is full"):
        save(store, model, tiny_model_config, "new")
    assert [r.name for r in store.list_runs()[0]] == ["kept"]
    assert store.get("kept").test_accuracy == 0.5


def test_corrupt_runs_are_listed_apart(tmp_path, model, tiny_model_config):
    store = RunStore(tmp_path, default_dir=None)
    save(store, model, tiny_model_config, "good")
    save(store, model, tiny_model_config, "badjson")
    (tmp_path / "badjson" / "config.json").write_text("{not json")
    save(store, model, tiny_model_config, "nomodel")
    (tmp_path / "nomodel" / "model.keras").unlink()
    runs, bad = store.list_runs()
    assert [r.name for r in runs] == ["good"]
    reasons = {b.name: b.reason for b in bad}
    assert set(reasons) == {"badjson", "nomodel"}
    assert "model.keras is missing" in reasons["nomodel"]


def test_corrupt_model_file_gives_a_clear_error(tmp_path, model, tiny_model_config):
    store = RunStore(tmp_path, default_dir=None)
    save(store, model, tiny_model_config, "garbled")
    (tmp_path / "garbled" / "model.keras").write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(RunError, match="cannot be loaded"):
        store.load_model("garbled")


@pytest.mark.parametrize("name", ["../x", "/etc", "a/b", "..", "", ".hidden", "a" * 65])
def test_names_cannot_escape_the_runs_folder(tmp_path, name, model, tiny_model_config):
    store = RunStore(tmp_path, default_dir=None)
    with pytest.raises(RunError):
        store.check_name(name)
    if name:  # an empty name means "choose one for me" when saving
        with pytest.raises(RunError):
            save(store, model, tiny_model_config, name)
        assert list(tmp_path.iterdir()) == []


def test_rename_delete_and_the_protected_default(tmp_path, model, tiny_model_config):
    shipped = RunStore(tmp_path / "shipped", default_dir=None)
    save(shipped, model, tiny_model_config, "model")
    store = RunStore(tmp_path / "runs", default_dir=tmp_path / "shipped" / "model")
    save(store, model, tiny_model_config, "mine")
    assert [r.name for r in store.list_runs()[0]] == ["mine", "default"]
    store.rename("mine", "renamed")
    assert store.get("renamed").meta["name"] == "renamed"
    with pytest.raises(RunError, match="cannot be deleted"):
        store.delete("default")
    with pytest.raises(RunError, match="cannot be renamed"):
        store.rename("default", "x")
    store.delete("renamed")
    assert [r.name for r in store.list_runs()[0]] == ["default"]
    assert json.loads((tmp_path / "shipped" / "model" / "metrics.json").read_text())


def test_user_examples_round_trip(tmp_path):
    examples = ExampleStore(tmp_path)
    img = np.zeros((28, 28), np.float32)
    img[10:18, 12:15] = 1.0
    examples.add(img, 1)
    examples.add(img * 0.5, 7)
    x, y = examples.load()
    assert x.shape == (2, 28, 28) and x.dtype == np.uint8
    assert sorted(y.tolist()) == [1, 7] and x.max() == 255
    assert examples.count() == 2
    with pytest.raises(ValueError):
        examples.add(np.zeros((27, 28)), 1)
    with pytest.raises(ValueError):
        examples.add(img, 10)
    assert keras.utils.to_categorical(y, 10).shape == (2, 10)
