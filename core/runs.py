"""Saved runs on disk (model, config, history, metrics) and the user-examples folder.

Every file Digit Lab writes goes through this module, and every write is atomic: a run is written
into a hidden temporary folder and renamed into place, so a crash never leaves a half-written run.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shutil
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.models import CONFIG_SPECS, ModelConfig

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
    history: dict[str, list[float]]
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
    if pid == os.getpid():
        return True
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
        """Read one run's metadata (not the model)."""
        path, builtin = self._path(name)
        if not path.is_dir():
            raise RunNotFoundError(f"No run named '{name}'.")
        try:
            config = ModelConfig.from_dict(json.loads((path / CONFIG_FILE).read_text()))
            history = json.loads((path / HISTORY_FILE).read_text())
            metrics = json.loads((path / METRICS_FILE).read_text())
            meta = json.loads((path / META_FILE).read_text())
        except FileNotFoundError as exc:
            raise RunError(
                f"Run '{name}' is incomplete: {Path(exc.filename).name} is missing."
            ) from exc
        except (OSError, ValueError, TypeError) as exc:
            raise RunError(f"Run '{name}' is unreadable: {exc}.") from exc
        if not (path / MODEL_FILE).is_file():
            raise RunError(f"Run '{name}' is incomplete: {MODEL_FILE} is missing.")
        return RunInfo(name, path, config, history, metrics, meta, builtin=builtin)

    def list_runs(self, include_default: bool = True) -> tuple[list[RunInfo], list[UnreadableRun]]:
        """Every readable run (newest first, the default model last) and the unreadable ones."""
        runs: list[RunInfo] = []
        bad: list[UnreadableRun] = []
        if self.root.is_dir():
            for path in sorted(self.root.iterdir()):
                if not path.is_dir() or path.name.startswith("."):
                    continue
                try:
                    runs.append(self.get(path.name))
                except RunError as exc:
                    bad.append(UnreadableRun(path.name, path, str(exc)))
        runs.sort(key=lambda r: r.created_at, reverse=True)
        if include_default and self.default_dir is not None and self.default_dir.is_dir():
            try:
                runs.append(self.get(DEFAULT_RUN))
            except RunError as exc:
                bad.append(UnreadableRun(DEFAULT_RUN, self.default_dir, str(exc)))
        return runs, bad

    def load_model(self, name: str):
        """Load a run's model with Keras safe_mode; RunError with the reason when it cannot."""
        import keras

        info = self.get(name)
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
        model,
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

    def rename(self, old: str, new: str) -> RunInfo:
        """Rename a run (not the default model)."""
        path, builtin = self._path(old)
        if builtin:
            raise RunError("The default model ships with the app and cannot be renamed.")
        self.check_name(new)
        if new == DEFAULT_RUN or (self.root / new).exists():
            raise RunError(f"A run named '{new}' already exists; choose another name.")
        if not path.is_dir():
            raise RunNotFoundError(f"No run named '{old}'.")
        os.rename(path, self.root / new)
        meta_path = self.root / new / META_FILE
        try:
            meta = json.loads(meta_path.read_text())
            atomic_write_json(meta_path, dict(meta, name=new))
        except (OSError, ValueError):
            pass  # An unreadable meta stays as it was; the folder name is the run's name.
        return self.get(new)

    def delete(self, name: str) -> None:
        """Delete a run (not the default model): moved aside first, so listing never sees half."""
        path, builtin = self._path(name)
        if builtin:
            raise RunError("The default model ships with the app and cannot be deleted.")
        if not path.is_dir():
            raise RunNotFoundError(f"No run named '{name}'.")
        trash = self.root / f".trash-{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(path, trash)
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
