"""The command line end to end, as a user runs it, on a small slice of MNIST."""

import contextlib
import dataclasses
import io
import json
import zipfile
from pathlib import Path

import h5py
import pytest

from tests.conftest import TINY_CONFIG
from tests.conftest import run_cli as run


@pytest.mark.slow
def test_train_then_evaluate(mnist_dir, tmp_path):
    runs = tmp_path / "runs"
    out = run("train", "--preset", "fast", "--train-samples", "1000", "--epochs", "1",
              "--data-dir", str(mnist_dir), "--runs-dir", str(runs), "--no-optimizer")  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("data: Local IDX files")
    assert any(line.startswith("epoch 1/1") for line in lines)
    result = json.loads(lines[-1])
    assert {"run", "test_accuracy", "test_loss", "train_seconds", "epochs", "peak_rss_mb"} <= set(
        result
    )
    assert result["state"] == "finished" and result["preset"] == "fast"
    assert result["epochs"] == 1 and result["train_seconds"] > 0 and result["peak_rss_mb"] > 0
    assert 0.1 < result["test_accuracy"] <= 1.0 and result["test_loss"] > 0
    run_dir = runs / result["run"]
    assert (run_dir / "model.keras").is_file()
    # --no-optimizer: the saved file holds the weights and no optimizer state.
    assert result["model_bytes"] == (run_dir / "model.keras").stat().st_size
    with zipfile.ZipFile(run_dir / "model.keras") as archive:
        with archive.open("model.weights.h5") as weights, h5py.File(weights) as h5:
            assert "optimizer" not in h5 and "layers" in h5
    # What was printed is what was saved.
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["test_accuracy"] == result["test_accuracy"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset"] == "fast" and config["epochs"] == 1
    assert config["train_samples"] == 1000

    again = run("evaluate", result["run"], "--runs-dir", str(runs), "--data-dir", str(mnist_dir))
    assert again.returncode == 0, again.stderr[-2000:]
    evaluated = json.loads(again.stdout.strip().splitlines()[-1])
    assert evaluated["run"] == result["run"] and evaluated["test_samples"] == 10_000
    assert abs(evaluated["test_accuracy"] - result["test_accuracy"]) < 1e-6
    assert abs(evaluated["test_loss"] - result["test_loss"]) < 1e-5
    assert evaluated["recorded_test_accuracy"] == result["test_accuracy"]


def test_bad_preset_fails_on_stderr(tmp_path):
    bad = run("train", "--preset", "huge", "--runs-dir", str(tmp_path))
    assert bad.returncode != 0 and bad.stdout == ""
    assert "invalid choice: 'huge'" in bad.stderr and "tutorial" in bad.stderr
    assert list(tmp_path.iterdir()) == []


def test_out_of_range_value_fails_on_stderr(tmp_path):
    bad = run("train", "--preset", "fast", "--batch-size", "0", "--runs-dir", str(tmp_path))
    assert bad.returncode == 2 and bad.stdout == ""
    assert "batch_size must be between 1 and 4096" in bad.stderr
    assert list(tmp_path.iterdir()) == []


def test_unknown_run_fails_on_stderr(tmp_path):
    missing = run("evaluate", "nope", "--runs-dir", str(tmp_path))
    assert missing.returncode == 1 and "No run named 'nope'" in missing.stderr


# ----- runs and predict ----------------------------------------------------------------------


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.strip().splitlines()]


# TINY_CONFIG with a small dense layer: its 16 learned features keep calibrating quick (the
# 676 features of a network without one take minutes on a busy machine).
CLI_CONFIG = dataclasses.replace(TINY_CONFIG, dense_units=16)


@pytest.fixture(scope="module")
def cli_model():
    """An untrained CLI_CONFIG network."""
    from core.models import build_model

    model = build_model(CLI_CONFIG)
    model.optimizer.build(model.trainable_variables)
    return model


