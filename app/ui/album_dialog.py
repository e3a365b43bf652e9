"""The "Restore a folder of scans" dialog: every scan of a folder detected, filled and repaired
with the Restore panel's choices, in the background (app.restore.album), with progress, a
Stop button and a line per scan. Modeless: the editor stays usable while an album runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.engine.settings import InpaintSettings
from app.io.folders import FolderError
from app.restore.album import (
    FAILED,
    MASKS_FOLDER,
    RESTORED,
    SKIPPED,
    UNCHANGED,
    AlbumPhoto,
    AlbumRun,
    restore_album,
    results_in_the_way,
)
from app.restore.choices import RestoreChoices
from app.restore.pipeline import FILL_SETTINGS
from app.ui.background import BackgroundTasks
from app.ui.restore_panel import DETECTOR_LABELS
from app.ui.run_panel import METHOD_CHOICES

RESULTS_SUBFOLDER = "restored"  # the results folder offered for a scans folder: inside it
MARKS = {RESTORED: "✓", UNCHANGED: "=", FAILED: "✗", SKIPPED: "–"}


class _AlbumRelay(QObject):
    """Carries the worker's reports to the GUI thread."""

    progress = Signal(float, str)
    photo = Signal(object)  # AlbumPhoto


def describe_choices(choices: RestoreChoices, settings: InpaintSettings) -> str:
    kinds = " and ".join(choices.kinds) or "nothing"
    method = dict(METHOD_CHOICES).get(settings.method, settings.method)
    return (f"Detect {kinds} with the {DETECTOR_LABELS.get(choices.detector, choices.detector)} detector "
            f"at sensitivity {choices.sensitivity:.2f} (as set in the Restore panel); fill with "
            f"{method} at Texture {settings.texture * 100:.0f} % (as set in the Run panel)"
            + ("; Fade repair keeps the tone (as set in the Restore panel)" if choices.keep_tone else ""))


