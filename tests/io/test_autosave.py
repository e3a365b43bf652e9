"""Autosave files, crash discovery (a real killed process) and cleanup."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from app.io.autosave import AutosaveStore
from app.io.project import load_project
from tests.io.conftest import make_doc

REPO = Path(__file__).resolve().parents[2]


def test_write_then_normal_exit_cleans_up(tmp_path):
    store = AutosaveStore(tmp_path / "autosave")
    store.start()
    doc = make_doc()
    path = store.write(doc, "holiday.jpg", "/projects/holiday.ora")
    assert np.array_equal(load_project(path).layers[0].mask, doc.layers[0].mask)
    info = json.loads(store.info_path.read_text())
    assert info["title"] == "holiday.jpg" and info["project_path"] == "/projects/holiday.ora"
    store.close()
    assert list((tmp_path / "autosave").iterdir()) == []


def test_live_sessions_are_not_offered(tmp_path):
    mine, other = AutosaveStore(tmp_path), AutosaveStore(tmp_path)
    mine.start()
    other.start()
    other.write(make_doc(), "other editor")
    assert mine.recoverable() == []  # its owner still runs (holds the lock)
    assert other.path.exists()
    other.close()
    mine.close()


def test_discard_after_a_real_save(tmp_path):
    store = AutosaveStore(tmp_path)
    store.start()
    store.write(make_doc(), "x")
    store.discard()
    assert not store.path.exists() and not store.info_path.exists()
    store.close()


def test_crashed_session_is_offered_then_removed(tmp_path):
    folder = tmp_path / "autosave"
    script = textwrap.dedent(
        f"""
        import os, signal
        from app.io.autosave import AutosaveStore
        from tests.io.conftest import make_doc
        store = AutosaveStore({str(folder)!r})
        store.start()
        store.write(make_doc(seed=5), "scan 1912.tif", "/home/someone/scan.ora")
        print("SAVED", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert "SAVED" in proc.stdout and proc.returncode == -signal.SIGKILL
    # a half-written autosave of the same dead session, as a crash mid-write leaves
    session = next(p.stem for p in folder.glob("*.ora"))
    (folder / f".{session}.ora.abc123.tmp").write_bytes(b"PK partial")

    store = AutosaveStore(folder)
    store.start()
    found = store.recoverable()
    assert len(found) == 1
    rec = found[0]
    assert rec.title == "scan 1912.tif" and rec.project_path == "/home/someone/scan.ora"
    assert "scan 1912.tif" in rec.describe() and "scan.ora" in rec.describe()
    assert not (folder / f".{session}.ora.abc123.tmp").exists()
    doc = load_project(rec.path)
    assert np.array_equal(doc.photo, make_doc(seed=5).photo)
    store.remove(rec)
    assert store.recoverable() == []
    assert sorted(p.name for p in folder.iterdir()) == [f"{store.session}.lock"]
    store.close()
    assert list(folder.iterdir()) == []


def test_damaged_sidecar_still_offers_the_autosave(tmp_path):
    dead = AutosaveStore(tmp_path)
    dead.start()
    dead.write(make_doc(), "t")
    dead.info_path.write_text("{not json")
    dead._lock.close()  # the process is gone: its OS lock with it
    store = AutosaveStore(tmp_path)
    found = store.recoverable()
    assert len(found) == 1 and found[0].title == "Untitled"
    assert found[0].saved_at == os.path.getmtime(found[0].path)


def test_missing_folder_has_nothing_to_recover(tmp_path):
    assert AutosaveStore(tmp_path / "never").recoverable() == []
