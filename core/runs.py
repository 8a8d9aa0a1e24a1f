"""Saved runs on disk (model, config, history, metrics) and the user-examples folder.

Every file Digit Lab writes goes through this module, and every write is atomic: a run is written
into a hidden temporary folder and renamed into place, so a crash never leaves a half-written run.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import re
import shutil
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core import records
from core.models import BLOCK_SPECS, CONFIG_SPECS, MAX_BLOCKS, ConvBlock, ModelConfig

if TYPE_CHECKING:
    import keras

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
META_FILE = "meta.json"
RUN_FILES = (MODEL_FILE, CONFIG_FILE, HISTORY_FILE, METRICS_FILE, META_FILE)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_RUN = "default"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = PROJECT_ROOT / "models" / "default"


class RunError(Exception):
    """A run cannot be read, written, renamed or deleted; the message says why and what to do."""


class RunNotFoundError(RunError):
    """No run of that name."""


@dataclass
class RunInfo:
    """A saved run as listed: its files' contents except the model weights."""

    name: str
    path: Path
    config: ModelConfig
    history: dict[str, Any]
    metrics: dict[str, float]
    meta: dict[str, Any] = field(default_factory=dict)
    builtin: bool = False

    @property
    def model_path(self) -> Path:
        """Where the .keras file is."""
        return self.path / MODEL_FILE

    @property
    def test_accuracy(self) -> float | None:
        """Test accuracy, 0 to 1."""
        return self.metrics.get("test_accuracy")

    @property
    def test_loss(self) -> float | None:
        """Test loss (categorical cross-entropy)."""
        return self.metrics.get("test_loss")

    @property
    def owner(self) -> str | None:
        """The visitor who trained it (an anonymous tag), or None: the deployment's own runs
        (the shipped model, command-line runs), which only an operator may change."""
        owner = self.meta.get("owner")
        return owner if isinstance(owner, str) and owner else None

    @property
    def status(self) -> str:
        """finished or stopped."""
        return self.meta.get("status", "finished")

    @property
    def created_at(self) -> float:
        """When the run was saved (epoch seconds)."""
        return float(self.meta.get("saved_at", 0.0))

    @property
    def cache_key(self) -> str:
        """What identifies this run's files in every cache: where it is, when it was saved, and
        the model file's modification time and size (a replaced file gets a new key)."""
        try:
            stat = self.model_path.stat()
            stamp = f"{stat.st_mtime_ns}-{stat.st_size}"
        except OSError:
            stamp = "missing"
        return f"{self.path.resolve()}|{self.created_at}|{stamp}"

    def row(self) -> dict[str, Any]:
        """One row of the runs table: the run's facts, then a column per knob that has one."""
        cfg = self.config
        row: dict[str, Any] = {
            "name": self.name,
            "preset": cfg.preset,
            "status": self.status,
            "blocks": " | ".join(
                f"{b.convs}x conv{b.kernel_size} {b.filters}" for b in cfg.conv_blocks
            ),
        }
        row.update({spec.knob.column: getattr(cfg, spec.name) for spec in COLUMN_SPECS})
        row.update(
            {
                "epochs": self.meta.get("epochs_completed", cfg.epochs),
                "test_accuracy": self.test_accuracy,
                "test_loss": self.test_loss,
                "train_seconds": self.meta.get("train_seconds"),
                "saved": time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created_at))
                if self.created_at
                else "",
                "data": self.meta.get("data_source", ""),
            }
        )
        return row


COLUMN_SPECS = tuple(spec for spec in CONFIG_SPECS if spec.knob.column)
COLUMN_FORMATS = {spec.knob.column: spec.knob.fmt for spec in COLUMN_SPECS if spec.knob.fmt}
"""printf formats of the runs table's knob columns."""


@dataclass
class UnreadableRun:
    """A run folder that could not be read, and why."""

    name: str
    path: Path
    reason: str


