"""Runs the engine on the document through the EngineWorker (a long-lived engine thread).

The job gets snapshots (the worker copies the photo; the combined masks are new arrays), so the user keeps
painting, and even applies edits, while it runs; a result for a photo that changed in the
meantime is dropped with a message. Never touches widgets: it emits, the panels listen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.canvas.document import InpaintOutcome, LayerKind
from app.canvas.session import EditSession
from app.engine.settings import STAGE_TEXT, InpaintSettings


def default_worker() -> Any:
    from app.engine.worker import EngineWorker  # the engine loads on the first run, not at start-up

    worker = EngineWorker()
    worker.start()
    return worker


class RunController(QObject):
    running_changed = Signal(bool)
    progress = Signal(str, float)  # stage text, overall fraction 0..1
    finished = Signal(object)  # InpaintOutcome (already set on the session)
    failed = Signal(str)
    cancelled = Signal()
    notice = Signal(str)  # status-bar text

    def __init__(self, session: EditSession, worker_factory: Callable[[], Any] = default_worker,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._factory = worker_factory
        self._worker: Any = None
        self._job: int | None = None
        self._generation = -1
        self._run_mask = None
        self._run_layers: tuple[int, ...] = ()  # the fill layers of the run going on
        # of the run going on: its own settings (None: the document's), and whether it was of chosen layers
        self._run_settings: InpaintSettings | None = None
        self._run_restricted = False
        self._cancelling: int | None = None

    # the Run panel's choices live in the document's settings, so a project keeps them
    @property
    def method(self) -> str:
        return self.session.document.settings.method

    @method.setter
    def method(self, method: str) -> None:
        self.session.set_settings(self.session.document.settings.with_(method=method))

    @property
    def texture(self) -> float:
        """Share of the surroundings' grain the fill carries."""
        return self.session.document.settings.texture

    @texture.setter
    def texture(self, texture: float) -> None:
        self.session.set_settings(self.session.document.settings.with_(texture=float(texture)))

    @property
    def running(self) -> bool:
        return self._job is not None

    def _ensure_worker(self) -> Any:
        if self._worker is None:
            self._worker = self._factory()
            self._worker.progress.connect(self._on_progress)
            self._worker.finished.connect(self._on_finished)
            self._worker.failed.connect(self._on_failed)
            self._worker.cancelled.connect(self._on_cancelled)
        return self._worker

    def start(self, settings: InpaintSettings | None = None, only: tuple[int, ...] | None = None) -> bool:
        """Submit a job for the visible fill layers, or the visible ones among the uids `only`
        (with the document's settings, or `settings` for this run only). False (with a notice)
        if there is nothing to fill."""
        doc = self.session.document
        mask = doc.combined_mask(LayerKind.FILL, only=only)
        if not mask.any():
            fills = [layer for layer in doc.layers if layer.visible and layer.kind == LayerKind.FILL
                     and (only is None or layer.uid in only)]
            if not fills and only is not None:
                text = "The layer this fill is for is hidden or gone: show it to fill it."
            elif not fills:
                text = "There is no visible Fill layer: add one (+ Fill) or show one, and paint what should go."
            elif any(layer.mask.any() for layer in fills):
                text = "Only faint paint is on the visible fill layers: a pixel is filled where it is painted at half strength or more."
            else:
                text = "Paint over what should go first: the visible fill layers are empty."
            self.notice.emit(text)
            return False
        protect = doc.combined_mask(LayerKind.PROTECT)
        protect = protect if protect.any() else None
        settings = settings or doc.settings
        try:
            worker = self._ensure_worker()
        except Exception as exc:  # noqa: BLE001 - the engine could not start: say why
            self.failed.emit(f"The engine could not start: {exc}")
            return False
        self._generation = self.session.photo_generation
        self._run_settings, self._run_restricted = (None if settings is doc.settings else settings), only is not None
        self._run_mask = mask
        self._run_layers = tuple(layer.uid for layer in doc.layers if layer.visible and layer.kind == LayerKind.FILL
                                 and (only is None or layer.uid in only))
        self._job = worker.submit(doc.photo, mask, settings, protect=protect)  # the worker snapshots its inputs
        self.running_changed.emit(True)
        self.progress.emit("Starting", 0.0)
        return True

    def start_again(self) -> bool:
        """Run the pending result's run again, as it was asked for (Fill detected damage: its
        layers with its settings; Run: the visible fill layers), on the layers as they are now."""
        outcome = self.session.document.result
        if outcome is not None and outcome.restricted:
            return self.start(outcome.settings, outcome.layers)
        return self.start()

    def cancel(self) -> None:
        if self._job is not None and self._worker is not None and self._cancelling != self._job:
            self._cancelling = self._job
            self._worker.cancel(self._job)
            self.progress.emit("Cancelling", -1.0)

    def shutdown(self) -> None:
        if self._worker is not None:
            self._worker.shutdown()
            self._worker = None
        self._job = None

    # ---------------------------------------------------------------- worker signals
    def _on_progress(self, job_id: int, stage: str, fraction: float) -> None:
        if job_id == self._job:
            key, _, rest = stage.partition(" ")  # e.g. "model 2/5"
            text = STAGE_TEXT.get(key, key.capitalize()) + (f" {rest}" if rest else "")
            self.progress.emit(text, float(fraction))

    def _done(self) -> None:
        self._job = None
        self.running_changed.emit(False)

    def _on_finished(self, job_id: int, result: Any) -> None:
        if job_id != self._job:
            return
        if self._cancelling == job_id:  # finished before it saw the cancel: the user asked for nothing
            self._on_cancelled(job_id)
            return
        self._done()
        if self.session.photo_generation != self._generation or result.image.shape != self.session.document.photo.shape:
            self.notice.emit("The photo changed during the run, so its result was dropped: run again.")
            return
        outcome = InpaintOutcome(image=result.image, method=result.method, backend=result.backend,
                                 mask=self._run_mask, notes=list(getattr(result, "notes", [])), confined=True,
                                 layers=self._run_layers, restricted=self._run_restricted,
                                 settings=self._run_settings)
        self.session.set_result(outcome)
        self.finished.emit(outcome)
        for note in outcome.notes:  # the NPU failed and the job was rerun on the CPU: say so
            if "fell back" in note:
                self.notice.emit(note)

    def _on_failed(self, job_id: int, message: str) -> None:
        if job_id == self._job:
            self._done()
            self.failed.emit(message)

    def _on_cancelled(self, job_id: int) -> None:
        if job_id == self._job:
            self._done()
            self.cancelled.emit()
