"""Run one plain function off the GUI thread and get its result back on the GUI thread.

The function gets no widgets and touches none: it takes values and returns a value (or
raises). `done(value)` or `failed(exception)` are then called on the GUI thread. Used for
photo decoding and export encoding, which take seconds on big photos.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(object)


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self._fn, self._relay = fn, relay
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            value = self._fn()
        except Exception as exc:  # noqa: BLE001 - handed to the GUI thread as a message
            self._relay.failed.emit(exc)
        else:
            self._relay.done.emit(value)


class BackgroundTasks(QObject):
    """Owns the relays of running tasks (so their signals outlive the call)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._running: set[_Relay] = set()

    def run(self, fn: Callable[[], Any], done: Callable[[Any], None], failed: Callable[[Exception], None]) -> None:
        relay = _Relay(self)  # lives in the GUI thread: its signals are delivered there
        self._running.add(relay)

        def finish(handler: Callable, value: Any) -> None:
            self._running.discard(relay)
            relay.deleteLater()
            handler(value)

        relay.done.connect(lambda value: finish(done, value))
        relay.failed.connect(lambda exc: finish(failed, exc))
        self._pool.start(_Task(fn, relay))

    def busy(self) -> bool:
        return bool(self._running)

    def wait(self, msecs: int = -1) -> bool:
        """Block until queued tasks have run (tests, shutdown)."""
        return self._pool.waitForDone(msecs)
