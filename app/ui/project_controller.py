"""Projects in the editor: Save / Save As / Open Project off the GUI thread with progress,
autosave on a timer, recovery after a crash, and the unsaved-changes question on close.

The heavy work is app/io/project.py (save_project / load_project) and app/io/autosave.py,
run on one background thread (so a save and an autosave never overlap) on a snapshot of
the document: the user keeps painting while 24 MP and eight layers are encoded.

Unsaved means "differs from the file": the undo stack's clean point (set when a save
finishes, if nothing changed while it ran), the pending result and the engine settings as
saved. Every change the session reports also bumps a generation number, which tells the
autosave whether there is anything new to write.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QSettings, QStandardPaths, Qt, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.canvas.document import Document
from app.canvas.session import EditSession
from app.io.autosave import DEFAULT_INTERVAL_MINUTES, AutosaveStore, Recovery
from app.io.project import ProjectCancelled, ProjectError, load_project, save_project, snapshot
from app.ui.file_controller import save_suggestion
from app.ui.messages import confirm_overwrite, show_error

PROJECT_FILTER = "OpenRaster project (*.ora)"
Buttons = QMessageBox.StandardButton


def _settings_of(doc: Document) -> tuple:
    """What a project keeps besides the undo history and the pending result: the engine settings
    and the Restore panel's choices (changing them is not an undo step, but unsaved work)."""
    return doc.settings, doc.restore


def default_autosave_folder() -> Path:
    return Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)) / "autosave"


class _Relay(QObject):
    progress = Signal(str, float)
    done = Signal(object)
    failed = Signal(object)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[Callable[[str, float], None]], Any], relay: _Relay) -> None:
        super().__init__()
        self._fn, self._relay = fn, relay
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            value = self._fn(self._relay.progress.emit)
        except Exception as exc:  # noqa: BLE001 - handed to the GUI thread as a message
            self._relay.failed.emit(exc)
        else:
            self._relay.done.emit(value)


