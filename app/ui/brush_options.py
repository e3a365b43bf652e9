"""Brush size and hardness controls for the tool bar, kept in step with the canvas."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QSpinBox, QWidget

from app.canvas.widget import MAX_BRUSH, MIN_BRUSH, CanvasWidget


class BrushOptions(QWidget):
    def __init__(self, canvas: CanvasWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.size = QSpinBox()
        self.size.setRange(int(MIN_BRUSH * 2), int(MAX_BRUSH * 2))
        self.size.setSuffix(" px")
        self.size.setToolTip("Brush diameter in photo pixels ([ and ] change it)")
        self.hardness = QSlider(Qt.Orientation.Horizontal)
        self.hardness.setRange(0, 100)
        self.hardness.setFixedWidth(90)
        self.hardness.setToolTip("Brush hardness: 100 = hard edge")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(QLabel("Size"))
        layout.addWidget(self.size)
        layout.addWidget(QLabel("Hardness"))
        layout.addWidget(self.hardness)
        self.size.valueChanged.connect(lambda v: canvas.set_brush(radius=v / 2))
        self.hardness.valueChanged.connect(lambda v: canvas.set_brush(hardness=v / 100))
        canvas.brush_changed.connect(self.sync)
        self.sync(canvas.brush_radius, canvas.hardness)

    def sync(self, radius: float, hardness: float) -> None:
        with QSignalBlocker(self.size), QSignalBlocker(self.hardness):
            self.size.setValue(round(radius * 2))
            self.hardness.setValue(round(hardness * 100))
