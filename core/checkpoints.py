"""Checkpoints of training jobs, one folder per job under the run store (`<runs>/.checkpoints/`).

After every epoch a job with checkpoints on writes the whole model (weights and optimizer state)
and its progress so far. A job that ends (finished, stopped) removes its checkpoint; one that
dies with its server or worker leaves it, and is listed as interrupted: "Resume" continues from
the last epoch with the same history.

Each save writes a new model file and then replaces `state.json`, which names it, in one rename:
a crash at any moment leaves the previous checkpoint whole.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.models import ModelConfig
from core.runs import RunError, atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:
    import keras

FOLDER = ".checkpoints"
STATE_FILE = "state.json"
PROGRESS_FILE = "progress.npz"
EXAMPLES_FILE = "examples.npz"
ID_PATTERN = re.compile(r"^job-[0-9a-f]{10}$")
ID_FILE = "job_id"
MAX_PACKED_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class Checkpoint:
    """A job's last saved epoch, as listed."""

    id: str
    path: Path
    config: ModelConfig
    owner: str | None
    epochs_done: int
    train_seconds: float
    created_at: float
    saved_at: float
    state: dict[str, Any]

    @property
    def model_path(self) -> Path:
        """The model file of the last saved epoch."""
        return self.path / self.state["model"]


