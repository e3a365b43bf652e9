"""The engine thread: one long-lived QThread that owns the backend and runs jobs.

An Ascend context belongs to the thread that made it, so the backend is created, used
and closed on this one thread. Jobs are immutable snapshots with ids; the GUI thread
only submits, cancels and listens. Cancel is a thread-safe flag the engine polls
between stages and chunks; results of superseded jobs are dropped.
"""

from __future__ import annotations

import itertools
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from app.engine.backends import Backend, select_backend
from app.engine.errors import Cancelled, EngineError
from app.engine.model_spec import DEFAULT_MODEL, load_spec
from app.engine.pipeline import inpaint
from app.engine.settings import InpaintSettings


@dataclass(frozen=True)
class InpaintJob:
    job_id: int
    image: np.ndarray
    mask: np.ndarray
    settings: InpaintSettings
    protect: np.ndarray | None = None


class _Runner(QObject):
    """Lives on the engine thread; everything it does happens there."""

    progress = Signal(int, str, float)
    finished = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)

    def __init__(self, owner: EngineWorker) -> None:
        super().__init__()
        self._owner = owner
        self._backend: Backend | None = None
        self._backend_key: tuple = ()
        self._reason = ""  # why this backend was chosen: told once, in the next result's notes

    def _backend_for(self, settings: InpaintSettings) -> Backend:
        key = (settings.backend, settings.model_path, settings.npu_chunk)
        if self._backend is None or self._backend_key != key:
            self.close_backend()
            # the NPU backend loads the model's .om files here, on the engine thread that owns them
            model = Path(settings.model_path) if settings.model_path else DEFAULT_MODEL
            spec = load_spec(model) if model.is_file() else None
            self._backend, self._reason = select_backend(settings.backend, spec, chunk=settings.npu_chunk)
            self._backend_key = key
        return self._backend

    @Slot(object)
    def run(self, job: InpaintJob) -> None:
        owner = self._owner
        if owner.is_stale(job.job_id) or owner.is_cancelled(job.job_id):
            self.cancelled.emit(job.job_id)
            return

        def report(stage: str, step: int, total: int, fraction: float) -> None:
            label = stage if total <= 1 else f"{stage} {step}/{total}"
            self.progress.emit(job.job_id, label, float(fraction))

        try:
            needs_backend = job.settings.method not in ("telea", "ns")
            backend = self._backend_for(job.settings) if needs_backend else None
            result = inpaint(
                job.image,
                job.mask,
                job.settings,
                protect=job.protect,
                backend=backend,
                progress=report,
                cancel=lambda: owner.is_cancelled(job.job_id) or owner.is_stale(job.job_id),
            )
        except Cancelled:
            self.cancelled.emit(job.job_id)
            return
        except EngineError as exc:
            self.failed.emit(job.job_id, str(exc))
            return
        except MemoryError:
            self.failed.emit(job.job_id, "Out of memory: try a smaller mask or close other programs.")
            return
        except Exception as exc:  # an engine bug must not kill the thread; report it
            traceback.print_exc()
            self.failed.emit(job.job_id, f"Internal error: {type(exc).__name__}: {exc}")
            return
        if owner.is_stale(job.job_id):
            return  # a newer job replaced this one: drop the result
        if needs_backend and self._reason:
            result.notes.insert(0, self._reason)
            self._reason = ""
        self.finished.emit(job.job_id, result)

    @Slot()
    def close_backend(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


class EngineWorker(QObject):
    """The GUI-side handle: submit, cancel, shutdown; relays the runner's signals."""

    progress = Signal(int, str, float)  # job id, stage label, overall fraction 0..1
    finished = Signal(int, object)  # job id, InpaintResult
    failed = Signal(int, str)  # job id, message for the user
    cancelled = Signal(int)  # job id

    _dispatch = Signal(object)
    _close = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._latest = 0
        self._cancelled: set[int] = set()
        self._thread = QThread()
        self._thread.setObjectName("engine")
        self._runner = _Runner(self)
        self._runner.moveToThread(self._thread)
        self._dispatch.connect(self._runner.run)
        # blocking: shutdown waits until the backend is closed on its own thread (quit() alone
        # would end the event loop before a queued close ran, leaving the NPU context alive)
        self._close.connect(self._runner.close_backend, Qt.ConnectionType.BlockingQueuedConnection)
        self._runner.progress.connect(self.progress)
        self._runner.finished.connect(self._on_finished)
        self._runner.failed.connect(self.failed)
        self._runner.cancelled.connect(self.cancelled)

    def start(self) -> None:
        if not self._thread.isRunning():
            self._thread.start()

    @property
    def thread_object(self) -> QThread:
        return self._thread

    def submit(self, image: np.ndarray, mask: np.ndarray, settings: InpaintSettings | None = None,
               protect: np.ndarray | None = None) -> int:
        """Queue a job on a snapshot of the inputs; a newer job supersedes older ones."""
        self.start()
        job_id = next(self._ids)
        job = InpaintJob(
            job_id,
            np.array(image, copy=True),
            np.array(mask, copy=True),
            settings or InpaintSettings(),
            None if protect is None else np.array(protect, copy=True),
        )
        with self._lock:
            self._latest = job_id
        self._dispatch.emit(job)
        return job_id

    def cancel(self, job_id: int) -> None:
        with self._lock:
            self._cancelled.add(job_id)

    def is_cancelled(self, job_id: int) -> bool:
        with self._lock:
            return job_id in self._cancelled

    def is_stale(self, job_id: int) -> bool:
        with self._lock:
            return job_id != self._latest

    @Slot(int, object)
    def _on_finished(self, job_id: int, result) -> None:
        if not self.is_stale(job_id):
            self.finished.emit(job_id, result)

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Cancel everything, close the backend on its own thread, stop the thread."""
        with self._lock:
            self._latest = -1  # every job is stale now
        if self._thread.isRunning():
            self._close.emit()
            self._thread.quit()
            self._thread.wait(timeout_ms)
