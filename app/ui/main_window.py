"""The main window: composes the canvas, panels, tool bar, status bar and controllers and
wires the actions (declared in app/ui/actions.py) to them. It computes nothing itself.

Extension points for other features (project files, restoration panels):
- `current_document()`, `set_document(doc)` and the `document_changed(doc)` signal;
- `session` (EditSession: undo stack, layer/mask operations, signals);
- `add_action(ActionSpec, handler)` puts an action into a named menu ("file", "layer", ...);
- `add_panel(title, widget, tab_with=None)` docks a panel on the right, below the layers or as a tab.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QSettings, QSize, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QDockWidget,
    QFrame,
    QMainWindow,
    QMenu,
    QScrollArea,
    QToolBar,
    QWidget,
)

from app.canvas.document import Document
from app.canvas.gestures import Tool
from app.canvas.session import EditSession
from app.canvas.widget import CanvasWidget
from app.ui.actions import MENUS, Actions, ActionSpec
from app.ui.brush_options import BrushOptions
from app.ui.file_controller import FileController
from app.ui.file_drop import FileDropFilter
from app.ui.help_dialogs import show_about, show_guide
from app.ui.layer_ops import LayerOps
from app.ui.layers_panel import LayersPanel
from app.ui.messages import ask_apply_stale, show_error
from app.ui.run_controller import RunController, default_worker
from app.ui.run_panel import RunPanel
from app.ui.status_bar import StatusBar

RUN_FAILED = "The run failed; nothing was changed."


class _PanelScroll(QScrollArea):
    """A panel that scrolls up and down rather than demanding its full height (the window must
    fit a 1366x768 laptop), at its own width (nothing clipped at the side)."""

    def __init__(self, panel: QWidget) -> None:
        super().__init__()
        self.setWidget(panel)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def showEvent(self, event) -> None:
        # the dock lays out by the minimum width, which a scroll area does not take from its panel
        self.setMinimumWidth(self.widget().minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width())
        super().showEvent(event)

    def sizeHint(self) -> QSize:
        inner = self.widget().sizeHint()
        return QSize(inner.width() + self.verticalScrollBar().sizeHint().width(), inner.height())


class _PageKeysToEditors(QObject):
    """Page Up/Down open the previous/next photo, except where the focused widget uses them (a
    spin box, a slider, a list): there the key goes to the widget (a shortcut would take it)."""

    EDITORS = (QAbstractSpinBox, QAbstractSlider, QAbstractItemView)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (event.type() == QEvent.Type.ShortcutOverride and isinstance(watched, self.EDITORS)
                and event.key() in (Qt.Key.Key_PageUp, Qt.Key.Key_PageDown)):
            event.accept()  # the key goes to the widget as a key press
            return True
        return False


class MainWindow(QMainWindow):
    document_changed = Signal(object)  # the new Document (opened photo, loaded project)
    closing = Signal()  # the window closes for good (after any unsaved-changes question): stop background work

    def __init__(self, worker_factory: Callable[[], Any] = default_worker, settings: QSettings | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Inpaint Studio[*]")
        self.setAcceptDrops(True)
        self.session = EditSession(parent=self)
        self.actions = Actions(self)
        self.canvas = CanvasWidget(self.session)
        self.status = StatusBar()
        self.files = FileController(self.session, self, settings, parent=self)
        self.layer_ops = LayerOps(self.session, self, parent=self)
        self.runner = RunController(self.session, worker_factory, parent=self)
        self.layers_panel = LayersPanel(self.session, self.actions)
        self.run_panel = RunPanel(self.runner, self.actions)
        self.brush_options = BrushOptions(self.canvas)
        self.menus: dict[str, QMenu] = {}
        self._drop = FileDropFilter(self.files.open_path, self)  # a dropped .ora opens as a project
        self.installEventFilter(self._drop)
        self.canvas.installEventFilter(self._drop)

        self.setCentralWidget(self.canvas)
        self.setStatusBar(self.status)
        self._last_dock: QDockWidget | None = None
        self.docks: dict[str, QDockWidget] = {}
        self.add_panel("Layers", self.layers_panel)
        self.add_panel("Run", self.run_panel)
        self._build_menus()
        self._build_toolbar()
        self._connect_actions()
        self._connect_signals()
        self._update_enabled()
        from app.ui.restore_controller import install_restore  # old-photo restoration dock

        self.restore = install_restore(self)
        from app.ui.project_controller import install_projects  # Open/Save Project, autosave, recovery

        self.projects = install_projects(self)
        # 1280x820, or less on a smaller screen (a 1366x768 laptop): the status bar stays on it
        width, height = 1280, 820
        if self.screen() is not None:
            free = self.screen().availableGeometry()
            width, height = min(width, free.width()), min(height, free.height() - 40)  # 40: the title bar
        self.resize(width, height)

    # ---------------------------------------------------------------- extension API
    def current_document(self) -> Document:
        return self.session.document

    def set_document(self, document: Document) -> None:
        """Show another document (history starts over; a running job is cancelled)."""
        if self.runner.running:
            self.runner.cancel()
        self.session.set_document(document)
        self.actions.erase_mode.setChecked(False)  # a fresh photo starts painting, not erasing
        w, h = document.size
        self.status.show_size(w, h, document.meta)
        self.status.clearMessage()  # a message about the previous photo would mislead
        self.status.show_engine(document.result)  # a reopened project may carry one
        name = document.source_path.replace("\\", "/").rsplit("/", 1)[-1] if document.source_path else "untitled"
        self.setWindowTitle(f"{name}[*] – Inpaint Studio")  # [*]: where Qt shows the unsaved mark
        self._update_enabled()
        self.document_changed.emit(document)

    def add_action(self, spec: ActionSpec, handler: Callable[[], Any]) -> QAction:
        action = self.actions.add(spec)
        action.triggered.connect(lambda _checked=False: handler())
        menu = self.menus.get(spec.menu)
        if menu is None:
            menu = self.menus[spec.menu] = self.menuBar().addMenu(spec.menu.capitalize())
        # Quit stays last in its menu, below its separator
        entries = menu.actions()
        at = entries.index(self.actions.quit) if self.actions.quit in entries else len(entries)
        if 0 < at < len(entries) and entries[at - 1].isSeparator():
            at -= 1
        before = entries[at] if at < len(entries) else None  # None: appended
        if spec.separator_before:
            menu.insertSeparator(before)
        menu.insertAction(before, action)
        return action

    def add_panel(self, title: str, widget: QWidget, tab_with: str | None = None) -> QDockWidget:
        """Dock a panel on the right, below the others, or as a tab beside panel `tab_with`
        (which stays in front): three stacked panels do not fit a laptop screen."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower().replace(' ', '_')}")
        dock.setWidget(_PanelScroll(widget))
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        beside = self.docks.get(tab_with) if tab_with else None
        if beside is not None:
            self.tabifyDockWidget(beside, dock)
            beside.raise_()
        elif self._last_dock is not None:
            self.splitDockWidget(self._last_dock, dock, Qt.Orientation.Vertical)
        if beside is None:
            self._last_dock = dock
        self.docks[title] = dock
        return dock

    # ---------------------------------------------------------------- composition
    def _build_menus(self) -> None:
        undo = self.session.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcuts(QKeySequence.StandardKey.Undo)
        redo = self.session.undo_stack.createRedoAction(self, "&Redo")
        # the platform's redo (Ctrl+Shift+Z here) and Ctrl+Y, which many editors use; where the
        # platform's has it already (Windows), twice would make it ambiguous: Qt then does nothing
        keys = QKeySequence.keyBindings(QKeySequence.StandardKey.Redo)
        redo.setShortcuts(keys if QKeySequence("Ctrl+Y") in keys else [*keys, QKeySequence("Ctrl+Y")])
        for action, name in ((undo, "Undo"), (redo, "Redo")):
            action.setIconText(name)  # the menu text names the step; the tool bar stays short
            action.setProperty("guide_name", name)  # and the guide's list of shortcuts too
        self.undo_action, self.redo_action = undo, redo
        for key, title in MENUS:
            menu = self.menus[key] = self.menuBar().addMenu(title)
            if key == "edit":
                menu.addAction(undo)
                menu.addAction(redo)
            for spec in self.actions.specs(key):
                if spec.separator_before:
                    menu.addSeparator()
                menu.addAction(self.actions[spec.name])
                if spec.name == "open":
                    self.recent_menu = menu.addMenu("Open &Recent")
                    self.recent_menu.aboutToShow.connect(lambda: self.files.fill_recent_menu(self.recent_menu))
        for dock in self.findChildren(QDockWidget):
            self.menus["view"].addAction(dock.toggleViewAction())

    def _build_toolbar(self) -> None:
        a = self.actions
        bar = QToolBar("Tools")
        bar.setObjectName("toolbar_main")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for item in (a.open, a.export, None, self.undo_action, self.redo_action, None, a.tool_brush, a.tool_rect,
                     a.tool_ellipse, a.tool_lasso, a.erase_mode):
            bar.addSeparator() if item is None else bar.addAction(item)
        bar.addWidget(self.brush_options)
        for item in (None, a.show_masks, a.fit, a.actual_size, None, a.run, a.cancel_run, a.apply_result,
                     a.discard_result):
            bar.addSeparator() if item is None else bar.addAction(item)
        self.addToolBar(bar)
        self.toolbar = bar

    def _connect_actions(self) -> None:
        a, c, ops, files = self.actions, self.canvas, self.layer_ops, self.files
        handlers = {
            "open": files.open_dialog, "export": files.export_dialog, "quit": self.close,
            "next_photo": lambda: files.open_sibling(1), "previous_photo": lambda: files.open_sibling(-1),
            "zoom_in": lambda: c.zoom_by(1.25), "zoom_out": lambda: c.zoom_by(0.8), "fit": c.fit,
            "actual_size": c.actual_size, "flip_compare": c.flip_compare,
            "tool_brush": lambda: c.set_tool(Tool.BRUSH), "tool_rect": lambda: c.set_tool(Tool.RECT),
            "tool_ellipse": lambda: c.set_tool(Tool.ELLIPSE), "tool_lasso": lambda: c.set_tool(Tool.LASSO), "bigger_brush": c.bigger_brush,
            "smaller_brush": c.smaller_brush, "add_layer": ops.add_fill, "add_protect_layer": ops.add_protect,
            "rename_layer": self.layers_panel.rename_active, "delete_layer": ops.delete,
            "layer_up": lambda: ops.move(+1), "layer_down": lambda: ops.move(-1), "clear_layer": ops.clear,
            "invert_layer": ops.invert, "grow_layer": ops.grow_dialog, "shrink_layer": lambda: ops.grow_dialog(True),
            "import_mask": files.import_mask_dialog, "export_layer": files.export_layer_dialog,
            "run": self.runner.start, "cancel_run": self.runner.cancel, "apply_result": self._apply_result,
            "discard_result": self.session.discard_result,
            "guide": lambda: show_guide(self, self._menu_actions()), "about": lambda: show_about(self),
        }
        for name, handler in handlers.items():
            a[name].triggered.connect(lambda _checked=False, h=handler: h())
        a.erase_mode.toggled.connect(c.set_erase)
        # Page Up/Down also step spin boxes, sliders and lists: with one of those in focus they are its
        self._page_keys = _PageKeysToEditors(self)
        QApplication.instance().installEventFilter(self._page_keys)
        a.show_masks.toggled.connect(c.set_show_masks)

    def _connect_signals(self) -> None:
        s, st = self.session, self.status
        self.files.document_loaded.connect(self.set_document)
        for source in (self.files.notice, self.layer_ops.notice, self.runner.notice, self.canvas.message):
            source.connect(lambda text: st.showMessage(text, 6000))
        self.files.busy_changed.connect(st.show_busy)
        self.canvas.cursor_moved.connect(st.show_cursor)
        self.canvas.zoom_changed.connect(st.show_zoom)
        self.runner.failed.connect(self._on_run_failed)
        # queued: the dialog must not open inside QUndoStack.push/undo, which is where it is emitted
        s.command_failed.connect(lambda text: show_error(self, "The edit failed", text),
                                 Qt.ConnectionType.QueuedConnection)
        self.runner.cancelled.connect(lambda: st.showMessage("Run cancelled; nothing was changed.", 6000))
        self.runner.finished.connect(st.show_engine)
        self.runner.running_changed.connect(lambda _r: self._update_enabled())
        self.runner.running_changed.connect(self._forget_failure)
        self.runner.progress.connect(st.show_run)
        self.runner.running_changed.connect(st.end_run)
        s.result_changed.connect(self._update_enabled)
        s.layers_changed.connect(self._update_enabled)
        s.active_layer_changed.connect(lambda _uid: self._update_enabled())

    def _apply_result(self) -> None:
        if self.session.result_is_stale():  # the layers changed since the run: ask what is meant
            ask_apply_stale(self, self.session.apply_result, self.runner.start_again)  # (Apply: disabled while running)
        else:
            self.session.apply_result()

    def _menu_actions(self) -> list[QAction]:
        """Every action of the menus in their order (those added by extensions too)."""
        return [action for top in self.menuBar().actions() if top.menu() is not None
                for action in top.menu().actions() if not action.isSeparator() and action.menu() is None]

    def _forget_failure(self, running: bool) -> None:
        """The next run makes the last one's failure old news (it stayed up to 6 s, under "Done")."""
        if running and self.status.currentMessage() == RUN_FAILED:
            self.status.clearMessage()

    def _on_run_failed(self, message: str) -> None:
        self.status.showMessage(RUN_FAILED, 6000)
        show_error(self, "The fill did not run", message)

    def _update_enabled(self) -> None:
        a, doc = self.actions, self.session.document
        running, has_result = self.runner.running, doc.result is not None
        has_layer = self.session.active_layer() is not None
        a.run.setEnabled(not running)
        a.cancel_run.setEnabled(running)
        for name in ("apply_result", "discard_result", "flip_compare"):
            a[name].setEnabled(has_result)
        for name in ("rename_layer", "delete_layer", "layer_up", "layer_down", "clear_layer", "invert_layer",
                     "grow_layer", "shrink_layer", "export_layer"):
            a[name].setEnabled(has_layer)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if not self.projects.confirm_close(self.close):  # unsaved changes: Save / Discard / Cancel
            event.ignore()
            return
        self.closing.emit()
        self.canvas.shutdown()
        self.session.shutdown()
        self.projects.shutdown()
        self.runner.shutdown()
        self.files.tasks.wait(10000)
        super().closeEvent(event)


def blank_document() -> Document:
    doc = Document(photo=np.full((600, 800, 3), 60, np.uint8))
    doc.layers.append(doc.new_layer("Mask 1"))
    return doc
