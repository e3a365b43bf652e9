"""Autosave and crash recovery, without Qt: where autosaves live, which ones are orphans, cleanup.

Each running editor is a *session* with its own id. Its files sit in one folder (the app's
data folder, chosen by the caller, e.g. QStandardPaths.AppDataLocation/autosave):

    <session>.lock   held with an OS lock for the life of the process
    <session>.ora    the last autosave (an ordinary project, written atomically)
    <session>.json   what it is: title, the project file it belongs to, when it was saved

A crash releases the OS lock, so at the next start every autosave whose lock can be taken
belongs to a dead session and is offered for recovery; the autosaves of other editors still
running are left alone. A normal exit removes the session's files.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from app.canvas.document import Document
from app.io.atomic import atomic_write
from app.io.project import Cancel, Progress, ProjectError, save_project

DEFAULT_INTERVAL_MINUTES = 3
_SESSION = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Recovery:
    """An autosave left behind by a session that ended without cleaning up."""

    session: str
    path: Path  # the .ora to open
    title: str
    project_path: str | None  # the project the work belonged to, if it had been saved once
    saved_at: float  # seconds since the epoch
    source_path: str | None = None  # the photo (or project) the work was opened from: where to save it

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.saved_at))
        # the project's file name, unless the title already is it
        name = Path(self.project_path).name if self.project_path else ""
        where = f" ({name})" if name and name != self.title else ""
        return f"{self.title}{where}, autosaved {when}"


class AutosaveStore:
    """The autosave files of this session, and discovery of other sessions' leftovers."""

    def __init__(self, folder: str | Path, session: str | None = None):
        self.folder = Path(folder)
        self.session = session or uuid.uuid4().hex
        self._lock = None

    # -- this session ------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.folder / f"{self.session}.ora"

    @property
    def info_path(self) -> Path:
        return self.folder / f"{self.session}.json"

    def start(self) -> None:
        """Create the folder and take this session's lock (call once, at start-up)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProjectError(f"Cannot create the autosave folder {self.folder}: {exc.strerror or exc}") from exc
        self._lock = _try_lock(self.folder / f"{self.session}.lock")
        if self._lock is None:
            raise ProjectError("Another editor is using this autosave session.")

    def write(
        self,
        doc: Document,
        title: str,
        project_path: str | None = None,
        *,
        progress: Progress | None = None,
        cancel: Cancel | None = None,
    ) -> Path:
        """Autosave `doc` (atomically: the previous autosave survives a failure)."""
        if self._lock is None:
            self.start()
        save_project(doc, self.path, progress=progress, cancel=cancel)
        info = {"title": title, "project_path": project_path, "saved_at": time.time(), "pid": os.getpid(),
                "source_path": doc.source_path}
        with atomic_write(self.info_path) as handle:
            handle.write(json.dumps(info).encode("utf-8"))
        return self.path

    def discard(self) -> None:
        """Forget the autosave (the work was saved, or closed without keeping it)."""
        for path in (self.path, self.info_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def close(self) -> None:
        """Normal exit: remove this session's files and release its lock."""
        self.discard()
        if self._lock is not None:
            lock_path = Path(self._lock.name)
            with contextlib.suppress(OSError):
                lock_path.unlink()
            _unlock(self._lock)
            self._lock = None

    # -- other sessions ----------------------------------------------------------------

    def recoverable(self) -> list[Recovery]:
        """Autosaves of sessions that are no longer running, newest first. Also removes the
        leftovers of dead sessions that hold nothing to recover (locks, half-written temps)."""
        if not self.folder.is_dir():
            return []
        found = []
        for session in self._sessions():
            if session == self.session:
                continue
            lock = _try_lock(self.folder / f"{session}.lock")
            if lock is None:
                continue  # another editor is running and owns it
            try:
                ora = self.folder / f"{session}.ora"
                self._remove_temps(session)
                if ora.is_file():
                    found.append(self._describe(session, ora))
                    continue
                self._remove_session(session)  # nothing to recover: tidy up
                with contextlib.suppress(OSError):
                    (self.folder / f"{session}.lock").unlink()
            finally:
                _unlock(lock)
        return sorted(found, key=lambda r: r.saved_at, reverse=True)

    def remove(self, recovery: Recovery) -> None:
        """Delete a dead session's autosave (after it was recovered or declined)."""
        lock = _try_lock(self.folder / f"{recovery.session}.lock")
        if lock is None:
            return
        try:
            self._remove_session(recovery.session)
        finally:
            _unlock(lock)
        with contextlib.suppress(OSError):
            (self.folder / f"{recovery.session}.lock").unlink()

    def _sessions(self) -> set[str]:
        sessions = set()
        for entry in self.folder.iterdir():
            stem = entry.name.split(".")[1] if entry.name.startswith(".") else entry.name.split(".")[0]
            if _SESSION.match(stem):
                sessions.add(stem)
        return sessions

    def _describe(self, session: str, ora: Path) -> Recovery:
        info: dict = {}
        with contextlib.suppress(OSError, ValueError):
            raw = json.loads((self.folder / f"{session}.json").read_text("utf-8"))
            info = raw if isinstance(raw, dict) else {}
        title = info.get("title") if isinstance(info.get("title"), str) else "Untitled"
        project = info.get("project_path") if isinstance(info.get("project_path"), str) else None
        source = info.get("source_path") if isinstance(info.get("source_path"), str) else None
        saved_at = info.get("saved_at")
        if not isinstance(saved_at, (int, float)):
            saved_at = ora.stat().st_mtime
        return Recovery(session, ora, title, project, float(saved_at), source)

    def _remove_temps(self, session: str) -> None:
        for entry in self.folder.glob(f".{session}.*.tmp"):
            with contextlib.suppress(OSError):
                entry.unlink()

    def _remove_session(self, session: str) -> None:
        for suffix in (".ora", ".json"):
            with contextlib.suppress(OSError):
                (self.folder / f"{session}{suffix}").unlink()
        self._remove_temps(session)


def _try_lock(path: Path):
    """An open file holding an exclusive, non-blocking OS lock on `path`, or None if taken.
    The OS drops the lock when the process dies, however it dies."""
    try:
        handle = open(path, "a+b")  # noqa: SIM115 - held open: the lock lives as long as the file
    except OSError:
        return None
    try:
        if os.name == "nt":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def _unlock(handle) -> None:
    with contextlib.suppress(OSError):
        if os.name == "nt":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    handle.close()
