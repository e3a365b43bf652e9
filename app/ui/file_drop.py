"""Drag-and-drop of a photo file onto the window opens it."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject


class FileDropFilter(QObject):
    """Event filter: accept drags carrying a local file, call `open_path` with the first on drop."""

    def __init__(self, open_path: Callable[[str], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._open = open_path

    @staticmethod
    def _first_file(event) -> str | None:
        mime = event.mimeData()
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile():
                return url.toLocalFile()
        return None

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if self._first_file(event):
                event.acceptProposedAction()
                return True
        elif kind == QEvent.Type.Drop:
            path = self._first_file(event)
            if path:
                event.acceptProposedAction()
                self._open(path)
                return True
        return False
