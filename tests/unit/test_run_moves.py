"""Runs that move between processes and machines: pack and unpack, half-written folders left by a
dead process, two saves racing for one name."""

import io
import json
import os
import subprocess
import sys
import zipfile

import pytest

from core.runs import META_FILE, RUN_FILES, RunError


def saved(store, tiny_model, tiny_config, name="alpha", **meta):
    return store.save_run(
        tiny_model, tiny_config, {"epoch": [1.0]}, {"test_accuracy": 0.5}, meta, name
    )


def test_pack_then_unpack_gives_the_same_run_under_a_free_name(store, tiny_model, tiny_config):
    info = saved(store, tiny_model, tiny_config, owner="v1")
    data = store.pack("alpha")
    assert sorted(zipfile.ZipFile(io.BytesIO(data)).namelist()) == sorted(RUN_FILES)
    copy = store.unpack(data)  # "alpha" is taken: the next free name
    assert copy.name == "alpha-2" and copy.owner == "v1"
    assert copy.config == info.config and copy.history == info.history
    assert copy.metrics == info.metrics
    assert (copy.path / "model.keras").read_bytes() == (info.path / "model.keras").read_bytes()
    again = store.unpack(data, name="beta", meta={"owner": "v2"})
    assert again.name == "beta" and again.owner == "v2"
    assert json.loads((again.path / META_FILE).read_text())["name"] == "beta"


@pytest.mark.parametrize(
    ("archive", "words"),
    [
        (b"not a zip", "not a zip archive"),
        ({"model.keras": b"x"}, "expected exactly"),
        ({f: b"{" for f in RUN_FILES}, "is not JSON"),
    ],
)
def test_unpack_refuses_what_is_not_a_run_and_writes_nothing(store, archive, words):
    if isinstance(archive, dict):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            for name, content in archive.items():
                z.writestr(name, content)
        archive = buffer.getvalue()
    with pytest.raises(RunError, match=words):
        store.unpack(archive)
    assert not store.root.exists() or not list(store.root.iterdir())


def test_unpack_checks_sizes_before_inflating(store, monkeypatch):
    from core import runs

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name in RUN_FILES:
            z.writestr(name, b"0" * 2_000_000 if name == "model.keras" else b"{}")
    monkeypatch.setattr(runs, "MAX_ARCHIVE_BYTES", 1_000_000)
    with pytest.raises(RunError, match="inflates to 2,0"):
        store.unpack(buffer.getvalue())


def test_folders_of_dead_writers_are_cleaned_and_live_ones_kept(store, tiny_model, tiny_config):
    saved(store, tiny_model, tiny_config)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    for name in (f".tmp-x-{dead_pid}-0abc", f".trash-y-{dead_pid}-0def", ".tmp-old-style-1a2b3c"):
        (store.root / name).mkdir()
        (store.root / name / "model.keras").write_bytes(b"half")
    live = store.root / f".tmp-z-{os.getpid()}-0123"
    live.mkdir()
    removed = store.clean_temporary()
    assert sorted(removed) == sorted(
        [f".tmp-x-{dead_pid}-0abc", f".trash-y-{dead_pid}-0def", ".tmp-old-style-1a2b3c"]
    )
    assert live.is_dir() and (store.root / "alpha").is_dir()
    assert [r.name for r in store.list_runs(include_default=False)[0]] == ["alpha"]


def test_two_saves_racing_for_one_automatic_name_both_land(
    store, tiny_model, tiny_config, monkeypatch
):
    real_temporary = store._temporary
    taken = []

    def another_process_saves_first(name):
        # Between the name check and the rename, another process lands a run of that name.
        (store.root / name).mkdir(parents=True)
        (store.root / name / "model.keras").write_bytes(b"theirs")
        taken.append(name)
        return real_temporary(name)

    monkeypatch.setattr(store, "_temporary", another_process_saves_first)
    mine = store.save_run(tiny_model, tiny_config, {}, {}, {})
    assert taken and mine.name != taken[0] and mine.name.startswith(taken[0])
    assert (store.root / taken[0] / "model.keras").read_bytes() == b"theirs"  # untouched
    assert json.loads((mine.path / META_FILE).read_text())["name"] == mine.name


def test_a_chosen_name_is_never_overwritten(store, tiny_model, tiny_config):
    saved(store, tiny_model, tiny_config)
    with pytest.raises(RunError, match="already exists"):
        saved(store, tiny_model, tiny_config)