class ProjectController(QObject):
    progress = Signal(str, float)  # stage, fraction 0..1 of the running save/open
    busy_changed = Signal(bool)
    # a save or open the user started is running (its progress and Cancel are worth showing;
    # the autosave is quiet)
    working = Signal(bool)
    saved = Signal(str)  # path of a project written by Save / Save As
    opened = Signal(object)  # Document read by Open Project or a recovery: show it (set_document)
    project_opened = Signal(str)  # path of a project file opened (not a recovery)
    open_failed = Signal(str)  # path of a project file that could not be opened
    autosaved = Signal(str)
    notice = Signal(str)
    dirty_changed = Signal(bool)

    def __init__(self, session: EditSession, window: QWidget | None = None, settings: QSettings | None = None,
                 autosave_folder: str | Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.window = session, window
        self.settings = settings or QSettings("InpaintStudio", "Inpaint Studio")
        self.project_path: str | None = None
        self.store = AutosaveStore(autosave_folder or default_autosave_folder())
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._relays: set[_Relay] = set()
        self._cancel = threading.Event()
        self._busy = 0
        self._loud = 0  # of those, the jobs the user started
        self._generation = 0  # counts every change: the autosave writes when it moved
        self._autosaved_generation = 0
        # the saved state: the undo stack's clean index plus what is not an undo step (the
        # pending result, the engine settings and restore choices); a recovered autosave is unsaved until saved
        self._saved_result = session.document.result
        self._saved_settings = _settings_of(session.document)
        self._unsaved_load = False
        self._shown_dirty = False
        self._pending: tuple[str | None, bool] | None = None  # (project path, dirty) of the next document
        self._recovered: Recovery | None = None
        self._close_after_save: Callable[[], Any] | None = None
        self._question: QMessageBox | None = None
        self._discarding = False
        self._started = False
        for signal in (session.layers_changed, session.layer_pixels_changed, session.photo_changed,
                       session.result_changed, session.settings_changed, session.undo_stack.indexChanged):
            signal.connect(self._changed)
        session.document_replaced.connect(self._document_replaced)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.autosave_now)

    # ---------------------------------------------------------------- state
    @property
    def dirty(self) -> bool:
        """Whether the document differs from the project as last saved (undoing back to it counts)."""
        doc = self.session.document
        return (self._unsaved_load or not self.session.undo_stack.isClean()
                or doc.result is not self._saved_result or self._settings_changed(doc))

    def _settings_changed(self, doc: Document) -> bool:
        """The engine settings count as unsaved work; the Restore panel's choices only for a
        project, which keeps them (for a plain photo they carry over to the next one like
        preferences: moving a slider must not make Page Down ask to save a project)."""
        (settings, restore), (saved_settings, saved_restore) = _settings_of(doc), self._saved_settings
        return settings != saved_settings or (self.project_path is not None and restore != saved_restore)

    @property
    def busy(self) -> bool:
        return self._busy > 0

    def autosave_minutes(self) -> float:
        try:
            return float(self.settings.value("autosave_minutes", DEFAULT_INTERVAL_MINUTES))
        except (TypeError, ValueError):
            return float(DEFAULT_INTERVAL_MINUTES)

    def set_autosave_minutes(self, minutes: float) -> None:
        self.settings.setValue("autosave_minutes", float(minutes))
        self._restart_timer()

    def _changed(self, *_args) -> None:
        self._generation += 1
        self._show_dirty()

    def _show_dirty(self) -> None:
        if not shiboken6.isValid(self.session.undo_stack):
            return  # the window is gone; a late signal (a run finishing) has nothing to mark
        if self.dirty != self._shown_dirty:
            self._shown_dirty = self.dirty
            self.dirty_changed.emit(self._shown_dirty)

    def _document_replaced(self) -> None:
        path, dirty = self._pending or (None, False)
        self._pending = None
        self.project_path = path
        self._generation += 1
        doc = self.session.document
        self._saved_result, self._saved_settings, self._unsaved_load = doc.result, _settings_of(doc), dirty
        self._autosaved_generation = self._generation if not dirty else -1
        self._shown_dirty = self.dirty
        self.dirty_changed.emit(self._shown_dirty)

    # ---------------------------------------------------------------- start / stop
    def start(self) -> list[Recovery]:
        """Take this session's autosave lock, start the timer; return leftovers of crashed
        sessions (offer_recovery asks about them)."""
        self._started = True
        try:
            self.store.start()
            found = self.store.recoverable()
        except (ProjectError, OSError) as exc:
            self.notice.emit(f"Autosave is off: {exc}")
            return []
        self._restart_timer()
        return found

    def _restart_timer(self) -> None:
        minutes = self.autosave_minutes()
        if minutes > 0 and self._started:
            self.timer.start(max(int(minutes * 60_000), 1000))
        else:
            self.timer.stop()

    def offer_recovery(self, found: list[Recovery] | None = None) -> QMessageBox | None:
        """Ask (window-modal, non-blocking) whether to recover the newest crashed autosave."""
        found = self.store.recoverable() if found is None else found
        if not found:
            return None
        rec = found[0]
        more = f"\n\n{len(found) - 1} older autosave(s) will be offered next time." if len(found) > 1 else ""
        box = QMessageBox(QMessageBox.Icon.Question, "Recover unsaved work?",
                          f"Inpaint Studio did not close normally. Recover your work?\n\n{rec.describe()}{more}",
                          Buttons.Yes | Buttons.Discard | Buttons.Cancel, self.window)
        box.button(Buttons.Yes).setText("Recover")
        box.button(Buttons.Cancel).setText("Later")
        box.setObjectName("recovery_box")

        def answered(button: int) -> None:
            if button == Buttons.Yes:
                self.recover(rec)
            elif button == Buttons.Discard:
                self.store.remove(rec)
                self.notice.emit("The autosave was discarded.")

        box.finished.connect(lambda _r: answered(box.standardButton(box.clickedButton())))
        box.open()
        return box

    def recover(self, rec: Recovery) -> None:
        """Open a crashed session's autosave as unsaved work that belongs to its project."""

        def done(doc: Document) -> None:
            self._recovered = rec
            self._pending = (rec.project_path, True)
            # not the autosave's own path: a save would suggest the program's folder and an
            # internal name (and removing the autosave afterwards removed the file just saved)
            doc.source_path = rec.project_path or rec.source_path
            self.opened.emit(doc)
            self.notice.emit(f"Recovered {rec.title}; save it to keep it.")

        # the autosave's file name is an internal one: messages name the photo
        self._run(lambda progress: load_project(rec.path, progress=progress, cancel=self._cancel.is_set,
                                                label=f"The autosave of {rec.title}"),
                  done, f"Cannot recover {rec.title}")

    def shutdown(self) -> None:
        """Normal exit: wait for a running save, then remove this session's autosave."""
        self.timer.stop()
        self._pool.waitForDone(-1)
        if self._started:
            self.store.close()
            if self._recovered is not None:
                self.store.remove(self._recovered)
                self._recovered = None

    # ---------------------------------------------------------------- save
    def save(self) -> None:
        if self.project_path:
            self.save_to(self.project_path)
        else:
            self.save_as_dialog()

    def save_as_dialog(self) -> None:
        doc = self.session.document
        stem = Path(self.project_path or doc.source_path or "untitled").stem
        start = save_suggestion(self.project_path or doc.source_path, f"{stem}.ora")
        path, _ = QFileDialog.getSaveFileName(self.window, "Save project", start, PROJECT_FILTER)
        final = path if path.lower().endswith(".ora") else path + ".ora"
        if path and confirm_overwrite(self.window, path, final):
            self.save_to(final)
        else:
            self._close_after_save = None

    def save_to(self, path: str) -> None:
        if Path(path).resolve().parent == self.store.folder.resolve():
            # the program empties that folder: a project saved there would be deleted with the autosaves
            show_error(self.window, "Choose another folder",
                       f"{self.store.folder} holds the editor's autosaves and is cleaned up by it; "
                       "save your project in a folder of your own.")
            self._close_after_save = None
            return
        doc = self.session.document
        snap, generation = snapshot(doc), self._generation
        saved, mark = (doc.result, _settings_of(doc)), self._history_mark()
        name = Path(path).name
        self.notice.emit(f"Saving {name}…")

        def work(progress):
            save_project(snap, path, progress=progress, cancel=self._cancel.is_set)
            return path

        def done(_path: str) -> None:
            if self.session.document is not doc:  # another photo was opened while this one saved:
                self.notice.emit(f"Saved {name}")  # (`saved` would title the new photo with its name)
                return
            self.project_path = str(path)
            (self._saved_result, self._saved_settings), self._unsaved_load = saved, False
            index, top = self._history_mark()
            # a change while saving (a merged stroke or slider drag keeps index and top command)
            # bumps the generation: then no point of today's history is what the file holds
            if generation == self._generation and index == mark[0] and top is mark[1]:
                self.session.undo_stack.setClean()
            else:
                self.session.undo_stack.resetClean()
            self.store.discard()  # the project on disk is at least as new as the autosave
            self._autosaved_generation = generation
            if self._recovered is not None:
                self.store.remove(self._recovered)
                self._recovered = None
            self._show_dirty()
            self.notice.emit(f"Saved {name}")
            self.saved.emit(str(path))
            close, self._close_after_save = self._close_after_save, None
            if close is not None and not self.dirty:
                close()

        self._run(work, done, f"Could not save {name}", on_error=lambda: setattr(self, "_close_after_save", None))

    def _history_mark(self) -> tuple:
        """Where the undo history stands: its index and the command below it (the same index
        after undo + a new edit is another point of the history)."""
        stack = self.session.undo_stack
        top = stack.command(stack.index() - 1) if stack.index() > 0 else None
        return stack.index(), top

    def autosave_now(self) -> None:
        """Write the autosave if anything changed since the last one (and nothing else runs)."""
        if self.busy or self._generation == self._autosaved_generation or not self.dirty:
            return
        snap, generation = snapshot(self.session.document), self._generation
        title = Path(self.project_path or snap.source_path or "Untitled").name

        def work(_progress):
            # autosaves are quiet: no progress, never cancelled by the user's Cancel
            return self.store.write(snap, title, self.project_path)

        def done(path: Path) -> None:
            self._autosaved_generation = generation
            if self._recovered is not None:  # our own autosave now holds the recovered work
                self.store.remove(self._recovered)
                self._recovered = None
            self.autosaved.emit(str(path))

        self._run(work, done, "Autosave failed", quiet=True)

    # ---------------------------------------------------------------- open
    def open_dialog(self) -> None:
        # ask first: Discard goes on to the file dialog, Save saves and then goes on
        if self.confirm_close(self._open_file_dialog, "opening another project"):
            self._open_file_dialog()

    def _open_file_dialog(self) -> None:
        start = str(Path(self.project_path).parent) if self.project_path else ""
        path, _ = QFileDialog.getOpenFileName(self.window, "Open project", start, PROJECT_FILTER + ";;All files (*)")
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> None:
        if not self.confirm_close(lambda: self.open_path(path), "opening another project"):
            return  # asking about unsaved changes first (a drop or Open Recent)
        name = Path(path).name
        self.notice.emit(f"Opening {name}…")
        limit = self.session.document.settings.max_megapixels

        def done(doc: Document) -> None:
            self._pending = (str(path), False)
            self.opened.emit(doc)
            self.project_opened.emit(str(path))
            notes = "; ".join(doc.meta.notes)
            self.notice.emit(f"Opened {name}" + (f" ({notes})" if notes else ""))

        self._run(lambda progress: load_project(path, progress=progress, cancel=self._cancel.is_set,
                                                max_megapixels=max(limit, 1.0)),
                  done, f"Cannot open {name}", on_error=lambda: self.open_failed.emit(str(path)))

    def cancel(self) -> None:
        """Cancel the running save or open (the previous file and the open document stay)."""
        if self.busy:
            self._cancel.set()

    # ---------------------------------------------------------------- close
    def confirm_close(self, close: Callable[[], Any] | None = None, doing: str = "closing") -> bool:
        """True when the window may close now. With unsaved changes it returns False and asks,
        without blocking (a window-modal box): Save saves and then calls `close`, Discard
        calls `close` at once, Cancel keeps everything as it is."""
        if self.busy and not self.dirty:
            self._pool.waitForDone(-1)  # a save of exactly this state is finishing
        if not self.dirty or self._discarding:
            return True
        if self._question is not None:
            return False  # already asking

        def answered(button) -> None:
            if button == Buttons.Discard:
                self._discarding = True
                if close is not None:
                    close()
                self._discarding = False
            elif button == Buttons.Save:
                self._close_after_save = close
                self.save()

        self._ask_unsaved(doing, answered)
        return False

    def confirm_replace(self, proceed: Callable[[], Any]) -> bool:
        """Before another photo replaces the document: True to go on now; otherwise asks
        (Save saves and then calls `proceed`, Discard calls it at once)."""
        return self.confirm_close(proceed, "opening another photo")

    def _ask_unsaved(self, doing: str, answered: Callable[[Any], None]) -> QMessageBox:
        # a photo's work is saved as a project: say what that keeps (applied fills too, not only masks)
        question = (f"Save the changes to {Path(self.project_path).name} before {doing}?" if self.project_path else
                    f"Save your work on this photo (applied fills, masks, a pending result, settings) as a project "
                    f"before {doing}?")
        box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved changes", question,
                          Buttons.Save | Buttons.Discard | Buttons.Cancel, self.window)
        box.setObjectName("unsaved_box")
        box.setDefaultButton(Buttons.Save)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        self._question = box

        def finished(_result: int) -> None:
            self._question = None
            clicked = box.clickedButton()
            answered(box.standardButton(clicked) if clicked is not None else Buttons.Cancel)

        box.finished.connect(finished)
        box.open()
        return box

    # ---------------------------------------------------------------- background jobs
    def _run(self, work, done, failure_title: str, quiet: bool = False, on_error: Callable[[], Any] | None = None) -> None:
        relay = _Relay(self)
        self._relays.add(relay)
        if not quiet:
            self._cancel.clear()
            relay.progress.connect(self.progress.emit)
            self._loud += 1
            if self._loud == 1:
                self.working.emit(True)
        self._busy += 1
        if self._busy == 1:
            self.busy_changed.emit(True)

        def finish() -> None:
            self._relays.discard(relay)
            relay.deleteLater()
            if not quiet:
                self._loud -= 1
                if self._loud == 0:
                    self.working.emit(False)
            self._busy -= 1
            if self._busy == 0:
                self.busy_changed.emit(False)

        def ok(value) -> None:
            finish()
            done(value)

        def bad(exc: Exception) -> None:
            finish()
            if on_error:
                on_error()
            if isinstance(exc, ProjectCancelled):
                self.notice.emit(str(exc))
            elif quiet:
                self.notice.emit(f"{failure_title}: {exc}")
            else:
                self.notice.emit(failure_title)
                message = str(exc) if isinstance(exc, ProjectError) else f"{type(exc).__name__}: {exc}"
                if self.window is not None:
                    show_error(self.window, failure_title, message)

        relay.done.connect(ok)
        relay.failed.connect(bad)
        self._pool.start(_Job(work, relay))

    def wait(self, msecs: int = -1) -> bool:
        """Block until queued jobs have run (tests, shutdown)."""
        return self._pool.waitForDone(msecs)