def make_runs(root: Path, model) -> Path:
    """A runs folder with one good run and one whose config holds the wrong types."""
    from core.runs import RunStore

    store = RunStore(root, default_dir=None)
    for name in ("good", "broken"):
        store.save_run(model, CLI_CONFIG, {"loss": [0.5]}, {"test_accuracy": 0.25},
                       {"status": "stopped"}, name=name)  # fmt: skip
    (store.root / "broken" / "config.json").write_text('{"epochs": "ten"}')
    return store.root


@pytest.fixture
def cli_runs(tmp_path, cli_model):
    return make_runs(tmp_path / "runs", cli_model)


def test_runs_prints_a_line_per_run_readable_or_not_and_exits_0(cli_runs, capsys):
    from core.__main__ import main

    assert main(["runs", "--runs-dir", str(cli_runs)]) == 0
    out = {line["name"]: line for line in lines(capsys.readouterr().out)}
    assert set(out) == {"good", "broken", "default"}  # the shipped model is listed too
    assert out["good"] == {"name": "good", "status": "stopped", "test_accuracy": 0.25,
                           "readable": True, "builtin": False}  # fmt: skip
    assert out["default"]["readable"] and out["default"]["builtin"]
    assert 0.98 < out["default"]["test_accuracy"] <= 1.0
    broken = out["broken"]
    assert broken["readable"] is False and broken["status"] is None
    assert "epochs must be a whole number between 1 and 100 (got 'ten')" in broken["reason"]