class CheckpointStore:
    """The checkpoints folder of one run store."""

    def __init__(self, runs_root: str | Path):
        self.root = Path(runs_root) / FOLDER

    def _folder(self, job_id: str) -> Path:
        if not ID_PATTERN.fullmatch(job_id):
            raise RunError(f"'{job_id}' is not a job id.")
        return self.root / job_id

    def save(
        self,
        job_id: str,
        model: keras.Model,
        batch: dict[str, list[float]],
        epoch: dict[str, list[float]],
        state: dict[str, Any],
        examples: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Write one epoch's checkpoint; the previous one stays whole until this one is."""
        folder = self._folder(job_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            done = int(state["epochs_done"])
            model_file = f"epoch-{done:03d}.keras"
            model.save(folder / model_file)
            buffer = io.BytesIO()
            arrays = {f"batch_{k}": np.asarray(v, np.float64) for k, v in batch.items()}
            arrays |= {f"epoch_{k}": np.asarray(v, np.float64) for k, v in epoch.items()}
            np.savez(buffer, **arrays)
            atomic_write_bytes(folder / f"progress-{done:03d}.npz", buffer.getvalue())
            if examples is not None and not (folder / EXAMPLES_FILE).exists():
                buffer = io.BytesIO()
                np.savez(buffer, x=examples[0], y=examples[1])
                atomic_write_bytes(folder / EXAMPLES_FILE, buffer.getvalue())
            atomic_write_json(
                folder / STATE_FILE,
                dict(
                    state,
                    model=model_file,
                    progress=f"progress-{done:03d}.npz",
                    saved_at=time.time(),
                ),
            )
        except OSError as exc:
            raise RunError(
                f"The checkpoint could not be saved ({exc.strerror or exc}); training goes on."
            ) from exc
        for old in folder.glob("epoch-*.keras"):
            if old.name != model_file:
                old.unlink(missing_ok=True)
        for old in folder.glob("progress-*.npz"):
            if old.name != f"progress-{done:03d}.npz":
                old.unlink(missing_ok=True)

    def get(self, job_id: str) -> Checkpoint:
        """One checkpoint (RunError when there is none or it cannot be read)."""
        folder = self._folder(job_id)
        try:
            state = json.loads((folder / STATE_FILE).read_text())
            config = ModelConfig.from_dict(state["config"])
            checkpoint = Checkpoint(
                id=job_id,
                path=folder,
                config=config,
                owner=state.get("owner") if isinstance(state.get("owner"), str) else None,
                epochs_done=int(state["epochs_done"]),
                train_seconds=float(state.get("train_seconds", 0.0)),
                created_at=float(state.get("created_at", 0.0)),
                saved_at=float(state.get("saved_at", 0.0)),
                state=state,
            )
        except FileNotFoundError as exc:
            raise RunError(f"No checkpoint of job {job_id}.") from exc
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise RunError(f"The checkpoint of job {job_id} is unreadable ({exc}).") from exc
        if not checkpoint.model_path.is_file():
            raise RunError(f"The checkpoint of job {job_id} has lost its model file.")
        return checkpoint

    def list(self, owner: str | None = None, everyone: bool = False) -> list[Checkpoint]:
        """Readable checkpoints, newest first: one owner's, or everyone's."""
        found = []
        if self.root.is_dir():
            for folder in self.root.iterdir():
                if not ID_PATTERN.fullmatch(folder.name):
                    continue
                try:
                    checkpoint = self.get(folder.name)
                except RunError:
                    continue
                if everyone or checkpoint.owner == owner:
                    found.append(checkpoint)
        return sorted(found, key=lambda c: c.saved_at, reverse=True)

    def load_progress(self, job_id: str) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
        """(per-batch, per-epoch) records of the checkpoint, as Progress keeps them."""
        checkpoint = self.get(job_id)
        with np.load(checkpoint.path / checkpoint.state["progress"], allow_pickle=False) as f:
            batch = {k[6:]: f[k].tolist() for k in f.files if k.startswith("batch_")}
            epoch = {k[6:]: f[k].tolist() for k in f.files if k.startswith("epoch_")}
        return batch, epoch

    def load_examples(self, job_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The labelled drawings the job trained with, if it had any."""
        path = self._folder(job_id) / EXAMPLES_FILE
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as f:
            return f["x"].astype(np.uint8), f["y"].astype(np.uint8)

    def load_model(self, job_id: str) -> keras.Model:
        """The checkpoint's model, compiled with its optimizer state (safe mode)."""
        import keras

        checkpoint = self.get(job_id)
        try:
            return keras.saving.load_model(checkpoint.model_path, compile=True, safe_mode=True)
        except Exception as exc:  # noqa: BLE001 - any failure means the file is unusable
            raise RunError(
                f"The checkpoint of job {job_id} cannot be loaded ({type(exc).__name__}); "
                "discard it and train again."
            ) from exc

    def pack(self, job_id: str) -> bytes:
        """A checkpoint's files as one zip (a worker sends its checkpoints home with this)."""
        checkpoint = self.get(job_id)
        files = [STATE_FILE, checkpoint.state["model"], checkpoint.state["progress"]]
        if (checkpoint.path / EXAMPLES_FILE).is_file():
            files.append(EXAMPLES_FILE)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr(ID_FILE, job_id)
            for name in files:
                archive.write(checkpoint.path / name, name)
        return buffer.getvalue()

    def unpack(self, data: bytes) -> str:
        """Put a packed checkpoint in place (replacing an older one of the same job); its id.

        Checked first: the members' names and declared sizes; then written into a hidden folder
        and renamed into place, so a reader never sees half of it."""
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            members = {info.filename: info for info in archive.infolist()}
            job_id = archive.read(ID_FILE).decode()
        except (zipfile.BadZipFile, KeyError, ValueError, UnicodeDecodeError) as exc:
            raise RunError(f"The packed checkpoint is not readable ({exc}).") from exc
        allowed = re.compile(
            r"^(state\.json|epoch-\d{3}\.keras|progress-\d{3}\.npz|examples\.npz)$"
        )
        unknown = [n for n in members if n != ID_FILE and not allowed.fullmatch(n)]
        total = sum(info.file_size for info in members.values())
        if unknown or total > MAX_PACKED_BYTES:
            raise RunError("The packed checkpoint holds unexpected or oversized files.")
        folder = self._folder(job_id)
        staging = self.root / f".in-{job_id}-{uuid.uuid4().hex[:6]}"
        try:
            staging.mkdir(parents=True)
            for name in members:
                if name != ID_FILE:
                    (staging / name).write_bytes(archive.read(name))
            old = self.root / f".old-{job_id}-{uuid.uuid4().hex[:6]}"
            if folder.exists():
                os.rename(folder, old)
            os.rename(staging, folder)
            shutil.rmtree(old, ignore_errors=True)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise RunError(f"The checkpoint could not be stored ({exc.strerror or exc}).") from exc
        self.get(job_id)  # readable, or RunError
        return job_id

    def delete(self, job_id: str) -> None:
        """Remove a checkpoint (the job ended, or the visitor discards it)."""
        shutil.rmtree(self._folder(job_id), ignore_errors=True)
        try:
            self.root.rmdir()  # the last one: leave no empty folder behind
        except OSError:
            pass
