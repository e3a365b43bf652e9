"""Status bar: photo size, zoom, cursor position, and the backend + method of the result on screen."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QWidget

from app.canvas.document import InpaintOutcome
from app.io.images import ImageMeta, reduced_from_16_bit


class StatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.size_label, self.zoom_label = QLabel("—"), QLabel("—")
        self.cursor_label, self.engine_label = QLabel(""), QLabel("engine: not run yet")
        self.cursor_label.setMinimumWidth(110)
        for label in (self.cursor_label, self.size_label, self.zoom_label, self.engine_label):
            self.addPermanentWidget(label)
        # photo decoding and export run in the background for many seconds on big photos (a
        # 48 MP PNG takes 20 s): a moving bar says work goes on after the message has gone
        self.busy_bar = self._hidden_bar("file_busy", 0, 100)  # range 0: a moving bar
        # an engine run's progress, seen whichever panel is in front (the Run panel's bar is
        # hidden behind the Restore tab while Fill detected damage runs)
        self.run_bar = self._hidden_bar("run_progress", 100, 160)

    def _hidden_bar(self, name: str, maximum: int, width: int) -> QProgressBar:
        bar = QProgressBar()
        bar.setObjectName(name)
        bar.setRange(0, maximum)
        bar.setMaximumWidth(width)
        self.addPermanentWidget(bar)
        bar.hide()
        return bar

    def show_run(self, stage: str, fraction: float) -> None:
        """`fraction` < 0: no measure of how far (Cancelling): the stage alone (a moving bar
        would hide the text)."""
        if fraction < 0:
            self.run_bar.setFormat(stage)
        else:
            self.run_bar.setFormat(f"{stage} %p %")
            self.run_bar.setValue(round(100 * min(fraction, 1.0)))
        self.run_bar.show()

    def end_run(self, running: bool) -> None:
        if not running:
            self.run_bar.hide()

    def show_busy(self, busy: bool) -> None:
        self.busy_bar.setVisible(busy)

    def show_size(self, width: int, height: int, meta: ImageMeta | None = None) -> None:
        """The photo's size; what was converted when it was read stays visible here (the
        status message on opening is gone after a few seconds)."""
        depth = ""
        if meta is not None and meta.deep is not None:
            depth = " · 16-bit"  # edited in 8; PNG/TIFF exports keep the unchanged pixels' 16 bits (tooltip)
        elif meta is not None and reduced_from_16_bit(meta):
            depth = " · 8 bits of 16"
        self.size_label.setText(f"{width} × {height} px ({width * height / 1e6:.1f} MP){depth}")
        self.size_label.setToolTip("\n".join(f"Read as: {note}" for note in (meta.notes if meta else ())))

    def show_zoom(self, zoom: float) -> None:
        self.zoom_label.setText(f"{zoom * 100:.0f} %")

    def show_cursor(self, point: object) -> None:
        self.cursor_label.setText(f"x {point[0]}, y {point[1]}" if point else "")

    def show_engine(self, outcome: InpaintOutcome | None) -> None:
        """The engine of the result on screen; None = no result yet for this document."""
        self.engine_label.setText("engine: not run yet" if outcome is None else f"{outcome.backend} · {outcome.method}")
