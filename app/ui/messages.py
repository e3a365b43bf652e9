"""User-facing messages. Errors do not block: a window-modal box opened with open(), so the
event loop (and a running job) keeps going. The last text is kept on the parent's
`last_message` property, which tests read. `confirm_overwrite` is the one question that
waits for its answer: it belongs to the (already modal) save dialog that came just before."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


def show_error(parent: QWidget, title: str, text: str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    parent.setProperty("last_message", f"{title}: {text}")
    box.open()
    return box


def confirm_overwrite(parent: QWidget, typed: str, final: str) -> bool:
    """Whether writing `final` is what the user wants. The save dialog asked about replacing the
    name as typed; when the program then adds an extension ("p1" -> "p1.ora") the file really
    written was never asked about, and an existing one would be lost without a word."""
    if Path(final) == Path(typed) or not Path(final).exists():
        return True
    box = QMessageBox(QMessageBox.Icon.Warning, "Replace file?",
                      f"{Path(final).name} already exists in {Path(final).parent}. Do you want to replace it?",
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, parent)
    box.setObjectName("replace_box")
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    return box.exec() == QMessageBox.StandardButton.Yes


def ask_apply_stale(parent: QWidget, apply, run_again) -> QMessageBox:
    """Apply pressed after the fill layers changed since the run (painted, hidden, undone): the
    result fills the area of the run, not what the layers show now. Asked without blocking."""
    box = QMessageBox(QMessageBox.Icon.Question, "The layers changed after the run",
                      "This result fills the area the layers had when it ran; they have changed since "
                      "(painted, hidden or undone). Apply it as it is, or run again on the layers as they are now?",
                      QMessageBox.StandardButton.Cancel, parent)
    box.setObjectName("stale_box")
    as_made = box.addButton("Apply as It Is", QMessageBox.ButtonRole.AcceptRole)
    again = box.addButton("Run Again", QMessageBox.ButtonRole.ActionRole)
    box.setDefaultButton(again)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)

    def answered(_result: int) -> None:
        if box.clickedButton() is as_made:
            apply()
        elif box.clickedButton() is again:
            run_again()

    box.finished.connect(answered)
    box.open()
    return box
