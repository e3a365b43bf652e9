"""A save that fails at any step leaves the previous file intact and openable."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from app.io import atomic
from app.io.project import ProjectError, load_project, save_project
from tests.io.conftest import make_doc

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def previous(tmp_path):
    path = tmp_path / "work.ora"
    old = make_doc(seed=1)
    save_project(old, path)
    return path, path.read_bytes(), old


def assert_intact(path: Path, before: bytes, old) -> None:
    assert path.read_bytes() == before
    back = load_project(path)
    assert np.array_equal(back.photo, old.photo)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


def stage_names(tmp_path) -> list[str]:
    names = []
    save_project(make_doc(seed=2), tmp_path / "probe.ora", progress=lambda s, f: names.append(s))
    (tmp_path / "probe.ora").unlink()
    return names


class Boom(RuntimeError):
    pass


def test_failure_at_each_stage_keeps_previous(previous, tmp_path):
    path, before, old = previous
    stages = stage_names(tmp_path)
    assert "photo" in stages and "finishing" in stages and len(stages) >= 8
    for stage in stages[:-1]:  # the last is "saved": the new file is in place by then

        def progress(name, fraction, stage=stage):
            if name == stage:
                raise Boom(stage)

        with pytest.raises(Boom):
            save_project(make_doc(seed=2), path, progress=progress)
        assert_intact(path, before, old)


class FailingFile:
    """Wraps the temp file: the n-th write raises the given errno."""

    def __init__(self, handle, fail_at: int, code: int, counter: list):
        self._h, self._fail_at, self._code, self._counter = handle, fail_at, code, counter

    def write(self, data):
        self._counter.append(len(data))
        if len(self._counter) - 1 == self._fail_at:
            raise OSError(self._code, os.strerror(self._code))
        return self._h.write(data)

    def __getattr__(self, name):
        return getattr(self._h, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._h.__exit__(*exc)


def inject_write_failure(monkeypatch, fail_at: int, code: int) -> list:
    counter: list = []
    real = os.fdopen
    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: FailingFile(real(fd, mode), fail_at, code, counter))
    return counter


def test_failure_at_each_write_keeps_previous(previous, monkeypatch):
    path, before, old = previous
    writes = inject_write_failure(monkeypatch, -1, errno.EIO)
    save_project(make_doc(seed=2), path.with_name("count.ora"))
    total = len(writes)
    path.with_name("count.ora").unlink()
    assert total > 10
    for n in range(total):
        inject_write_failure(monkeypatch, n, errno.EIO)
        with pytest.raises(ProjectError, match="previous file is unchanged"):
            save_project(make_doc(seed=2), path)
        assert_intact(path, before, old)


@pytest.mark.parametrize("call", ["fsync", "replace"])
def test_fsync_or_rename_failure_keeps_previous(previous, monkeypatch, call):
    path, before, old = previous

    def fail(*args, **kwargs):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(atomic.os, call, fail)
    with pytest.raises(ProjectError):
        save_project(make_doc(seed=2), path)
    monkeypatch.undo()
    assert_intact(path, before, old)


def test_full_disk_gives_a_clear_message(previous, monkeypatch):
    path, before, old = previous
    inject_write_failure(monkeypatch, 5, errno.ENOSPC)
    with pytest.raises(ProjectError) as info:
        save_project(make_doc(seed=2), path)
    assert "disk is full" in str(info.value) and "previous file is unchanged" in str(info.value)
    monkeypatch.undo()
    assert_intact(path, before, old)


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_saved_files_get_the_usual_mode_not_a_private_one(tmp_path):
    """The temp file behind an atomic save is private (0600); the saved file must not be: a new
    file gets what open() gives (0666 minus the umask), a replaced one keeps its mode."""
    umask = os.umask(0o022)
    os.umask(umask)
    new = tmp_path / "new.png"
    with atomic.atomic_write(new) as handle:
        handle.write(b"x")
    assert new.stat().st_mode & 0o777 == 0o666 & ~umask
    shared = tmp_path / "shared.png"
    shared.write_bytes(b"old")
    shared.chmod(0o640)
    with atomic.atomic_write(shared) as handle:
        handle.write(b"new")
    assert shared.read_bytes() == b"new" and shared.stat().st_mode & 0o777 == 0o640


def test_a_file_that_cannot_be_replaced_is_named_not_the_temp_file(tmp_path, monkeypatch):
    """A folder with the file's name, or a locked file (os.replace refuses): the message names
    the file asked for (not our hidden temp file) and no temp file is left."""
    (tmp_path / "photo.png").mkdir()
    with (pytest.raises(atomic.SaveError, match=r"Cannot write photo\.png: a folder has that name\.$"),
          atomic.atomic_write(tmp_path / "photo.png") as handle):
        handle.write(b"x")
    locked = tmp_path / "locked.png"
    locked.write_bytes(b"old")

    def refuse(src, dst):
        raise PermissionError(errno.EPERM, "Operation not permitted", str(src), str(dst))

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(atomic.SaveError) as info, atomic.atomic_write(locked) as handle:
        handle.write(b"new")
    assert str(info.value) == "Cannot write locked.png: operation not permitted (the previous file is unchanged)."
    assert locked.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["locked.png", "photo.png"]


def test_a_read_only_file_is_kept_and_a_link_is_saved_through(tmp_path):
    """QA: a file made read-only (chmod 444) was replaced without a word (os.replace asks only
    the folder), and a symlink was replaced by a plain file, the file it points to left as it was."""
    kept = tmp_path / "kept.png"
    kept.write_bytes(b"old")
    kept.chmod(0o444)
    with pytest.raises(atomic.SaveError, match=r"kept\.png is read-only"), atomic.atomic_write(kept) as handle:
        handle.write(b"new")
    assert kept.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["kept.png"]
    real = tmp_path / "real.png"
    real.write_bytes(b"old")
    link = tmp_path / "link.png"
    link.symlink_to(real)
    with atomic.atomic_write(link) as handle:
        handle.write(b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"


def test_unwritable_folder_message(tmp_path):
    with pytest.raises(ProjectError, match="Cannot write in"):
        save_project(make_doc(), tmp_path / "missing" / "p.ora")


def test_killed_saving_process_leaves_previous(previous):
    path, before, old = previous
    script = textwrap.dedent(
        f"""
        import sys, time
        import numpy as np
        from app.canvas.document import Document
        from app.io.project import save_project
        rng = np.random.default_rng(3)
        doc = Document(photo=rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
        for i in range(3):
            layer = doc.new_layer(f"m{{i}}"); layer.mask[::3] = 255; doc.layers.append(layer)
        def progress(stage, fraction):
            if stage == "layer 2 of 3":
                print("WRITING", flush=True)
                time.sleep(120)
        save_project(doc, {str(path)!r}, progress=progress)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "WRITING"
        temps = [p for p in path.parent.iterdir() if p.name != path.name]
        assert len(temps) == 1 and temps[0].stat().st_size > 0  # half a project on disk
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert path.read_bytes() == before
    assert np.array_equal(load_project(path).photo, old.photo)
    # the next save of the file clears the dead process's half-written temp once it is stale
    (leftover,) = temps
    save_project(make_doc(seed=2), path)
    assert leftover.exists()  # young: it could still be a running save's
    aged = time.time() - atomic.STALE_TEMP_SECONDS - 60
    os.utime(leftover, (aged, aged))
    save_project(make_doc(seed=3), path)
    assert not leftover.exists() and sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_full_disk_under_a_new_name_does_not_speak_of_a_previous_file(previous, monkeypatch):
    path, _, _ = previous
    fresh = path.with_name("fresh.ora")
    inject_write_failure(monkeypatch, 5, errno.ENOSPC)
    with pytest.raises(ProjectError) as info:
        save_project(make_doc(seed=2), fresh)
    assert "disk is full" in str(info.value) and "previous" not in str(info.value)
    monkeypatch.undo()
    assert not fresh.exists() and not list(fresh.parent.glob(".fresh.ora.*"))
