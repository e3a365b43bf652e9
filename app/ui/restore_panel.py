"""Old-photo restoration panel: damage proposal (live, off the GUI thread) and repair steps.

The panel knows nothing of the document: it is handed the photo with `set_photo`, and it
emits what the user asks for —
  `proposal_ready(mask)`   a fresh "Detected damage" proposal (uint8 HxW, 255 = damage);
                           `proposal_gesture` says which user action it belongs to (all the
                           proposals of one slider drag share one, so they can be one undo step),
  `fill_requested()`       fill the damage layer with the engine,
  `repair_preview(steps, image, deep)` the photo (or the pending fill) with the chosen steps
                           applied, and its 16-bit pixels when the photo has a 16-bit source,
  `repair_requested(steps)` apply those steps (the editor makes it an undo command).
Nothing is detected until the user presses Detect; from then on, a change of any detect
control restarts a short debounce timer. Detection is split in two (app.restore.detect):
the expensive analysis of the photo, independent of the sensitivity, runs once per photo
(with progress; a new photo supersedes it), and every proposal after it is only the cheap
thresholding step. Analysis, proposals and repair each run in a `LatestOnly` runner; a
superseded job is told to stop and its result is dropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.restore.choices import RANGES, RestoreChoices
from app.restore.detect import (
    DEFAULT_DETECTOR,
    DEFAULT_SENSITIVITY,
    DamageAnalysis,
    analyse_damage,
    propose_damage,
)
from app.restore.pipeline import repair_deep
from app.restore.repair import RepairSteps

DEBOUNCE_MS = 250


def coverage(mask: np.ndarray) -> float:
    """Percent of the photo a mask (uint8, nonzero = marked) covers."""
    return 100.0 * cv2.countNonZero(mask) / mask.size


#: after the background analysis, before Detect: the proposal then comes at slider speed
READY_TEXT = "Photo analysed: Detect damage shows the proposal at once"
STOPPED_TEXT = "Analysis stopped; Detect damage starts it again."
#: the detector choices the panel offers (app.restore.detect.DETECTORS), as the user reads them
DETECTOR_LABELS = {
    "auto": "Automatic",
    "learned": "Learned (neural net)",
    "hybrid": "Hybrid (filters + net's dust)",
    "hand": "Hand-made filters",
}


class _Relay(QObject):
    done = Signal(int, object)
    failed = Signal(int, str)


class _ProgressRelay(QObject):
    """Carries a worker's progress to the GUI thread: (photo generation, fraction done)."""

    progress = Signal(int, float)


class _Job(QRunnable):
    def __init__(self, job_id: int, fn: Callable[[Callable[[], bool]], Any], is_stale: Callable[[int], bool],
                 relay: _Relay) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._id, self._fn, self._is_stale, self._relay = job_id, fn, is_stale, relay

    def run(self) -> None:
        if self._is_stale(self._id):
            return
        try:
            value = self._fn(lambda: self._is_stale(self._id))
        except Exception as exc:  # noqa: BLE001 - reported on the GUI thread
            self._relay.failed.emit(self._id, str(exc) or type(exc).__name__)
            return
        if value is not None and not self._is_stale(self._id):
            self._relay.done.emit(self._id, value)


class LatestOnly(QObject):
    """Runs `fn(cancel)` on a worker thread; only the newest submission's result arrives.

    `fn` gets a `cancel()` -> bool it may poll (True once a newer job was submitted) and
    returns a value or None (= gave up). `finished(value)` / `failed(message)` are emitted
    on the GUI thread, and only for the latest job."""

    finished = Signal(object)
    failed = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._ids = itertools.count(1)
        self._latest = 0
        self._relay = _Relay(self)
        self._relay.done.connect(self._on_done)
        self._relay.failed.connect(self._on_failed)
        self._busy = False

    def submit(self, fn: Callable[[Callable[[], bool]], Any]) -> int:
        job_id = next(self._ids)
        self._latest = job_id
        self._set_busy(True)
        self._pool.start(_Job(job_id, fn, self._is_stale, self._relay))
        return job_id

    def cancel(self) -> None:
        self._latest = next(self._ids)  # every running job is now stale
        self._set_busy(False)

    def _is_stale(self, job_id: int) -> bool:
        return job_id != self._latest

    def _on_done(self, job_id: int, value: object) -> None:
        if job_id == self._latest:
            self._set_busy(False)
            self.finished.emit(value)

    def _on_failed(self, job_id: int, message: str) -> None:
        if job_id == self._latest:
            self._set_busy(False)
            self.failed.emit(message)

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    def busy(self) -> bool:
        return self._busy

    def wait(self, msecs: int = -1) -> bool:
        """Block until queued jobs have run (tests, shutdown)."""
        return self._pool.waitForDone(msecs)


