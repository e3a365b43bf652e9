"""Synthetic mouse input for canvas tests."""

from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication


def send_mouse(widget, kind, pos, button=Qt.MouseButton.LeftButton, buttons=None, modifiers=Qt.KeyboardModifier.NoModifier):
    types = {"press": QEvent.Type.MouseButtonPress, "move": QEvent.Type.MouseMove, "release": QEvent.Type.MouseButtonRelease}
    if buttons is None:
        buttons = Qt.MouseButton.NoButton if kind == "release" else button
    local = QPointF(*pos)
    event = QMouseEvent(types[kind], local, widget.mapToGlobal(local), button if kind != "move" else Qt.MouseButton.NoButton,
                        buttons, modifiers)
    QApplication.sendEvent(widget, event)


def drag(widget, points, button=Qt.MouseButton.LeftButton, modifiers=Qt.KeyboardModifier.NoModifier):
    """Press at the first view point, move through the rest, release at the last."""
    send_mouse(widget, "press", points[0], button, modifiers=modifiers)
    for p in points[1:]:
        send_mouse(widget, "move", p, button, buttons=button, modifiers=modifiers)
    send_mouse(widget, "release", points[-1], button, modifiers=modifiers)