# -------------------------------------------------------------------- editor glue

PROJECT_ACTIONS = (
    ("open_project", "Open &Project…", ("Ctrl+Shift+O",), "Open an .ora project with its mask layers"),
    ("save_project", "&Save Project", ("Ctrl+S",), "Save the photo and every mask layer as an .ora project"),
    ("save_project_as", "Save Project &As…", ("Ctrl+Shift+S",), "Save the project under another name"),
)


def install_projects(window, autosave_folder: str | Path | None = None) -> ProjectController:
    """Put Open Project / Save Project / Save Project As into the File menu (before Export),
    show save/open progress with a Cancel button in the status bar, and wire the controller
    to the window (the one call MainWindow makes). Autosave and recovery start with
    `start_session()`, which the launcher calls (tests choose their own folder first)."""
    from PySide6.QtWidgets import QProgressBar, QToolButton

    from app.ui.actions import ActionSpec

    ctl = ProjectController(window.session, window, getattr(window.files, "settings", None), autosave_folder,
                            parent=window)
    menu = window.menus["file"]
    before = window.actions["export"]
    handlers = {"open_project": ctl.open_dialog, "save_project": ctl.save, "save_project_as": ctl.save_as_dialog}
    for name, text, keys, tip in PROJECT_ACTIONS:
        action = window.actions.add(ActionSpec(name, text, "file", keys, tip=tip))
        action.triggered.connect(lambda _checked=False, h=handlers[name]: h())
        menu.insertAction(before, action)
    menu.insertSeparator(before)

    bar, cancel = QProgressBar(), QToolButton()
    bar.setObjectName("project_progress")
    bar.setRange(0, 1000)
    bar.setMaximumWidth(160)
    cancel.setText("Cancel")
    cancel.setObjectName("project_cancel")
    cancel.clicked.connect(ctl.cancel)
    for widget in (bar, cancel):
        window.status.addPermanentWidget(widget)
        widget.hide()

    def busy(on: bool) -> None:
        bar.setValue(0)
        bar.setFormat("%p%")  # not the last job's stage
        bar.setVisible(on)
        cancel.setVisible(on)

    def progress(stage: str, fraction: float) -> None:
        bar.setValue(int(fraction * 1000))
        bar.setFormat(f"{stage} %p%")

    def saved(path: str) -> None:
        window.setWindowTitle(f"{Path(path).name}[*] – Inpaint Studio")

    def alive(fn):  # the session's last signals can arrive while the window is being destroyed
        return lambda *args: fn(*args) if shiboken6.isValid(window) else None

    busy, progress, saved = alive(busy), alive(progress), alive(saved)
    ctl.working.connect(busy)
    ctl.progress.connect(progress)
    ctl.opened.connect(window.set_document)
    window.files.confirm_replace = ctl.confirm_replace
    window.files.open_project = ctl.open_path  # Open Recent and drops route .ora files here
    ctl.saved.connect(saved)
    ctl.saved.connect(window.files.add_recent)
    ctl.project_opened.connect(window.files.add_recent)
    ctl.open_failed.connect(window.files.forget_if_gone)
    ctl.notice.connect(alive(lambda text: window.status.showMessage(text, 6000)))
    ctl.autosaved.connect(alive(lambda _path: window.status.showMessage("Autosaved", 3000)))
    ctl.dirty_changed.connect(alive(window.setWindowModified))
    return ctl


def start_session(ctl: ProjectController) -> QMessageBox | None:
    """At start-up: autosave on, and offer to recover what a crashed session left behind."""
    return ctl.offer_recovery(ctl.start())
