"""User-facing messages that do not block: a window-modal box opened with open(), so the
event loop (and a running job) keeps going. The last text is kept on the parent's
`last_message` property, which tests read."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


def show_error(parent: QWidget, title: str, text: str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    parent.setProperty("last_message", f"{title}: {text}")
    box.open()
    return box