MAX_JSON_BYTES = {
    CONFIG_FILE: 64 * 1024,
    HISTORY_FILE: 1024 * 1024,
    METRICS_FILE: 64 * 1024,
    META_FILE: 64 * 1024,
}
"""The largest each JSON file of a run may be (a 100-epoch run's history is about 20 kB)."""
MAX_MODEL_BYTES = 64 * 1024 * 1024
"""The largest a run's model may be, on disk and inflated (Digit Lab's largest are about 10 MB)."""
KERAS_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
MAX_KERAS_CONFIG_BYTES = 4 * 1024 * 1024
META_TYPES: dict[str, tuple[type, ...]] = {
    "status": (str,),
    "name": (str,),
    "owner": (str, type(None)),
    "data_source": (str,),
    "saved_at": (int, float),
    "started_at": (int, float),
    "train_seconds": (int, float, type(None)),
    "epochs_completed": (int, type(None)),  # None: an uploaded model, trained elsewhere
    "train_samples": (int, type(None)),
    "user_examples": (int,),
}
"""meta.json's keys that Digit Lab reads, and the JSON types each may hold (others are kept)."""


class _Unreadable(Exception):
    """Why one file of a run cannot be used (becomes a RunError naming the run)."""


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    try:
        return _is_number(value) and math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _read_json(path: Path) -> Any:
    """A run's JSON file, refused when it is larger than its limit or not JSON."""
    limit = MAX_JSON_BYTES[path.name]
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise _Unreadable(f"{path.name} is missing") from None
    except OSError as exc:
        raise _Unreadable(f"{path.name} cannot be read ({exc.strerror or exc})") from exc
    if len(raw) > limit:
        raise _Unreadable(f"{path.name} is larger than {limit // 1024} kB, too large to be a run's")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _Unreadable(f"{path.name} is not UTF-8 text") from None
    except RecursionError:
        raise _Unreadable(f"{path.name} is nested too deeply to be a run's") from None
    except ValueError as exc:
        raise _Unreadable(f"{path.name} is not valid JSON ({exc})") from None


def _config_value(spec: Any, value: Any, what: str) -> Any:
    """value as spec's field holds it (ints for whole numbers, floats for numbers), or why not."""
    if spec.name == "train_samples" and value is None:
        return None
    if spec.kind is int and isinstance(value, float) and _finite(value) and value.is_integer():
        value = int(value)
    elif spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value) if _finite(value) else value
    if spec.kind in (int, float) and _is_number(value) and not _finite(value):
        noun = "a whole number" if spec.kind is int else "a number"
        raise _Unreadable(f"config.json: {what} must be {noun}, not {_short(value)}")
    problem = spec.problem(value, what)
    if problem:
        raise _Unreadable(f"config.json: {problem.rstrip('.')}")
    return value


def _config_from_json(data: Any) -> ModelConfig:
    """A ModelConfig from config.json, every field's type and range checked."""
    if not isinstance(data, dict):
        raise _Unreadable(f"config.json holds {_kind(data)}, not an object of settings")
    kwargs: dict[str, Any] = {}
    for spec in CONFIG_SPECS:
        if spec.name in data:
            kwargs[spec.name] = _config_value(spec, data[spec.name], spec.name)
    if "preset" in data:
        preset = data["preset"]
        if not isinstance(preset, str) or not 0 < len(preset) <= 64:
            raise _Unreadable(f"config.json: preset must be a name, not {_short(preset)}")
        kwargs["preset"] = preset
    if "conv_blocks" in data:
        kwargs["conv_blocks"] = _blocks_from_json(data["conv_blocks"])
    return ModelConfig(**kwargs)


def _blocks_from_json(blocks: Any) -> tuple[ConvBlock, ...]:
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= MAX_BLOCKS:
        raise _Unreadable(
            f"config.json: conv_blocks must be a list of 1 to {MAX_BLOCKS} blocks, "
            f"not {_short(blocks)}"
        )
    out = []
    for i, block in enumerate(blocks):
        if isinstance(block, list) and len(block) == len(BLOCK_SPECS):
            block = {spec.name: v for spec, v in zip(BLOCK_SPECS, block, strict=True)}
        if not isinstance(block, dict):
            raise _Unreadable(
                f"config.json: block {i + 1} must be an object of filters, kernel_size, convs, "
                f"pool and dropout, not {_short(block)}"
            )
        values = {
            spec.name: _config_value(spec, block[spec.name], f"block {i + 1} {spec.name}")
            for spec in BLOCK_SPECS
            if spec.name in block
        }
        out.append(ConvBlock(**values))
    return tuple(out)


def _numbers(values: Any, what: str) -> list[float]:
    if not isinstance(values, list):
        raise _Unreadable(f"{what} must be a list of numbers, not {_short(values)}")
    for v in values:
        if not _is_number(v):
            raise _Unreadable(f"{what} holds {_short(v)}, not a number")
    try:
        return [float(v) for v in values]
    except OverflowError:
        raise _Unreadable(f"{what} holds a number too large for a float") from None


