"""The Run panel: method, Run / Cancel, a progress bar naming the stage, Apply / Discard."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.actions import Actions
from app.ui.run_controller import RunController

METHOD_CHOICES = (
    ("auto", "Auto (model if installed, else Telea)"),
    ("model", "Model (ONNX / Ascend)"),
    ("telea", "OpenCV Telea (fast)"),
    ("ns", "OpenCV Navier-Stokes"),
)


PENDING_TEXT = "Done – compare, then Apply or Discard"


class RunPanel(QWidget):
    def __init__(self, runner: RunController, actions: Actions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.method = QComboBox()
        for key, text in METHOD_CHOICES:
            self.method.addItem(text, key)
        self.method.currentIndexChanged.connect(lambda i: setattr(runner, "method", self.method.itemData(i)))
        # how grainy the fill is: the share of the surroundings' own detail it carries
        self.texture = QSlider(Qt.Orientation.Horizontal)
        self.texture.setRange(0, 200)  # as --texture and projects (0..2)
        self.texture.setSingleStep(5)
        self.texture.setPageStep(25)
        self.texture.setToolTip(
            "How much of the photo's own grain and fine detail goes into the fill.\n"
            "0 % = smooth; 100 % = at most as grainy as the surroundings (default); up to 200 %."
        )
        self.texture_label = QLabel()
        self.texture.valueChanged.connect(self._on_texture)
        self._show_settings()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("Idle")
        self.progress.setValue(0)
        self.info = QLabel("")
        self.info.setWordWrap(True)

        def button(name: str) -> QToolButton:
            b = QToolButton()
            b.setDefaultAction(actions[name])
            return b

        self.run_button, self.cancel_button = button("run"), button("cancel_run")
        self.apply_button, self.discard_button = button("apply_result"), button("discard_result")
        form = QFormLayout()
        form.addRow("Method", self.method)
        texture_row = QHBoxLayout()
        texture_row.addWidget(self.texture, 1)
        texture_row.addWidget(self.texture_label)
        form.addRow("Texture", texture_row)
        row1 = QHBoxLayout()
        row1.addWidget(self.run_button)
        row1.addWidget(self.cancel_button)
        row1.addStretch(1)
        row2 = QHBoxLayout()
        row2.addWidget(self.apply_button)
        row2.addWidget(self.discard_button)
        row2.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(row1)
        layout.addWidget(self.progress)
        layout.addWidget(self.info)
        layout.addLayout(row2)
        layout.addStretch(1)
        runner.progress.connect(self.show_progress)
        runner.running_changed.connect(self._on_running)
        runner.failed.connect(lambda msg: self._end("Failed"))
        runner.cancelled.connect(lambda: self._end("Cancelled"))
        runner.finished.connect(self._on_finished)
        # Apply, Discard, undo and the restore previews change the pending result too
        runner.session.result_changed.connect(self._on_result_changed)
        # an opened project brings its own method and texture
        runner.session.settings_changed.connect(self._show_settings)
        runner.session.document_replaced.connect(self._on_document_replaced)

    def _on_document_replaced(self) -> None:
        """Another photo or project: its settings, and its own result (a project may carry a
        pending one), not the notes of the document before."""
        self._show_settings()
        outcome = self.runner.session.document.result
        if outcome is None:
            self.info.setText("")
        else:
            self._show_outcome(outcome)
        self._on_result_changed()

    def _show_settings(self) -> None:
        """Method and texture as the document's settings say (without writing them back)."""
        index = self.method.findData(self.runner.method)
        value = round(self.runner.texture * 100)
        for widget in (self.method, self.texture):
            widget.blockSignals(True)
        if index < 0:  # a method the panel does not offer (from a project made elsewhere)
            self.method.addItem(self.runner.method, self.runner.method)
            index = self.method.count() - 1
        self.method.setCurrentIndex(index)
        self.texture.setValue(value)
        for widget in (self.method, self.texture):
            widget.blockSignals(False)
        self.texture_label.setText(f"{self.texture.value()} %")

    def _on_texture(self, value: int) -> None:
        if round(self.runner.texture * 100) != value:  # the slider's steps are whole percent
            self.runner.texture = value / 100.0
        self.texture_label.setText(f"{value} %")

    def show_progress(self, stage: str, fraction: float) -> None:
        if fraction < 0:  # unknown (cancelling): busy indicator
            self.progress.setFormat(f"{stage}…")
            return
        self.progress.setValue(round(min(max(fraction, 0.0), 1.0) * 1000))
        self.progress.setFormat(f"{stage} – {fraction * 100:.0f} %")

    def _on_running(self, running: bool) -> None:
        window = self.window()
        if running and isinstance(window, QMainWindow) and (self.method.hasFocus() or self.texture.hasFocus()):
            # disabled, a focused control hands its focus on down the chain, to the tool bar's size
            # box, which then swallowed the single-key shortcuts (E, [, ]): back to the photo instead
            window.centralWidget().setFocus(Qt.FocusReason.OtherFocusReason)
        self.method.setEnabled(not running)
        self.texture.setEnabled(not running)
        if running:
            self.info.setText("")

    def _end(self, text: str) -> None:
        if self.runner.session.document.result is not None:  # a result still waits (e.g. an opened project's)
            self._show_pending()
            return
        self.progress.setValue(0)
        self.progress.setFormat(text)

    def _on_result_changed(self) -> None:
        if not self.runner.running:
            self._end("Idle")  # or the pending result, when there is one

    def _show_pending(self) -> None:
        self.progress.setValue(1000)
        self.progress.setFormat(PENDING_TEXT)

    def _on_finished(self, outcome) -> None:
        self._show_pending()
        self._show_outcome(outcome)

    def _show_outcome(self, outcome) -> None:
        notes = "; ".join(n for n in outcome.notes if n != f"using {outcome.backend}")  # said just before
        self.info.setText(f"{outcome.method} on {outcome.backend}" + (f"\n{notes}" if notes else ""))