def test_runs_as_a_user_runs_it(cli_runs):
    out = run("runs", "--runs-dir", str(cli_runs), timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    names = {line["name"]: line["readable"] for line in lines(out.stdout)}
    assert names == {"good": True, "broken": False, "default": True}
    assert "Traceback" not in out.stderr


def test_runs_of_a_missing_folder_lists_only_the_shipped_model(tmp_path, capsys):
    from core.__main__ import main

    assert main(["runs", "--runs-dir", str(tmp_path / "nowhere")]) == 0
    assert [line["name"] for line in lines(capsys.readouterr().out)] == ["default"]


def _digit_png(path, digit_28, scale=8):
    """An MNIST digit enlarged, dark on light, as a photo of paper would be."""
    import numpy as np
    from PIL import Image

    Image.fromarray(255 - np.kron(digit_28, np.ones((scale, scale), np.uint8))).save(path)


def make_images(root: Path, mnist) -> tuple[Path, Path]:
    """A folder of digits (one in a subfolder, one hidden), and bad files beside them."""
    from PIL import Image

    folder = root / "images"
    (folder / "more").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    for i in range(3):
        _digit_png(folder / f"digit{i}.png", mnist.x_test[i])
    _digit_png(folder / "more" / "digit3.jpg", mnist.x_test[3])
    _digit_png(folder / ".hidden" / "skipped.png", mnist.x_test[4])
    (folder / "notes.txt").write_text("not an image, and not named like one")
    bad = root / "bad"
    (bad / "empty-folder").mkdir(parents=True)
    (bad / "garbage.png").write_bytes(b"this is text pretending to be a PNG")
    Image.new("L", (1, 50), 255).save(bad / "thin.png")
    Image.new("L", (60, 60), 255).save(bad / "blank.png")
    (bad / "empty.png").write_bytes(b"")
    return folder, bad


BAD_IMAGES = {
    "garbage.png": "not an image Digit Lab can read",
    "thin.png": "1 x 50 pixels (width x height): too small to hold a digit",
    "blank.png": "no visible ink",
    "empty.png": "The file is empty",
    "missing.png": "No such file or folder",
    "empty-folder": "No image files",
}


@pytest.fixture(scope="module")
def predicted(tmp_path_factory, cli_model, mnist, mnist_dir):
    """One `predict` over a folder of digits and every kind of bad path, three images a batch:
    (the lines by file name, the batch sizes the predictor was given, the runs, the folder)."""
    from core import explain
    from core.__main__ import main

    root = tmp_path_factory.mktemp("predict")
    runs = make_runs(root / "runs", cli_model)
    folder, bad = make_images(root, mnist)
    batches = []
    real = explain.Predictor.batch_with_features

    def counting(self, x, *args, **kwargs):
        batches.append(len(x))
        return real(self, x, *args, **kwargs)

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setattr(explain.Predictor, "batch_with_features", counting)
        code = main(["predict", str(folder), *(str(bad / name) for name in BAD_IMAGES),
                     "--run", "good", "--runs-dir", str(runs), "--data-dir", str(mnist_dir),
                     "--batch-size", "3"])  # fmt: skip
    assert code == 0
    return {Path(line["file"]).name: line for line in lines(out.getvalue())}, batches, runs, folder


def test_predict_reads_a_folder_recursively_in_batches(predicted):
    out, batches, _, _ = predicted
    assert set(out) == {"digit0.png", "digit1.png", "digit2.png", "digit3.jpg", *BAD_IMAGES}
    assert batches == [3, 1]  # four digits, three at a time; bad files take no place


def test_predict_gives_the_draw_pages_figures(predicted, mnist):
    import numpy as np

    from core import draw_session, explain
    from core.data import held_out
    from core.runs import RunStore

    out, _, runs, folder = predicted
    # The page's own path: load_upload, read, with the run's predictor and calibration.
    store = RunStore(runs, default_dir=None)
    model = store.load_model("good")
    predictor = explain.Predictor(model)
    calibration = explain.calibrate(model, *held_out(mnist, store.get("good").config))
    for path in [*sorted(folder.glob("*.png")), folder / "more" / "digit3.jpg"]:
        page = draw_session.read(draw_session.load_upload(path.read_bytes()), predictor,
                                 calibration)  # fmt: skip
        line = out[path.name]
        assert line["digit"] == page.verdict.predicted
        assert len(line["probabilities"]) == 10
        np.testing.assert_allclose(line["probabilities"], page.probs, atol=1e-5)
        assert abs(sum(line["probabilities"]) - 1.0) < 1e-4
        assert line["confidence"] == pytest.approx(page.verdict.confidence, abs=1e-5)
        assert line["unsure"] is page.verdict.unsure
        assert line["reason"] == (page.verdict.reason or None)


@pytest.mark.parametrize("name", BAD_IMAGES)
def test_predict_gives_each_bad_image_a_line_with_the_reason(predicted, name):
    line = predicted[0][name]
    assert line["digit"] is None and line["probabilities"] is None and line["confidence"] is None
    assert line["unsure"] is True and BAD_IMAGES[name] in line["reason"], line


def test_predict_with_the_shipped_model_knows_real_digits(tmp_path, mnist, mnist_dir, capsys):
    from core.__main__ import main

    folder, _ = make_images(tmp_path, mnist)
    assert main(["predict", str(folder), "--runs-dir", str(tmp_path / "none"),
                 "--data-dir", str(mnist_dir)]) == 0  # fmt: skip
    out = {Path(line["file"]).name: line for line in lines(capsys.readouterr().out)}
    expected = {f"digit{i}.png": int(mnist.y_test[i]) for i in range(3)}
    expected["digit3.jpg"] = int(mnist.y_test[3])
    assert {name: line["digit"] for name, line in out.items()} == expected
    assert all(not line["unsure"] and line["confidence"] > 0.9 for line in out.values())


def test_predict_with_an_unreadable_run_says_why_without_a_traceback(cli_runs, tmp_path, capsys):
    from core.__main__ import main

    assert main(["predict", str(tmp_path), "--run", "broken", "--runs-dir", str(cli_runs)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "error: Run 'broken' is unreadable: config.json: epochs must be" in captured.err
    assert main(["predict", str(tmp_path), "--run", "ghost", "--runs-dir", str(cli_runs)]) == 1
    assert "No run named 'ghost'" in capsys.readouterr().err