def _history_from_json(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Unreadable(f"history.json holds {_kind(data)}, not an object of curves")
    out: dict[str, Any] = {}
    for key, values in data.items():
        if key == "per_batch":  # the per-batch series, packed (core.records)
            why = records.problem(values)
            if why:
                raise _Unreadable(f"history.json: {why}")
            out[key] = values
        else:
            out[key] = _numbers(values, f"history.json: {key}")
    return out


def _metrics_from_json(data: Any) -> dict[str, float]:
    if not isinstance(data, dict):
        raise _Unreadable(f"metrics.json holds {_kind(data)}, not an object of numbers")
    metrics = {}
    for key, value in data.items():
        if not _finite(value):
            raise _Unreadable(f"metrics.json: {key} must be a number, not {_short(value)}")
        metrics[key] = float(value)
    accuracy = metrics.get("test_accuracy")
    if accuracy is not None and not 0.0 <= accuracy <= 1.0:
        raise _Unreadable(f"metrics.json: test_accuracy must be between 0 and 1, not {accuracy:g}")
    return metrics


def _meta_from_json(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Unreadable(f"meta.json holds {_kind(data)}, not an object")
    for key, types in META_TYPES.items():
        if key not in data:
            continue
        value = data[key]
        ok = isinstance(value, types) and not isinstance(value, bool)
        if ok and _is_number(value):
            ok = _finite(value) and value >= 0
        if ok and isinstance(value, str):
            ok = len(value) <= 1000
        if not ok:
            raise _Unreadable(f"meta.json: {key} cannot be {_short(value)}")
    return data


def _check_model_file(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise _Unreadable(f"{MODEL_FILE} is missing") from None
    except OSError as exc:
        raise _Unreadable(f"{MODEL_FILE} cannot be read ({exc.strerror or exc})") from exc
    if not path.is_file():
        raise _Unreadable(f"{MODEL_FILE} is not a file")
    if size == 0:
        raise _Unreadable(f"{MODEL_FILE} is empty")
    if size > MAX_MODEL_BYTES:
        raise _Unreadable(
            f"{MODEL_FILE} is {size / 1e6:,.0f} MB, over Digit Lab's limit of "
            f"{MAX_MODEL_BYTES / 1e6:.0f} MB"
        )


def read_run(path: Path, name: str, builtin: bool = False) -> RunInfo:
    """The one validating reader of a run folder: every file's type and size checked.

    Raises RunError saying which file is wrong and how; nothing else escapes.
    """
    try:
        config = _config_from_json(_read_json(path / CONFIG_FILE))
        history = _history_from_json(_read_json(path / HISTORY_FILE))
        metrics = _metrics_from_json(_read_json(path / METRICS_FILE))
        meta = _meta_from_json(_read_json(path / META_FILE))
        _check_model_file(path / MODEL_FILE)
    except _Unreadable as exc:
        missing = str(exc).endswith(" is missing")
        state = "incomplete" if missing else "unreadable"
        advice = (
            "train it again or delete the run" if missing else "delete the run or correct the file"
        )
        raise RunError(f"Run '{name}' is {state}: {exc}. To use it, {advice}.") from None
    return RunInfo(name, path, config, history, metrics, meta, builtin=builtin)


def check_keras_archive(path: Path) -> None:
    """Refuse a .keras file whose members are not a Keras model's or would inflate too far.

    Sizes are read from the zip directory and the HDF5 dataset headers, before anything is
    inflated; zipfile never inflates a member past the size its directory declares.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            names = [info.filename for info in members]
            strange = [n for n in names if n not in KERAS_MEMBERS and not n.startswith("assets/")]
            if strange or "config.json" not in names:
                raise _Unreadable(
                    f"it holds {_short(sorted(names))}, not a Keras model's config.json, "
                    "metadata.json and model.weights.h5"
                )
            total = sum(info.file_size for info in members)
            if total > MAX_MODEL_BYTES:
                raise _Unreadable(
                    f"it would inflate to {total / 1e6:,.0f} MB, over Digit Lab's limit of "
                    f"{MAX_MODEL_BYTES / 1e6:.0f} MB"
                )
            config = archive.getinfo("config.json")
            if config.file_size > MAX_KERAS_CONFIG_BYTES:
                raise _Unreadable(f"its config.json declares {config.file_size:,} bytes")
            if "model.weights.h5" in names:
                _check_weights(archive.read("model.weights.h5"))
    except _Unreadable:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise _Unreadable(
            f"it is not a readable .keras archive ({type(exc).__name__}: {exc})"
        ) from exc
    except (RuntimeError, NotImplementedError) as exc:  # encrypted or unsupported compression
        raise _Unreadable(f"it cannot be opened ({exc})") from exc


def _check_weights(data: bytes) -> None:
    """Refuse weights whose datasets declare more than MAX_MODEL_BYTES (compressed HDF5 data)."""
    import h5py

    total = 0

    def add(_name: str, item: Any) -> None:
        nonlocal total
        if isinstance(item, h5py.Dataset):
            total += math.prod(item.shape or (1,)) * item.dtype.itemsize

    try:
        with h5py.File(io.BytesIO(data), "r") as weights:
            weights.visititems(add)
    except (OSError, ValueError, TypeError) as exc:
        raise _Unreadable(f"its weights are not a readable HDF5 file ({exc})") from exc
    if total > MAX_MODEL_BYTES:
        raise _Unreadable(
            f"its weights would inflate to {total / 1e6:,.0f} MB, over Digit Lab's limit of "
            f"{MAX_MODEL_BYTES / 1e6:.0f} MB"
        )


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=_json_default), encoding="utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file through a temporary sibling and a rename, so readers never see half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    """Atomically write data as pretty JSON."""
    text = json.dumps(data, indent=2, default=_json_default)
    atomic_write_bytes(path, text.encode("utf-8"))


MAX_ARCHIVE_BYTES = 64 * 1024 * 1024
"""A packed run larger than this is refused (Digit Lab's largest runs are about 10 MB)."""


def read_run_archive(data: bytes) -> dict[str, bytes]:
    """The files of a packed run, checked (names, sizes, JSON) before any is inflated whole."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, ValueError) as exc:
        raise RunError(f"The packed run is not a zip archive ({exc}).") from exc
    if set(members) != set(RUN_FILES):
        raise RunError(
            f"The packed run holds {sorted(members)}; expected exactly {', '.join(RUN_FILES)}."
        )
    total = sum(info.file_size for info in members.values())
    if total > MAX_ARCHIVE_BYTES:
        raise RunError(f"The packed run inflates to {total:,} bytes, over {MAX_ARCHIVE_BYTES:,}.")
    files = {}
    for file, info in members.items():
        with archive.open(info) as f:
            files[file] = f.read(info.file_size + 1)
        if len(files[file]) != info.file_size:
            raise RunError(f"{file} in the packed run is not the size its header says.")
    for file in (CONFIG_FILE, HISTORY_FILE, METRICS_FILE, META_FILE):
        try:
            json.loads(files[file])
        except ValueError as exc:
            raise RunError(f"{file} in the packed run is not JSON ({exc}).") from exc
    return files


def _rewrite_name(folder: Path, name: str) -> None:
    meta = json.loads((folder / META_FILE).read_text())
    _write_json(folder / META_FILE, dict(meta, name=name))


def _writer_alive(folder_name: str) -> bool:
    """Whether the process that named a .tmp-/.trash- folder (…-<pid>-<hex>) still runs."""
    parts = folder_name.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False  # named before folders carried a process id: nobody is writing it
    pid = int(parts[1])
    return pid == os.getpid() or process_alive(pid)


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _disk_message(exc: OSError, what: str) -> str:
    if exc.errno == errno.ENOSPC:
        return f"The disk is full: {what} could not be saved. Free some space and try again; saved runs are untouched."
    return f"{what} could not be saved ({exc.strerror or exc}). Saved runs are untouched."


def _move_message(exc: OSError, what: str) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"{what}: the runs folder is read-only ({exc.strerror}). Nothing was changed; "
            "ask whoever runs Digit Lab to make the runs folder writable."
        )
    return f"{what} ({exc.strerror or exc}). Nothing was changed."


class RunStore:
    """Runs under one folder (default ./runs) plus the read-only default model shipped with the app."""

    def __init__(
        self, root: str | Path = "runs", default_dir: str | Path | None = DEFAULT_MODEL_DIR
    ):
        self.root = Path(root)
        self.default_dir = Path(default_dir) if default_dir else None

    # ----- names ---------------------------------------------------------------------------
    def check_name(self, name: str) -> str:
        """Return name if it is a safe run name, else raise RunError saying what is allowed."""
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
            raise RunError(
                f"'{name}' is not a valid run name: use 1 to 64 letters, digits, '-', '_' or '.', "
                "starting with a letter or digit."
            )
        path = (self.root / name).resolve()
        if path.parent != self.root.resolve():
            raise RunError(f"'{name}' would be saved outside the runs folder.")
        return name

    def unique_name(self, base: str) -> str:
        """base, or base-2, base-3… whichever is free."""
        base = re.sub(r"[^A-Za-z0-9_.-]", "-", base).strip("-.") or "run"
        base = base[:56]
        name, i = base, 2
        while name == DEFAULT_RUN or (self.root / name).exists():
            name, i = f"{base}-{i}", i + 1
        return name

    def _path(self, name: str) -> tuple[Path, bool]:
        if name == DEFAULT_RUN and self.default_dir is not None:
            return self.default_dir, True
        self.check_name(name)
        return self.root / name, False

    # ----- reading -------------------------------------------------------------------------
    def get(self, name: str) -> RunInfo:
        """Read one run's metadata (not the model), every file checked; RunError says what is
        wrong with which file."""
        path, builtin = self._path(name)
        if not path.is_dir():
            raise RunNotFoundError(f"No run named '{name}'.")
        return read_run(path, name, builtin)

    def list_runs(self, include_default: bool = True) -> tuple[list[RunInfo], list[UnreadableRun]]:
        """Every readable run (newest first, the default model last) and the unreadable ones,
        each with its reason; never raises, whatever the folders hold."""
        runs: list[RunInfo] = []
        bad: list[UnreadableRun] = []
        try:
            folders = sorted(self.root.iterdir()) if self.root.is_dir() else []
        except OSError as exc:
            folders = []
            bad.append(
                UnreadableRun(
                    self.root.name,
                    self.root,
                    f"The runs folder {self.root} cannot be read ({exc.strerror or exc}).",
                )
            )
        for path in folders:
            if path.name.startswith(".") or not path.is_dir():
                continue
            try:
                self.check_name(path.name)
                if path.name == DEFAULT_RUN and self.default_dir is not None:
                    raise RunError(
                        f"The folder {path} has the shipped model's name, '{DEFAULT_RUN}'; "
                        "rename or remove it by hand."
                    )
                runs.append(read_run(path, path.name))
            except RunError as exc:
                bad.append(UnreadableRun(path.name, path, str(exc)))
        runs.sort(key=lambda r: r.created_at, reverse=True)
        if include_default and self.default_dir is not None and self.default_dir.is_dir():
            try:
                runs.append(self.get(DEFAULT_RUN))
            except RunError as exc:
                bad.append(UnreadableRun(DEFAULT_RUN, self.default_dir, str(exc)))
        return runs, bad

    def load_model(self, name: str) -> keras.Model:
        """Load a run's model with Keras safe_mode, its archive's declared sizes checked first;
        RunError with the reason when it cannot be loaded."""
        import keras

        info = self.get(name)
        try:
            check_keras_archive(info.model_path)
        except _Unreadable as exc:
            raise RunError(
                f"The model of run '{name}' cannot be loaded: {exc}. "
                "Delete the run or train it again."
            ) from None
        try:
            return keras.saving.load_model(info.model_path, compile=True, safe_mode=True)
        except Exception as exc:  # noqa: BLE001 - any failure means the file is not a usable model
            raise RunError(
                f"The model of run '{name}' cannot be loaded ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200] if str(exc) else 'no detail'}). "
                "Delete the run or train it again."
            ) from exc

    def model_bytes(self, name: str) -> bytes:
        """The .keras file, for a download button."""
        return self.get(name).model_path.read_bytes()

    # ----- writing -------------------------------------------------------------------------
    def save_run(
        self,
        model: keras.Model,
        config: ModelConfig,
        history: dict[str, list[float]],
        metrics: dict[str, float],
        meta: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> RunInfo:
        """Write a run atomically (temporary folder, then rename) and return it."""
        automatic = not name
        name = (
            self.check_name(name)
            if name
            else self.unique_name(time.strftime(f"{config.preset}-%Y%m%d-%H%M%S"))
        )
        if name == DEFAULT_RUN or (self.root / name).exists():
            raise RunError(f"A run named '{name}' already exists; choose another name.")
        meta = dict(meta or {}, saved_at=time.time())

        def write(folder: Path) -> None:
            model.save(folder / MODEL_FILE)
            _write_json(folder / CONFIG_FILE, config.to_dict())
            _write_json(folder / HISTORY_FILE, history)
            _write_json(folder / METRICS_FILE, metrics)
            _write_json(folder / META_FILE, dict(meta, name=name))

        return self._place(write, name, automatic)

    def _temporary(self, name: str) -> Path:
        """A hidden folder to write into, named with this process's id (see clean_temporary)."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        return tmp

    def _place(self, write, name: str, automatic: bool) -> RunInfo:
        """Write a run with write(folder) into a temporary folder, then rename it into place.

        Run names are unique per deployment: when two saves race for one automatic name, the
        later one takes the next free name; a name the visitor chose is never overwritten.
        """
        try:
            tmp = self._temporary(name)
        except OSError as exc:
            raise RunError(_disk_message(exc, f"Run '{name}'")) from exc
        try:
            write(tmp)
            while True:
                try:
                    os.rename(tmp, self.root / name)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not automatic:
                        raise
                    name = self.unique_name(name)
                    _rewrite_name(tmp, name)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise RunError(
                    f"A run named '{name}' already exists; choose another name."
                ) from exc
            raise RunError(_disk_message(exc, f"Run '{name}'")) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.get(name)

    def clean_temporary(self) -> list[str]:
        """Remove half-written and half-deleted folders left by processes that died; the names."""
        removed = []
        if not self.root.is_dir():
            return removed
        for path in self.root.iterdir():
            if not path.is_dir() or not path.name.startswith((".tmp-", ".trash-")):
                continue
            if _writer_alive(path.name):
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
        return removed

    # ----- moving runs between machines ----------------------------------------------------
    def pack(self, name: str) -> bytes:
        """A run's files as one zip archive (a worker sends its run home with this)."""
        info = self.get(name)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for file in RUN_FILES:
                archive.write(info.path / file, file)
        return buffer.getvalue()

    def unpack(self, data: bytes, name: str | None = None, meta: dict | None = None) -> RunInfo:
        """Add a run packed by pack() (checked before anything is written); meta entries given
        here override the packed ones (the owner, say). Taken under a free name when name is
        None or taken."""
        files = read_run_archive(data)
        packed = json.loads(files[META_FILE])
        wanted = name or str(packed.get("name") or "run")
        automatic = name is None or wanted == DEFAULT_RUN or (self.root / wanted).exists()
        name = self.unique_name(wanted) if automatic else self.check_name(wanted)

        def write(folder: Path) -> None:
            for file, content in files.items():
                (folder / file).write_bytes(content)
            _write_json(folder / META_FILE, dict(packed, **(meta or {}), name=name))

        return self._place(write, name, automatic=True)

    def _listed(self, name: str) -> tuple[Path, bool]:
        """The folder of a listed run, readable or not (an unreadable one may have a name that
        check_name refuses, and must still be renamable and deletable)."""
        plain = (
            isinstance(name, str)
            and name not in ("", ".", "..")
            and not name.startswith(".")
            and "/" not in name
            and "\0" not in name
        )
        if plain and name != DEFAULT_RUN and (self.root / name).is_dir():
            return self.root / name, False
        return self._path(name)

    def rename(self, old: str, new: str) -> RunInfo | UnreadableRun:
        """Rename a run (not the default model); an unreadable run comes back as one."""
        path, builtin = self._listed(old)
        if builtin:
            raise RunError("The default model ships with the app and cannot be renamed.")
        self.check_name(new)
        if new == DEFAULT_RUN or (self.root / new).exists():
            raise RunError(f"A run named '{new}' already exists; choose another name.")
        if not path.is_dir():
            raise RunNotFoundError(f"No run named '{old}'.")
        try:
            os.rename(path, self.root / new)
        except OSError as exc:
            raise RunError(_move_message(exc, f"Run '{old}' could not be renamed")) from exc
        meta_path = self.root / new / META_FILE
        try:
            meta = json.loads(meta_path.read_text())
            atomic_write_json(meta_path, dict(meta, name=new))
        except (OSError, ValueError, TypeError, RecursionError):
            pass  # An unreadable meta stays as it was; the folder name is the run's name.
        try:
            return self.get(new)
        except RunError as exc:
            return UnreadableRun(new, self.root / new, str(exc))

    def delete(self, name: str) -> None:
        """Delete a run, readable or not (not the default model): moved aside first, so listing
        never sees half of it."""
        path, builtin = self._listed(name)
        if builtin:
            raise RunError("The default model ships with the app and cannot be deleted.")
        if not path.is_dir():
            raise RunNotFoundError(f"No run named '{name}'.")
        trash = self.root / f".trash-{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(path, trash)
        except OSError as exc:
            raise RunError(_move_message(exc, f"Run '{name}' could not be deleted")) from exc
        if trash.is_symlink():
            trash.unlink(missing_ok=True)  # a link to a folder elsewhere: remove the link only
        else:
            shutil.rmtree(trash, ignore_errors=True)


EXAMPLE_PATTERN = re.compile(r"^[0-9]-[0-9]{8}-[0-9]{6}-[0-9a-f]{6}\.npy$")
OWNER_PATTERN = re.compile(r"^[0-9a-f]{1,64}$")
MAX_EXAMPLES = 2000
"""Labelled drawings one visitor may keep (2,000 of them take 1.6 MB)."""


@dataclass(frozen=True)
class Example:
    """One labelled drawing."""

    name: str
    image: np.ndarray
    """(28, 28) uint8."""
    label: int


class ExampleStore:
    """Drawings a visitor labelled ("teach it back"), as 28x28 uint8 images, one file each, in a
    folder of that visitor's own (the root itself when there is no owner: the command line)."""

    def __init__(self, root: str | Path = "user_examples", owner: str | None = None):
        if owner is not None and not OWNER_PATTERN.fullmatch(owner):
            raise ValueError(f"not an owner tag: {owner!r}")
        self.root = Path(root) / owner if owner else Path(root)

    def add(self, image: np.ndarray, label: int) -> Path:
        """Save one (28, 28) image in [0, 1] (or uint8) with its label; returns the file."""
        image = np.asarray(image)
        if image.shape != (28, 28):
            raise ValueError(f"an example must be 28x28, got {image.shape}.")
        if not 0 <= int(label) <= 9:
            raise ValueError(f"label must be a digit 0-9, got {label}.")
        if self.count() >= MAX_EXAMPLES:
            raise RunError(
                f"You already keep {MAX_EXAMPLES:,} labelled drawings: delete some first."
            )
        if image.dtype != np.uint8:
            image = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
        path = (
            self.root / f"{int(label)}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}.npy"
        )
        buf = io.BytesIO()
        np.save(buf, image, allow_pickle=False)
        try:
            atomic_write_bytes(path, buf.getvalue())
        except OSError as exc:
            raise RunError(_disk_message(exc, "The example")) from exc
        return path

    def examples(self) -> list[Example]:
        """Every readable example, oldest first; unreadable files are skipped."""
        out = []
        if self.root.is_dir():
            for path in sorted(self.root.glob("*.npy"), key=lambda p: p.name.split("-", 1)[1]):
                if not EXAMPLE_PATTERN.fullmatch(path.name):
                    continue
                try:
                    image = np.load(path, allow_pickle=False)
                except (OSError, ValueError):
                    continue
                if image.shape == (28, 28):
                    out.append(Example(path.name, image.astype(np.uint8), int(path.name[0])))
        return out

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """All readable examples as (x uint8 (n, 28, 28), y uint8 (n,)); unreadable files skipped."""
        examples = self.examples()
        if not examples:
            return np.zeros((0, 28, 28), np.uint8), np.zeros((0,), np.uint8)
        return (
            np.stack([e.image for e in examples]),
            np.array([e.label for e in examples], dtype=np.uint8),
        )

    def count(self) -> int:
        """How many examples are saved."""
        if not self.root.is_dir():
            return 0
        return sum(1 for p in self.root.glob("*.npy") if EXAMPLE_PATTERN.fullmatch(p.name))

    def delete(self, name: str) -> None:
        """Delete one example by its file name (only names this store makes)."""
        if not EXAMPLE_PATTERN.fullmatch(name):
            raise RunError(f"'{name}' is not a labelled drawing.")
        try:
            (self.root / name).unlink(missing_ok=True)
        except OSError as exc:
            raise RunError(f"The drawing could not be deleted ({exc.strerror or exc}).") from exc

    def clear(self) -> None:
        """Delete every saved example."""
        for path in self.root.glob("*.npy"):
            path.unlink(missing_ok=True)