class RestorePanel(QWidget):
    proposal_ready = Signal(object)  # uint8 HxW mask
    fill_requested = Signal()
    # RepairSteps, RGB uint8 with those steps applied, its 16-bit pixels (a 16-bit scan) or None
    repair_preview = Signal(object, object, object)
    repair_requested = Signal(object)  # RepairSteps
    message = Signal(str)
    choices_changed = Signal()  # a detect control or a repair strength changed (`choices()`)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._photo: np.ndarray | None = None
        self._too_small = False  # the photo set is one pixel wide or high
        self._stopped = False  # the user stopped the analysis: none starts by itself until Detect
        self._generation = 0  # counts photos and detector changes: older analyses and progress are dropped
        self._analysis: DamageAnalysis | None = None  # of the current photo, once computed
        self._repair_source: np.ndarray | None = None
        self._deep_source: np.ndarray | None = None  # the photo's 16-bit source (read-only), if any
        self._repair_deep: np.ndarray | None = None  # the repair source's own 16-bit pixels, if any
        self.live = False  # after the first Detect, control changes update the proposal
        self._gesture = 0  # counts user actions on the detect controls; a slider drag is one
        self.proposal_gesture = 0  # the action the latest proposal answers
        # the controls the latest proposal was made with: (sensitivity, kinds)
        self.proposal_controls: tuple[float, tuple[str, ...]] = (DEFAULT_SENSITIVITY, ("scratches", "dust"))
        self.analyser = LatestOnly(self)  # the expensive, sensitivity-independent part
        self.detector = LatestOnly(self)  # proposals from the analysis (what the slider reruns)
        self.repairer = LatestOnly(self)
        self._progress = _ProgressRelay(self)
        self._progress.progress.connect(self._on_progress)
        self.analyser.finished.connect(self._on_analysis)
        self.analyser.failed.connect(lambda m: self.message.emit(f"Damage analysis failed: {m}"))
        self.detector.finished.connect(self._on_proposal)
        self.detector.failed.connect(lambda m: self.message.emit(f"Damage detection failed: {m}"))
        self.repairer.finished.connect(self._on_repaired)
        self.last_preview_unchanged = False  # the latest preview is the photo as it was (nothing to apply)
        self.repairer.failed.connect(lambda m: self.message.emit(f"Repair preview failed: {m}"))
        self._detect_timer = self._timer(self.propose_now)
        self._repair_timer = self._timer(self.preview_now)
        self._build()
        self.detector.busy_changed.connect(self._on_busy)
        self.analyser.busy_changed.connect(self._on_busy)
        self._on_busy(False)

    # ---- construction
    def _timer(self, slot) -> QTimer:
        t = QTimer(self)
        t.setSingleShot(True)
        t.setInterval(DEBOUNCE_MS)
        t.timeout.connect(slot)
        return t

    def _build(self) -> None:
        detect_box = QGroupBox("Detect damage")
        form = QVBoxLayout(detect_box)
        self.scratches_box = QCheckBox("Scratches, creases, tears")
        self.dust_box = QCheckBox("Dust and spots")
        for box in (self.scratches_box, self.dust_box):
            box.setChecked(True)
            box.toggled.connect(self.schedule_proposal)
            form.addWidget(box)
        detector_row = QHBoxLayout()
        detector_row.addWidget(QLabel("Detector"))
        self.detector_combo = QComboBox()
        for name, label in DETECTOR_LABELS.items():
            self.detector_combo.addItem(label, name)
        self.detector_combo.setCurrentIndex(self.detector_combo.findData(DEFAULT_DETECTOR))
        self.detector_combo.setToolTip("Automatic uses the learned net when its model loads and the hand-made "
                                       "filters otherwise; try the filters on architecture the net over-flags")
        self.detector_combo.currentIndexChanged.connect(self._on_detector_changed)
        detector_row.addWidget(self.detector_combo, 1)
        form.addLayout(detector_row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Sensitivity"))
        self.sensitivity_slider = QSlider(Qt.Orientation.Horizontal)
        self.sensitivity_slider.setRange(0, 100)
        self.sensitivity_slider.setValue(round(DEFAULT_SENSITIVITY * 100))
        self.sensitivity_slider.setToolTip("Higher flags fainter damage (and more false alarms)")
        self.sensitivity_slider.valueChanged.connect(self._on_sensitivity)
        self.sensitivity_slider.sliderPressed.connect(self._new_gesture)
        row.addWidget(self.sensitivity_slider, 1)
        self.sensitivity_label = QLabel()
        row.addWidget(self.sensitivity_label)
        form.addLayout(row)
        status_row = QHBoxLayout()
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)  # a fallback note can be long
        status_row.addWidget(self.status_label, 1)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop analysing the photo (Detect damage starts again)")
        self.stop_button.clicked.connect(self.stop_analysis)
        self.stop_button.setVisible(False)
        # its room is kept while hidden: the buttons below stayed put (they jumped under the pointer)
        policy = self.stop_button.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.stop_button.setSizePolicy(policy)
        status_row.addWidget(self.stop_button)
        form.addLayout(status_row)
        self.detect_button = QPushButton("Detect damage")
        self.detect_button.setToolTip("Propose a \"Detected damage\" layer; after that the controls update it live")
        self.detect_button.clicked.connect(self.detect)
        form.addWidget(self.detect_button)
        self.fill_button = QPushButton("Fill detected damage")
        self.fill_button.setToolTip("Run the engine on the \"Detected damage\" layer (edit it first if needed; "
                                    "pressed before Detect damage, it detects first)")
        self.fill_button.clicked.connect(self.fill_requested.emit)
        form.addWidget(self.fill_button)

        repair_box = QGroupBox("Repair")
        rf = QFormLayout(repair_box)
        self.denoise_box = QCheckBox("Denoise (non-local means)")
        self.denoise_strength = self._spin(*RANGES["denoise_strength"], 0.0, 0.5, "auto", "Strength in grey levels; auto = from the noise estimate")
        self.fade_box = QCheckBox("Fade repair (auto levels, CLAHE)")
        self.clahe_clip = self._spin(*RANGES["clip_limit"], 1.5, 0.25, None, "CLAHE clip limit")
        self.keep_tone_box = QCheckBox("Keep the tone")
        self.keep_tone_box.setToolTip("Auto levels stretch the lightness alone, so a sepia or toned print keeps "
                                      "its colour (off: each colour on its own, which also takes out a fading cast)")
        self.keep_tone_box.toggled.connect(self._on_keep_tone)
        self.balance_box = QCheckBox("Gray-world balance")
        self.balance_box.setToolTip("Remove a colour cast, judged by the colour of the photo's edges so a big coloured "
                                    "area is not taken for one (off, with Keep the tone, keeps a sepia or a wanted "
                                    "tone)")
        self.balance_strength = self._spin(*RANGES["balance_strength"], 1.0, 0.1, None, "How much of the cast is removed (1 = all of it)")
        self.sharpen_box = QCheckBox("Sharpen (unsharp mask)")
        self.sharpen_amount = self._spin(*RANGES["sharpen_amount"], 0.6, 0.1, None, "Unsharp mask amount")
        rf.addRow(self.denoise_box, self.denoise_strength)
        rf.addRow(self.fade_box, self.clahe_clip)
        rf.addRow("", self.keep_tone_box)
        rf.addRow(self.balance_box, self.balance_strength)
        rf.addRow(self.sharpen_box, self.sharpen_amount)
        for box in (self.denoise_box, self.fade_box, self.balance_box, self.sharpen_box):
            box.toggled.connect(self.schedule_preview)
        self.apply_button = QPushButton("Apply repairs")
        self.apply_button.clicked.connect(lambda: self.repair_requested.emit(self.repair_steps()))
        rf.addRow(self.apply_button)
        self.album_button = QPushButton("Restore a folder of scans…")
        self.album_button.setToolTip("Detect, fill and repair every scan of a folder with these choices, "
                                     "in the background")

        layout = QVBoxLayout(self)
        layout.addWidget(detect_box)
        layout.addWidget(repair_box)
        layout.addWidget(self.album_button)
        layout.addStretch(1)
        self._on_sensitivity(self.sensitivity_slider.value())
        for signal in (self.scratches_box.toggled, self.dust_box.toggled, self.keep_tone_box.toggled,
                       self.detector_combo.currentIndexChanged,
                       self.sensitivity_slider.valueChanged, self.denoise_strength.valueChanged,
                       self.clahe_clip.valueChanged, self.balance_strength.valueChanged,
                       self.sharpen_amount.valueChanged):
            signal.connect(lambda *_: self.choices_changed.emit())

    def _spin(self, lo, hi, value, step, special, tip) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(lo, hi)
        spin.setSingleStep(step)
        spin.setValue(value)
        spin.setToolTip(tip)
        if special:
            spin.setSpecialValueText(special)
        spin.valueChanged.connect(self.schedule_preview)
        return spin

    # ---- state
    def set_photo(self, rgb: np.ndarray | None, live: bool = False, new_document: bool = True,
                  deep: np.ndarray | None = None) -> None:
        """The photo to work on (a snapshot is taken; None clears) and its 16-bit source (the
        read-only ImageMeta.deep; repairs then work at 16 bits). `live` keeps updating
        the proposal (the same document's photo changed); a new document waits for Detect. A
        photo one pixel wide or high has nothing to detect (no neighbours to compare with). An
        analysis the user stopped stays stopped through edits of the same document."""
        self._too_small = rgb is not None and min(rgb.shape[:2]) < 2
        self._photo = None if rgb is None or self._too_small else np.array(rgb, copy=True)
        self._stopped = self._stopped and not new_document
        self._generation += 1
        self._analysis = None
        self._repair_source = self._repair_deep = None
        self._deep_source = None if self._photo is None else deep
        self.analyser.cancel()
        self.detector.cancel()
        # a ticked box promises a preview of *this* photo; the old one's is gone, and Apply must not
        # run steps the user has not seen (nor run them twice after an Apply)
        self.clear_repairs()
        self.live = live and self._photo is not None
        if self.live:
            self.schedule_proposal()
        else:
            self.prepare_analysis()
        self._on_busy(False)

    def showEvent(self, event) -> None:  # Qt override
        super().showEvent(event)
        QTimer.singleShot(0, self.prepare_analysis)  # once the region on screen is known

    def prepare_analysis(self) -> None:
        """While the panel is on screen with a photo, analyse it ahead of Detect (the costly
        part, in the background): the first proposal then comes at slider speed. Nothing is
        proposed until the user asks. A panel behind another dock tab counts as off screen."""
        on_screen = self.isVisible() and not self.visibleRegion().isEmpty()
        idle = self._analysis is None and not self.analyser.busy() and not self._stopped
        if on_screen and idle and self._photo is not None and self.kinds():
            self._analyse(self.kinds(), None)

    def _analyse(self, kinds: tuple[str, ...], reuse: DamageAnalysis | None) -> None:
        photo, generation, relay, detector = self._photo, self._generation, self._progress, self.detector_name()
        self.analyser.submit(lambda cancel: (generation, analyse_damage(
            photo, kinds, cancel=cancel, reuse=reuse, detector=detector,
            progress=lambda f: relay.progress.emit(generation, f))))

    def detector_name(self) -> str:
        return self.detector_combo.currentData()

    def _on_detector_changed(self) -> None:
        """Another detector: the analysis starts over (an older one in flight is dropped)."""
        self._generation += 1
        self._analysis = None
        self.analyser.cancel()
        self.detector.cancel()
        if self.live and self._photo is not None:
            self.schedule_proposal()
        else:
            self.prepare_analysis()
        self._on_busy(False)

    def clear_repairs(self) -> None:
        """Untick every repair box and drop a preview on its way: the preview they promised is
        gone (discarded, applied, another photo)."""
        self.repairer.cancel()
        self._repair_timer.stop()
        for box in (self.denoise_box, self.fade_box, self.balance_box, self.sharpen_box):
            box.blockSignals(True)
            box.setChecked(False)
            box.blockSignals(False)

    def set_repair_source(self, rgb: np.ndarray | None, deep: np.ndarray | None = None) -> None:
        """What the repair preview starts from (e.g. the pending fill result); None = the photo.
        A read-only view, not a copy: a result is never changed once made, and copying a 36 MP
        one held the GUI thread for 0.03-0.4 s as it arrived. `deep`: its 16-bit pixels, when
        it has its own (repairs of a 16-bit scan, reopened from a project); else the photo's
        16-bit source stands where the result kept the photo's pixels."""
        self._repair_deep = None if rgb is None else deep
        if rgb is None:
            self._repair_source = None
        else:
            self._repair_source = rgb.view()
            self._repair_source.flags.writeable = False

    def detect(self) -> None:
        """What Detect damage does: propose now (analysing first if needed), live from then on."""
        self.live = True
        self._stopped = False
        self._new_gesture()
        if self.analyser.busy():  # pressed while the photo is being analysed: nothing to see yet
            self.message.emit("The proposal comes as soon as the analysis of the photo is done.")
        self.propose_now()

    def stop_analysis(self) -> None:
        """Stop the analysis (and a detection) going on: a big scan takes minutes on a slow
        machine. The next Detect starts it again; nothing starts by itself before that."""
        if not (self.analyser.busy() or self.detector.busy()):
            return
        self._stopped = True
        self.live = False
        self._generation += 1  # its progress reports are dropped
        self.analyser.cancel()
        self.detector.cancel()
        self._on_busy(False)

    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k, box in (("scratches", self.scratches_box), ("dust", self.dust_box)) if box.isChecked())

    def sensitivity(self) -> float:
        return self.sensitivity_slider.value() / 100.0

    def show_repairs(self, steps: RepairSteps) -> None:
        """Set the repair boxes and values without previewing anew: the preview of `steps` is
        already on screen (an undo of Apply repairs brought it back)."""
        values = ((self.denoise_box, steps.denoise), (self.fade_box, steps.fade), (self.balance_box, steps.balance),
                  (self.sharpen_box, steps.sharpen), (self.denoise_strength, steps.denoise_strength or 0.0),
                  (self.clahe_clip, steps.clip_limit), (self.balance_strength, steps.balance_strength),
                  (self.sharpen_amount, steps.sharpen_amount), (self.keep_tone_box, steps.keep_tone))
        for widget, value in values:
            widget.blockSignals(True)
            if isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            else:
                widget.setValue(float(value))
            widget.blockSignals(False)
        self.choices_changed.emit()  # the strengths of the preview brought back: the document's too

    def repair_steps(self) -> RepairSteps:
        return self.choices().steps(denoise=self.denoise_box.isChecked(), fade=self.fade_box.isChecked(),
                                    balance=self.balance_box.isChecked(), sharpen=self.sharpen_box.isChecked())

    def choices(self) -> RestoreChoices:
        """What the controls hold, as a project keeps it."""
        strength = self.denoise_strength.value()
        return RestoreChoices(kinds=self.kinds(), detector=self.detector_name(), sensitivity=self.sensitivity(),
                              denoise_strength=None if strength <= 0 else strength,
                              clip_limit=self.clahe_clip.value(), balance_strength=self.balance_strength.value(),
                              sharpen_amount=self.sharpen_amount.value(), keep_tone=self.keep_tone_box.isChecked())

    def show_choices(self, choices: RestoreChoices) -> None:
        """Set the controls from a document's choices (a project opened) without detecting or
        previewing: a changed detector or set of kinds drops the analysis made with the old ones."""
        before = self.choices()
        values = ((self.scratches_box, "scratches" in choices.kinds), (self.dust_box, "dust" in choices.kinds),
                  (self.sensitivity_slider, round(choices.sensitivity * 100)),
                  (self.denoise_strength, choices.denoise_strength or 0.0), (self.clahe_clip, choices.clip_limit),
                  (self.balance_strength, choices.balance_strength), (self.sharpen_amount, choices.sharpen_amount),
                  (self.keep_tone_box, choices.keep_tone))
        for widget, value in values:
            widget.blockSignals(True)
            if isinstance(widget, QCheckBox):
                widget.setChecked(value)
            else:
                widget.setValue(value)
            widget.blockSignals(False)
        self.detector_combo.blockSignals(True)
        self.detector_combo.setCurrentIndex(max(self.detector_combo.findData(choices.detector), 0))
        self.detector_combo.blockSignals(False)
        self.sensitivity_label.setText(f"{self.sensitivity_slider.value() / 100:.2f}")
        if (before.detector, before.kinds) != (self.detector_name(), self.kinds()):
            self._generation += 1
            self._analysis = None
            self.analyser.cancel()
            self.detector.cancel()
            self._on_busy(False)

    # ---- detection
    def _on_sensitivity(self, value: int) -> None:
        self.sensitivity_label.setText(f"{value / 100:.2f}")
        self.schedule_proposal()

    def show_controls(self, sensitivity: float, kinds: tuple[str, ...]) -> None:
        """Set the slider and the kind boxes without proposing anew: the layer already holds
        the proposal made with them (after an undo or redo brought an earlier proposal back)."""
        if self.sensitivity_slider.isSliderDown():
            return
        controls = (self.sensitivity_slider, self.scratches_box, self.dust_box)
        for widget in controls:
            widget.blockSignals(True)
        self.sensitivity_slider.setValue(round(sensitivity * 100))
        self.scratches_box.setChecked("scratches" in kinds)
        self.dust_box.setChecked("dust" in kinds)
        for widget in controls:
            widget.blockSignals(False)
        self.sensitivity_label.setText(f"{self.sensitivity_slider.value() / 100:.2f}")
        self.choices_changed.emit()

    def _new_gesture(self) -> None:
        self._gesture += 1

    def schedule_proposal(self) -> None:
        if not self.sensitivity_slider.isSliderDown():  # moves within one drag are one action
            self._new_gesture()
        if self._photo is not None and self.live:
            self._detect_timer.start()

    def propose_now(self) -> None:
        """Start a detection with the current controls (any older one is dropped). Without an
        analysis of the photo for the chosen kinds, that analysis runs first (once) and the
        proposal follows it with the controls of that moment."""
        self._detect_timer.stop()
        if self._photo is None:
            return
        # the runner delivers only the latest job's result, so the latest gesture is the one answered
        self.proposal_gesture = self._gesture
        kinds, sens, analysis = self.kinds(), self.sensitivity(), self._analysis
        self.proposal_controls = (sens, kinds)
        if not kinds:
            shape = self._photo.shape[:2]
            self.detector.submit(lambda cancel: np.zeros(shape, np.uint8))
            return
        if analysis is not None and set(kinds) <= set(analysis.kinds):
            self.detector.submit(lambda cancel: propose_damage(analysis, kinds, sens, cancel=cancel))
            return
        if self.analyser.busy():
            return  # the running analysis proposes with the then current controls when done
        self.detector.cancel()  # an older proposal is out of date
        self._analyse(tuple(dict.fromkeys(kinds + (analysis.kinds if analysis is not None else ()))), analysis)

    def analysis(self) -> DamageAnalysis | None:
        """The current photo's analysis (None until the first Detect has analysed it)."""
        return self._analysis

    def _on_analysis(self, result: tuple[int, DamageAnalysis | None]) -> None:
        generation, analysis = result
        if generation != self._generation or analysis is None:
            return
        self._analysis = analysis
        if self.live:  # Detect was pressed: propose with the controls as they are now
            self.propose_now()
        else:
            self.status_label.setText(READY_TEXT)

    def _on_progress(self, generation: int, fraction: float) -> None:
        if generation == self._generation and self.analyser.busy():
            self.status_label.setText(f"Analysing the photo… {100 * fraction:.0f} %")

    def _on_proposal(self, mask: np.ndarray) -> None:
        self.show_layer_share(coverage(mask))
        self.proposal_ready.emit(mask)

    def show_layer_share(self, share: float | None) -> None:
        """Say how much of the photo the "Detected damage" layer covers (None: there is no such
        layer): after a proposal, and after an undo or a brush trim changed the layer. A running
        analysis keeps its progress line."""
        if self.analyser.busy():
            return
        if share is None:
            self.status_label.setText(READY_TEXT if self._analysis is not None else "")
            return
        text = f"Detected damage: {share:.2f} % of the photo"
        if self._analysis is not None and self._analysis.note:  # e.g. no learned model: say what stood in
            text += f"\n({self._analysis.note})"
        self.status_label.setText(text)

    def _on_busy(self, _busy: bool = False) -> None:
        if self.analyser.busy():
            self.status_label.setText("Analysing the photo…")
        elif self.detector.busy():
            self.status_label.setText("Detecting…")
        elif self._photo is None:
            self.status_label.setText("This photo is too small to detect damage in" if self._too_small
                                      else "Open a photo to detect damage")
        elif self._stopped:
            self.status_label.setText(STOPPED_TEXT)
        elif self._analysis is None and not self.live:  # a new photo or detector, nothing started yet
            self.status_label.setText("")
        for button in (self.detect_button, self.fill_button, self.apply_button):
            button.setEnabled(self._photo is not None)
        self.stop_button.setVisible(self.analyser.busy() or self.detector.busy())

    # ---- repair preview
    def _on_keep_tone(self) -> None:
        if self.fade_box.isChecked():  # else the box changes no preview on screen
            self.schedule_preview()

    def schedule_preview(self) -> None:
        if self._photo is not None:
            self._repair_timer.start()

    def preview_pending(self) -> bool:
        """A preview is scheduled or computing: the one shown is not of the boxes as they are."""
        return self._repair_timer.isActive() or self.repairer.busy()

    def preview_now(self, source: np.ndarray | None = None) -> None:
        """Compute the repair preview of `source` (default: the photo) off the GUI thread."""
        self._repair_timer.stop()
        image = source if source is not None else self._repair_source
        image = self._photo if image is None else image
        if image is None:
            return
        own = source is None and self._repair_source is not None and self._repair_deep is not None
        steps, deep = self.repair_steps(), self._repair_deep if own else self._deep_source

        def job(cancel):
            out, out_deep = repair_deep(image, deep, steps)
            return steps, out, out_deep, np.array_equal(out, image)  # compared here, off the GUI thread
        self.repairer.submit(job)

    def _on_repaired(self, result: tuple[RepairSteps, np.ndarray, np.ndarray | None, bool]) -> None:
        steps, image, deep, unchanged = result
        self.last_preview_unchanged = unchanged and steps.any
        if self.last_preview_unchanged:
            why = (": auto denoise finds too little noise here (set a strength to denoise anyway)"
                   if steps.denoise and steps.denoise_strength is None else "")
            self.message.emit(f"The repairs ticked change nothing on this photo{why}.")
        self.repair_preview.emit(steps, image, deep)

    def shutdown(self) -> None:
        self._detect_timer.stop()
        self._repair_timer.stop()
        self.analyser.cancel()
        self.detector.cancel()
        self.repairer.cancel()
        self.analyser.wait(10000)  # a running analysis or detection stops at its next poll
        self.detector.wait(10000)
        self.repairer.wait(10000)