class AlbumDialog(QDialog):
    finished_run = Signal(object)  # AlbumRun: the album ran (to its end or to Stop)
    start_failed = Signal(str)  # the album could not start (a folder, the model): why

    def __init__(self, choices: Callable[[], RestoreChoices], parent: QWidget | None = None,
                 start_folder: str = "", settings: Callable[[], InpaintSettings] = lambda: FILL_SETTINGS) -> None:
        """`choices()`: the Restore panel's choices; `settings()`: the fill's (the Run panel's method and
        texture, as Fill detected damage uses them). Read when the dialog shows and when a run starts."""
        super().__init__(parent)
        self.setWindowTitle("Restore a Folder of Scans")
        self._choices, self._settings = choices, settings
        self._cancel = threading.Event()
        self._tasks = BackgroundTasks(self)
        self._relay = _AlbumRelay(self)
        self._relay.progress.connect(self._on_progress)
        self._relay.photo.connect(self._on_photo)
        self._results: Path | None = None  # where the last album wrote
        self._question: QMessageBox | None = None  # "replace the files already there?", while open
        self._build(start_folder)
        self._set_running(False)

    # ---- construction
    def _build(self, start_folder: str) -> None:
        grid = QGridLayout()
        self.scans_edit = QLineEdit(start_folder)
        self.scans_edit.setPlaceholderText("the folder of scanned photos")
        self.scans_edit.textChanged.connect(self._offer_results_folder)
        self.results_edit = QLineEdit()
        self.results_edit.setPlaceholderText("where the restored copies go (made if missing)")
        self.results_edit.textEdited.connect(lambda _t: setattr(self, "_results_chosen", True))
        self._results_chosen = False
        for row, (label, edit) in enumerate((("Scans", self.scans_edit), ("Results", self.results_edit))):
            button = QPushButton("Browse…")
            button.clicked.connect(lambda _c=False, e=edit: self._browse(e))
            grid.addWidget(QLabel(label), row, 0)
            grid.addWidget(edit, row, 1)
            grid.addWidget(button, row, 2)
        self.choices_label = QLabel(describe_choices(self._choices(), self._settings()))
        self.choices_label.setWordWrap(True)
        self.denoise_box = QCheckBox("Denoise")
        self.fade_box = QCheckBox("Fade repair (auto levels, CLAHE)")
        self.balance_box = QCheckBox("Gray-world balance")
        self.sharpen_box = QCheckBox("Sharpen")
        self.masks_box = QCheckBox(f"Also save each proposal as a mask (in the results' “{MASKS_FOLDER}” folder)")
        self.masks_box.setToolTip("Trim a mask in any editor and give the folder back to "
                                  "`inpaint-studio restore SCANS --mask MASKS -o OUT`")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("Idle")
        self.progress.setTextVisible(True)
        self.log = QListWidget()
        self.log.setMinimumHeight(140)
        self.log.setWordWrap(True)  # a note (16 bits kept or not, a cut-off file) reads whole
        self.log.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.start_button = QPushButton("Restore")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.open_button = QPushButton("Open Results Folder")
        self.open_button.clicked.connect(self._open_results)
        self.open_button.setEnabled(False)
        buttons = QDialogButtonBox()
        for button in (self.start_button, self.stop_button, self.open_button):
            buttons.addButton(button, QDialogButtonBox.ButtonRole.ActionRole)
        close = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        close.clicked.connect(self.close)

        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.choices_label)
        repairs = QLabel("Repairs, with the Restore panel's strengths:")
        layout.addWidget(repairs)
        for box in (self.denoise_box, self.fade_box, self.balance_box, self.sharpen_box):
            layout.addWidget(box)
        layout.addWidget(self.masks_box)
        layout.addWidget(self.progress)
        layout.addWidget(self.log, 1)
        layout.addWidget(self.summary)
        layout.addWidget(buttons)
        self.resize(560, 520)
        self._offer_results_folder(start_folder)

    def _browse(self, edit: QLineEdit) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a Folder", edit.text() or self.scans_edit.text())
        if folder:
            edit.setText(folder)
            if edit is self.results_edit:
                self._results_chosen = True

    def _offer_results_folder(self, scans: str) -> None:
        """Until the user names one, the results go into a "restored" folder inside the scans'."""
        if not self._results_chosen:
            self.results_edit.setText(str(Path(scans) / RESULTS_SUBFOLDER) if scans.strip() else "")

    # ---- running
    def running(self) -> bool:
        return self._tasks.busy()

    def _set_running(self, running: bool) -> None:
        for widget in (self.scans_edit, self.results_edit, self.denoise_box, self.fade_box, self.balance_box,
                       self.sharpen_box, self.masks_box, self.start_button):
            widget.setEnabled(not running)
        self.stop_button.setEnabled(running)

    def folders(self) -> tuple[Path, Path] | None:
        """(scans, results) as typed: ~ expanded, a relative results folder taken inside the scans'
        folder (not the program's working folder); None, said in the summary, when not usable."""
        scans_text, results_text = self.scans_edit.text().strip(), self.results_edit.text().strip()
        if not scans_text or not results_text:
            self.summary.setText("Choose the folder of scans and a folder for the results.")
            return None
        try:
            scans, results = Path(scans_text).expanduser(), Path(results_text).expanduser()
        except RuntimeError as exc:  # ~someone who is no user here
            self.summary.setText(f"The album could not be restored: {exc}")
            return None
        if not scans.is_absolute():
            self.summary.setText("Give the scans folder's full path (or choose it with Browse…).")
            return None
        return scans, results if results.is_absolute() else scans / results

    def start(self) -> bool:
        """Check the folders and choices; ask before replacing files already in the results folder
        (a previous album's results, maybe retouched since, or photos of the same names); run."""
        if self.running() or self._question is not None:
            return False
        folders = self.folders()
        if folders is None:
            return False
        scans, results = folders
        choices, settings = self._choices(), self._settings()
        self.choices_label.setText(describe_choices(choices, settings))
        steps = choices.steps(denoise=self.denoise_box.isChecked(), fade=self.fade_box.isChecked(),
                              balance=self.balance_box.isChecked(), sharpen=self.sharpen_box.isChecked())
        if not choices.kinds and not steps.any:
            self.summary.setText("Nothing to do: tick a kind of damage in the Restore panel, or a repair here.")
            return False
        try:
            in_the_way = results_in_the_way(scans, results, self.masks_box.isChecked())
        except (FolderError, OSError) as exc:  # said now, with the folders as typed (one that cannot be read)
            self.summary.setText(f"The album could not be restored: {exc}")
            self.start_failed.emit(str(exc))
            return False
        if in_the_way:
            self._ask_replace(in_the_way, results,
                              lambda skip: self._launch(scans, results, choices, steps, settings, skip))
            return False
        self._launch(scans, results, choices, steps, settings, False)
        return True

    def _ask_replace(self, files: list[Path], results: Path, launch) -> None:
        """Replace the files already there, skip the scans whose results are there (an album stopped
        and started again goes on where it was), or cancel. `launch(skip)` runs the album."""
        # as found in the results folder: a mask "masks/a.png" is not the result "a.png"
        shown = [f.relative_to(results).as_posix() if f.is_relative_to(results) else f.name for f in files[:6]]
        names = ", ".join(shown) + (f" and {len(files) - 6} more" if len(files) > 6 else "")
        box = QMessageBox(QMessageBox.Icon.Question, "Replace files in the results folder?",
                          f"{len(files)} file(s) in the results folder would be replaced by this album's results: "
                          f"{names}. Skip those scans to keep their results (an album stopped before goes on "
                          "where it was).", QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("replace_box")
        replace = box.addButton("Replace Them", QMessageBox.ButtonRole.AcceptRole)
        skip = box.addButton("Skip Those Scans", QMessageBox.ButtonRole.ActionRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)

        def answered(_result: int) -> None:
            self._question = None
            if box.clickedButton() in (replace, skip) and self.isVisible():  # not for a dialog closed meanwhile
                launch(box.clickedButton() is skip)

        box.finished.connect(answered)
        self._question = box
        box.open()

    def _launch(self, scans: Path, results: Path, choices: RestoreChoices, steps, settings: InpaintSettings,
                skip_done: bool) -> None:
        if self.running():
            return
        save_masks, relay, cancel = self.masks_box.isChecked(), self._relay, self._cancel
        cancel.clear()
        self.log.clear()
        self.summary.setText("")
        self.open_button.setEnabled(False)
        self.progress.setValue(0)
        self.progress.setFormat("Starting…")
        self._set_running(True)
        self._results = results

        def work() -> AlbumRun:
            return restore_album(scans, results, choices, steps, save_masks=save_masks, skip_done=skip_done,
                                 settings=settings,
                                 progress=lambda f, text: relay.progress.emit(f, text), cancel=cancel.is_set,
                                 on_photo=relay.photo.emit)

        self._tasks.run(work, self._on_done, self._on_failed)

    def stop(self) -> None:
        """Stop after the scan being worked gives up (it writes nothing); the ones done stay."""
        if self.running():
            self._cancel.set()
            self.progress.setFormat("Stopping…")

    def _on_progress(self, fraction: float, text: str) -> None:
        if self.running() and not self._cancel.is_set():
            self.progress.setValue(round(1000 * fraction))
            self.progress.setFormat(f"%p %  {text}")

    def _on_photo(self, photo: AlbumPhoto) -> None:
        name = photo.photo.name
        # a read error names the file itself ("a.jpg is damaged or truncated…"): not twice
        said = photo.text if photo.text.startswith(name) else f"{name}: {photo.text}"
        line = f"{MARKS[photo.status]} {said}"
        self.log.addItem(line + "".join(f"\n    {note}" for note in photo.notes))
        self.log.scrollToBottom()

    def _on_done(self, run: AlbumRun) -> None:
        self._set_running(False)
        done = run.count(RESTORED) + run.count(UNCHANGED)
        failed = run.count(FAILED)
        head = (f"Stopped after {len(run.photos)} of {run.total} scans (the one being worked wrote nothing)"
                if run.cancelled
                else f"{run.count(RESTORED)} of {run.total} scans restored")
        parts = [head]
        if run.count(UNCHANGED):
            parts.append(f"{run.count(UNCHANGED)} had nothing to do (copied as they were)")
        if run.count(SKIPPED):
            parts.append(f"{run.count(SKIPPED)} skipped (their results were there already)")
        if failed:
            parts.append(f"{failed} failed (marked ✗ above)")
        said = [note for note in run.notes if "hand-made" in note or "fell back" in note]  # not "using cpu"
        where = f" Written to {self._results}." if done else ""
        self.summary.setText("; ".join(parts) + "." + where + "".join(f"\n{note}" for note in said))
        self.progress.setFormat("Stopped" if run.cancelled else "Done")
        if not run.cancelled:
            self.progress.setValue(1000)
        self.open_button.setEnabled(done + run.count(SKIPPED) > 0)
        self.finished_run.emit(run)

    def _on_failed(self, exc: Exception) -> None:
        self._set_running(False)
        self.progress.setFormat("Not started")
        self.progress.setValue(0)
        self.summary.setText(f"The album could not be restored: {exc}")
        self.start_failed.emit(str(exc))

    def _open_results(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._results)))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh_choices()

    def offer(self, scans_folder: str) -> None:
        """Brought back for another photo: its folder, unless an album is running."""
        if scans_folder and not self.running():
            self.scans_edit.setText(scans_folder)

    def refresh_choices(self) -> None:
        """The Restore panel's choices changed: say the new ones (a running album keeps its own)."""
        if not self.running():
            self.choices_label.setText(describe_choices(self._choices(), self._settings()))

    def closeEvent(self, event) -> None:
        self._close_question()
        self.stop()  # closing stops a run: the scan being worked gives up, the dialog goes at once
        super().closeEvent(event)

    def reject(self) -> None:
        """Esc closes as the Close button does (QDialog would only hide, the run going on unseen)."""
        self._close_question()
        self.stop()
        super().reject()

    def _close_question(self) -> None:
        """A question left open answers nothing once the dialog goes (no run starts unseen)."""
        if self._question is not None:
            question, self._question = self._question, None
            question.done(QMessageBox.StandardButton.Cancel)

    def shutdown(self, msecs: int = 30000) -> None:
        """Stop and wait for the worker (the editor closing)."""
        self.stop()
        self._tasks.wait(msecs)
