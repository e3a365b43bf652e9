"""Layer menu handlers: thin glue from actions to the session's undoable operations."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QInputDialog, QWidget

from app.canvas import tools
from app.canvas.document import LayerKind
from app.canvas.session import EditSession


class LayerOps(QObject):
    notice = Signal(str)

    def __init__(self, session: EditSession, window: QWidget, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.window = session, window
        self.grow_px = 8

    def _active(self):
        layer = self.session.active_layer()
        if layer is None:
            self.notice.emit("No mask layer selected.")
        return layer

    def add_fill(self) -> None:
        self.session.add_layer(kind=LayerKind.FILL)

    def add_protect(self) -> None:
        self.session.add_layer(kind=LayerKind.PROTECT)

    def delete(self) -> None:
        if (layer := self._active()) is not None:
            self.session.delete_layer(layer.uid)

    def move(self, steps: int) -> None:
        """steps > 0 moves the layer up (towards the top of the panel)."""
        if (layer := self._active()) is not None:
            self.session.move_layer(layer.uid, self.session.document.layer_index(layer.uid) + steps)

    def _edit(self, tool, text: str) -> None:
        layer = self._active()
        if layer is None:
            return
        if layer.locked:
            self.notice.emit(f"Layer “{layer.name}” is locked.")
            return
        if not self.session.edit_mask(layer.uid, tool, text):
            self.notice.emit(f"{text}: nothing changed.")

    def clear(self) -> None:
        self._edit(tools.clear, "Clear mask")

    def invert(self) -> None:
        self._edit(tools.invert, "Invert mask")

    def grow(self, px: int) -> None:
        self._edit(lambda m: tools.grow(m, px), f"{'Grow' if px > 0 else 'Shrink'} mask by {abs(px)} px")

    def grow_dialog(self, shrink: bool = False) -> None:
        verb = "Shrink" if shrink else "Grow"
        px, ok = QInputDialog.getInt(self.window, f"{verb} mask", f"{verb} by (pixels):", self.grow_px, 1, 500)
        if ok:
            self.grow_px = px
            self.grow(-px if shrink else px)
