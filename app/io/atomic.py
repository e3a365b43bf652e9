"""Atomic file writes: a save never destroys the previous good file."""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

# the process umask, read once at import (on the main thread: os.umask can only be read by
# setting it, which would race with saves running in background threads)
_UMASK = os.umask(0o022)
os.umask(_UMASK)

# a temp file of ours older than this was left by a process that died mid-save (a save of a
# 50 MP project takes well under a minute); the next save of the same file removes it
STALE_TEMP_SECONDS = 15 * 60


class SaveError(OSError):
    """A save failed; the message says why and that the previous file is intact."""


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """Yield a binary file in the target's folder; on success fsync it and os.replace it
    over `path`. On any failure the temp file is removed and `path` is left untouched."""
    path = Path(path)
    if path.is_symlink():  # saved through the link, as editors do: replacing the link itself left
        path = Path(os.path.realpath(path))  # the file it points to as it was
    folder = path.parent if str(path.parent) else Path(".")
    existed = path.is_file()
    if existed and not _writable(path):  # made read-only to keep it: os.replace would not ask
        raise SaveError(f"{path.name} is read-only, so it was not replaced; make it writable or choose "
                        "another name.")
    _remove_stale_temps(folder, path.name)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise SaveError(f"Cannot write in {folder}: {exc.strerror or exc}") from exc
    # nothing between the temp file's making and the cleanup below (a SIGTERM raised there
    # left the temp file behind: tests/cli's sigterm test caught it now and then)
    try:
        tmp = Path(tmp_name)
        # mkstemp makes the file private (0600); give it the mode the replaced file had, or the
        # one a plain open() would give a new file, so exports stay readable as before
        with contextlib.suppress(OSError):
            os.chmod(fd if os.chmod in os.supports_fd else tmp, _target_mode(path))
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_folder(folder)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        kept = " (the previous file is unchanged)" if existed else ""
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise SaveError(f"The disk is full: {path.name} was not saved{kept}.") from exc
        if isinstance(exc, OSError) and not isinstance(exc, SaveError) and exc.filename is not None:
            # the replace step failed (a folder of that name, a locked or another user's file):
            # name the file the user asked for, not our temp file
            why = "a folder has that name" if path.is_dir() else (exc.strerror or str(exc)).lower()
            raise SaveError(f"Cannot write {path.name}: {why}{kept}.") from exc
        raise


def _remove_stale_temps(folder: Path, name: str) -> None:
    """Delete the temp files a killed save of `name` left behind (ours by their name pattern,
    and old enough that no running save owns them)."""
    now = time.time()
    for leftover in glob.glob(os.path.join(glob.escape(str(folder)), f".{glob.escape(name)}.*.tmp")):
        with contextlib.suppress(OSError):
            if now - os.stat(leftover).st_mtime > STALE_TEMP_SECONDS:
                os.unlink(leftover)


def _writable(path: Path) -> bool:
    """Whether the file may be written: by this user, and by anyone at all (root may write a
    file with no write bit, but its owner meant it to stay)."""
    try:
        return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)
    except OSError:
        return True  # gone meanwhile: nothing to keep


def _target_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_UMASK


def _fsync_folder(folder: Path) -> None:
    # make the rename itself durable; not possible on every platform
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
