"""Glue between the restore panel and the editor: no pixels are computed here.

- A proposal becomes the mask layer "Detected damage" (added, or its mask replaced) through
  the session's undoable operations, so the user trims it with the brush and can undo.
- "Fill detected damage" runs the editor's normal run (RunController) on that layer alone, with
  the Run panel's settings (the model and its Texture: a scratch across grain or grass is filled
  with grain, as app.restore.pipeline.FILL_SETTINGS explains); the result shows in the
  before/after slider and Apply is the usual undoable step.
- Repair previews become the pending result (before/after slider); "Apply repairs" applies
  it (one undo step). A preview starts from the pending fill result when there is one, and
  keeps its mask so applying it also clears the filled damage from the layers.
- "Restore a folder of scans…" (File menu, and a button of the panel) opens the album dialog,
  which works a whole folder with the panel's choices (app/ui/album_dialog.py).
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from app.canvas.document import InpaintOutcome, LayerKind
from app.restore.pipeline import FILL_SETTINGS
from app.restore.repair import RepairSteps
from app.ui.actions import ActionSpec
from app.ui.album_dialog import AlbumDialog
from app.ui.messages import ask_apply_stale
from app.ui.restore_panel import RestorePanel, coverage

LAYER_NAME = "Detected damage"
REPAIR_TAG = "repair"
PROPOSALS_REMEMBERED = 32  # how many proposals' controls an undo can bring back


def _digest(mask: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(mask), digest_size=16).digest()


def describe(steps: RepairSteps) -> str:
    return ", ".join(steps.names) or "none"


class RestoreController(QObject):
    notice = Signal(str)

    def __init__(self, window, panel: RestorePanel | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent or window)
        # the steps and base of each repair preview still held (by the undo history)
        self._preview_of: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.window = window
        self.session = window.session
        self.runner = window.runner
        self.panel = panel or RestorePanel()
        self._base: InpaintOutcome | None = None  # the pending fill a repair preview builds on
        self._previewed: RepairSteps | None = None  # the steps of the repair preview now pending
        self._apply_waiting: RepairSteps | None = None  # Apply pressed before their preview was ready
        self._showing_base = False  # set while a preview without steps puts the base back
        # digest of each recent proposal -> the controls it was made with (sensitivity, kinds): an
        # undo or redo that brings a proposal back sets the slider and the kind boxes back with it
        self._proposal_controls: OrderedDict[bytes, tuple[float, tuple[str, ...]]] = OrderedDict()
        self._shown_proposal = b""  # digest of the proposal the controls were last set for
        self._layer_digest: bytes | None = None  # the layer's digest while known (just proposed)
        self._fill_gesture: int | None = None  # Fill pressed before any detection: the detection to fill
        self._hand_edited = False  # the damage layer was painted or erased by hand since the last proposal
        self._trim_replaced_in: int | None = None  # the proposal gesture that replaced a hand trim
        self.album: AlbumDialog | None = None  # "Restore a folder of scans", once opened
        p, s = self.panel, self.session
        p.proposal_ready.connect(self.on_proposal)
        p.fill_requested.connect(self.fill)
        p.repair_preview.connect(self.on_repair_preview)
        p.repair_requested.connect(self.apply_repairs)
        p.message.connect(self.notice.emit)
        p.choices_changed.connect(lambda: s.set_restore_choices(p.choices()))  # a project keeps them
        p.repairer.failed.connect(lambda _m: setattr(self, "_apply_waiting", None))
        s.document_replaced.connect(lambda: self._photo_changed(new_document=True))
        s.photo_changed.connect(lambda _rect: self._photo_changed(new_document=False))
        s.result_changed.connect(self._on_result_changed)
        # the panel's "Detected damage: x %" follows the layer through undo, redo and brush trims
        self._share_timer = QTimer(self, singleShot=True, interval=50)  # one count per burst of changes
        self._share_timer.timeout.connect(self._show_layer_share)
        s.layers_changed.connect(self._on_layers_changed)
        s.layer_pixels_changed.connect(lambda uid, _rect: self._on_layer_pixels(uid))
        s.mask_edited.connect(self._on_mask_edited)
        if hasattr(window, "closing"):
            window.closing.connect(self.shutdown)
        self._photo_changed(new_document=True)

    # ---------------------------------------------------------------- detection -> layer
    def damage_layer(self):
        for layer in self.session.document.layers:
            if layer.name == LAYER_NAME:
                return layer
        return None

    def on_proposal(self, mask: np.ndarray) -> None:
        doc = self.session.document
        if mask.shape != doc.photo.shape[:2]:
            return  # a proposal for a photo that is no longer open
        layer = self.damage_layer()
        gesture = self.panel.proposal_gesture
        if layer is None and not mask.any():  # an empty layer would be an undo step and an unsaved change
            self._fill_gesture = None
            self.notice.emit("No damage found at this sensitivity; move the slider right to find fainter damage.")
            return
        if layer is None:
            self.session.add_layer(LAYER_NAME, LayerKind.FILL, mask.copy())
        else:
            if layer.locked:
                self.notice.emit(f"Layer “{LAYER_NAME}” is locked; the new proposal was not applied.")
                return
            # the user painted or erased on the layer since the last proposal: this one replaces that
            if self._hand_edited and not np.array_equal(layer.mask, mask):
                self._trim_replaced_in = gesture
                # Ctrl+Z brings the trim back: with it the controls of the proposal it was trimmed from
                trimmed_from = self._proposal_controls.get(self._shown_proposal)
                if trimmed_from is not None:
                    self._proposal_controls[_digest(layer.mask)] = trimmed_from
            # one undo step per user action: the live proposals of a slider drag merge
            self.session.replace_layer_mask(layer.uid, mask, f"Update “{LAYER_NAME}”",
                                            merge_key=self.panel.proposal_gesture)
            self.session.set_active(layer.uid)
        self._hand_edited = False
        # set after the layer's change signals: the recount they scheduled needs no second digest
        self._shown_proposal = self._layer_digest = _digest(mask)
        self._proposal_controls[self._shown_proposal] = self.panel.proposal_controls
        while len(self._proposal_controls) > PROPOSALS_REMEMBERED:
            self._proposal_controls.popitem(last=False)
        if self._fill_gesture is not None:
            # Fill was pressed before any detection: fill what the detection it started found
            asked, self._fill_gesture = self._fill_gesture == gesture, None
            if asked and mask.any():
                self.fill()
                return
            if asked:
                self.notice.emit("Nothing detected to fill at this sensitivity.")
                return
        # said, not silent (and for the whole drag): a move after trimming undoes the trim
        if self._trim_replaced_in == gesture:
            self.notice.emit("The new proposal replaced your hand edits (Ctrl+Z restores them); trim after the "
                             "last slider move.")
            return
        self.notice.emit(f"Detected damage: {coverage(mask):.2f} % of the photo. "
                         "Trim the layer with the brush, then Fill.")

    def _on_layers_changed(self) -> None:
        self._layer_digest = None
        self._share_timer.start()

    def _on_mask_edited(self, uid: int) -> None:
        layer = self.damage_layer()
        if layer is not None and layer.uid == uid:
            self._hand_edited = True

    def _on_layer_pixels(self, uid: int) -> None:
        layer = self.damage_layer()
        if layer is not None and layer.uid == uid:  # strokes on other layers do not change the count
            self._layer_digest = None
            self._share_timer.start()

    def _show_layer_share(self) -> None:
        layer = self.damage_layer()
        self.panel.show_layer_share(None if layer is None else coverage(layer.mask))
        if layer is None:
            return
        # ~20 ms on 12 MP, once per burst of changes. The layer holding the proposal the controls
        # made last leaves them alone (they may have moved on: a newer proposal is coming)
        digest = self._layer_digest or _digest(layer.mask)
        controls = self._proposal_controls.get(digest)
        if controls is not None and digest != self._shown_proposal:
            self._shown_proposal = digest
            self.panel.show_controls(*controls)

    # ---------------------------------------------------------------- fill
    def fill(self) -> bool:
        """Run the editor's engine run on the damage layer alone (the other fill layers are the
        user's own removals, left for Run)."""
        layer = self.damage_layer()
        if layer is None:  # not detected yet: what the button promises is detection and fill
            self.notice.emit("Detecting damage first, then filling it…")
            self.panel.detect()
            # only the proposal of this very detection is filled: one that failed or was
            # superseded (a later Detect, a slider move) leaves nothing armed
            self._fill_gesture = self.panel.proposal_gesture
            return True
        if not layer.mask.any():
            self.notice.emit(f"Nothing to fill: the “{LAYER_NAME}” layer is empty "
                             "(detect again, or paint the damage).")
            return False
        if not layer.visible:
            self.notice.emit(f"The “{LAYER_NAME}” layer is hidden: show it to fill it.")
            return False
        if self.runner.running:
            self.notice.emit("A run is already going.")
            return False
        return self.runner.start(only=(layer.uid,))

    # ---------------------------------------------------------------- repair
    def _on_result_changed(self) -> None:
        result = self.session.document.result
        if result in self._preview_of:  # a preview back on screen (undo of Apply repairs): its boxes too
            self._previewed, self._base = self._preview_of[result]
            self._show_base_to_panel()
            self.panel.show_repairs(self._previewed)
        elif result is None:
            self._adopt_base(None)
            if not self._showing_base:  # discarded (not the last box unticked): the preview the boxes promised is gone
                self._apply_waiting = None
                self.panel.clear_repairs()
        else:
            self._adopt_base(result)
            steps = self.panel.repair_steps()
            if steps.any:  # boxes ticked before the fill: their steps on top of it
                self.panel.repairer.cancel()  # a preview of the photo before would land on this base
                self.panel.schedule_preview()
                # said: until it arrives the result on screen has no repairs, though their boxes are ticked
                self.notice.emit(f"Adding the repairs ticked ({describe(steps)}) to the result…")

    def _adopt_base(self, result: InpaintOutcome | None) -> None:
        """Repair previews build on `result` (a fill, or any pending result: one reopened from a
        project may hold repairs already), or on the photo."""
        self._base = result
        self._previewed = None
        self._show_base_to_panel()

    def _show_base_to_panel(self) -> None:
        base = self._base  # with its own 16-bit pixels, if it has them (a 16-bit repair reopened)
        self.panel.set_repair_source(None if base is None else base.image, None if base is None else base.deep)

    def on_repair_preview(self, steps: RepairSteps, image: np.ndarray, deep: np.ndarray | None = None) -> None:
        doc = self.session.document
        if image.shape != doc.photo.shape:
            return
        base = self._base
        if not steps.any:
            self._showing_base = True  # not a Discard: a box ticked meanwhile stays ticked
            try:
                self.session.set_result(base)  # back to the fill result, or to nothing
            finally:
                self._showing_base = False
            return
        method = f"{REPAIR_TAG}: {describe(steps)}"
        if base is not None:
            outcome = InpaintOutcome(image=image, method=f"{base.method} + {method}", backend=base.backend,
                                     mask=base.mask, notes=list(base.notes), layers=base.layers,
                                     restricted=base.restricted, settings=base.settings, deep=deep)
        else:
            outcome = InpaintOutcome(image=image, method=method, backend="cpu", deep=deep)
        self._preview_of[outcome] = (steps, base)
        self.session.set_result(outcome)
        self._previewed = steps
        waiting = self._apply_waiting
        if waiting is not None:
            if waiting != self.panel.repair_steps():  # the boxes changed after Apply was pressed
                self._apply_waiting = None
                self.notice.emit("The repair steps changed after Apply; press Apply repairs again.")
            elif steps == waiting and not self.panel.preview_pending():
                self._apply_waiting = None
                self.apply_repairs(steps)

    def apply_repairs(self, steps: RepairSteps) -> bool:
        """Apply the preview of `steps`. Pressed while that preview is still being computed (a box
        ticked a moment ago), it applies when the preview arrives, never the older one on screen."""
        if steps.any and (self.panel.preview_pending() or self._previewed != steps):
            self._apply_waiting = steps
            if not self.panel.preview_pending():
                self.panel.preview_now()
            self.notice.emit("Applying the repairs when their preview is ready…")
            return False
        result = self.session.document.result
        if result is None or f"{REPAIR_TAG}:" not in result.method:
            self.notice.emit("Turn on a repair step first; its preview shows in the before/after slider.")
            return False
        if self.panel.last_preview_unchanged and self._base is None:  # the preview is the photo itself
            self.notice.emit("Nothing applied: the repairs ticked change nothing on this photo.")
            return False
        if self.session.result_is_stale():  # the damage layer changed after the fill: as the toolbar's Apply
            ask_apply_stale(self.window, lambda: self._apply_now(steps), self.runner.start_again)
            return False
        return self._apply_now(steps)

    def _apply_now(self, steps: RepairSteps) -> bool:
        self.session.apply_result()
        self._base = self._previewed = None
        self.panel.set_repair_source(None)
        # a project reopened with a repaired result pending has no boxes ticked: "(none)" was said (QA)
        what = f" ({describe(steps)})" if steps.any else ""
        self.notice.emit(f"Applied the repairs{what}; Ctrl+Z takes them back.")
        return True

    # ---------------------------------------------------------------- document / shutdown
    def _photo_changed(self, new_document: bool) -> None:
        self._fill_gesture = None  # the detection it waited for is dropped with the photo
        self._hand_edited = False
        if new_document:
            self._proposal_controls.clear()
            self._shown_proposal = b""
            self._layer_digest = None
        # a changed photo (a result applied) waits for Detect again, like a new one: an automatic
        # re-detection would slip an extra undo step in after the Apply
        doc = self.session.document
        placeholder = doc.source_path is None and doc.photo.shape[:2] == (1, 1)  # the window before any photo
        if new_document:  # its own choices (a project's, or the last photo's carried over)
            self.panel.show_choices(doc.restore)
        self.panel.set_photo(None if placeholder else doc.photo, new_document=new_document, deep=doc.meta.deep)
        if new_document:  # a project reopened with its pending result (a fill, maybe repaired): built on
            self._adopt_base(self.session.document.result)

    def open_album(self) -> AlbumDialog:
        """The album dialog (one, kept with its folders and its last run; closing it stops a run),
        offering the open photo's folder."""
        source = self.session.document.source_path
        folder = str(Path(source).parent) if source else ""
        if self.album is None:
            # filled as Fill detected damage fills: with the Run panel's method and texture
            self.album = AlbumDialog(self.panel.choices, self.window, folder,
                                     settings=lambda: FILL_SETTINGS.with_choices_of(self.session.document.settings))
            # the panel's choices reach the document as settings too: one signal for both panels
            self.session.settings_changed.connect(self.album.refresh_choices)
        else:
            self.album.offer(folder)
        self.album.show()
        self.album.raise_()
        self.album.activateWindow()
        return self.album

    def shutdown(self) -> None:
        """The window closes for good (a close the user cancelled stops nothing): the analysis
        stops, and an album running stops after the scan being worked gives up (it writes nothing)."""
        self.panel.shutdown()
        if self.album is not None:
            self.album.shutdown()


def install_restore(window) -> RestoreController:
    """Dock the restore panel in the editor and wire it (the one call MainWindow makes)."""
    controller = RestoreController(window)
    dock = window.add_panel("Restore", controller.panel, tab_with="Run")  # a tab beside Run
    # brought to the front: start analysing the photo before Detect is pressed
    dock.visibilityChanged.connect(lambda shown: shown and QTimer.singleShot(0, controller.panel.prepare_analysis))
    view = getattr(window, "menus", {}).get("view")
    if view is not None:
        view.addAction(dock.toggleViewAction())
    if hasattr(window, "status"):
        controller.notice.connect(lambda text: window.status.showMessage(text, 6000))
    if hasattr(window, "add_action"):
        window.add_action(ActionSpec("restore_folder", "Restore a &Folder of Scans…", "file",
                                     tip="Detect, fill and repair every scan of a folder with the Restore "
                                         "panel's choices", separator_before=True), controller.open_album)
    controller.panel.album_button.clicked.connect(controller.open_album)
    return controller
