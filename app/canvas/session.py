"""The editing session: one Document, its undo stack, the active layer, and the signals views
listen to. Widgets never mutate the document directly: they call the high-level methods
here (which push undo commands) and repaint on the signals.

Low-level mutators (insert_layer, remove_layer, place_layer, set_props, swap_mask_patch,
swap_photo_patch, set_result) are for the commands only: they change the model and emit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from app.canvas import commands, tools
from app.canvas.document import FILL_COLOURS, PROTECT_COLOUR, Document, InpaintOutcome, LayerKind, MaskLayer
from app.canvas.patch import Patch, Rect
from app.engine.settings import InpaintSettings
from app.restore.choices import RestoreChoices

_LAYER_PROPS = ("name", "visible", "locked", "kind", "color", "opacity")
MaskTool = Callable[[np.ndarray], "tuple[Rect | None, Patch | None]"]


class EditSession(QObject):
    document_replaced = Signal()  # a new document (open, project load): views rebuild everything
    layers_changed = Signal()  # list order, membership or a layer property changed
    layer_pixels_changed = Signal(int, object)  # uid, Rect of changed pixels (None = all)
    photo_changed = Signal(object)  # Rect of changed photo pixels (None = all)
    result_changed = Signal()  # a result arrived, was applied or discarded
    settings_changed = Signal()  # the document's settings changed: the engine's (method, texture) or the Restore panel's
    command_failed = Signal(str)  # an undo command's redo/undo raised (what failed, for the user)
    active_layer_changed = Signal(int)  # uid, 0 = none
    mask_edited = Signal(int)  # uid: the user's own edit (a stroke, a tool) was committed; not undo/redo or Apply

    def __init__(self, document: Document | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self._document = document or Document(photo=np.zeros((1, 1, 3), np.uint8))
        self._active_uid = self._document.layers[0].uid if self._document.layers else 0
        self.photo_generation = 0  # bumped whenever photo pixels change (stale run results are dropped)
        # the undo patch of a big pending result, worked out in the background as it arrives:
        # (result, photo generation it was computed against, future of the Patch)
        self._photo_patch_job: tuple[InpaintOutcome, int, Future] | None = None
        self._patch_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="apply-patch")

    # ---------------------------------------------------------------- access
    @property
    def document(self) -> Document:
        return self._document

    @property
    def active_uid(self) -> int:
        return self._active_uid

    def active_layer(self) -> MaskLayer | None:
        try:
            return self._document.layer_by_uid(self._active_uid)
        except KeyError:
            return None

    def set_active(self, uid: int) -> None:
        if uid != self._active_uid:
            self._active_uid = uid
            self.active_layer_changed.emit(uid)

    def set_document(self, document: Document) -> None:
        """Replace the document (a freshly opened photo or project); history starts over."""
        self.undo_stack.clear()
        self._document = document
        self.photo_generation += 1
        self._start_photo_patch(document.result)  # a project reopened with a pending result too
        self._active_uid = document.layers[0].uid if document.layers else 0
        self.document_replaced.emit()
        self.active_layer_changed.emit(self._active_uid)

    # ---------------------------------------------------------------- high level (undoable)
    def add_layer(
        self, name: str | None = None, kind: LayerKind = LayerKind.FILL, mask: np.ndarray | None = None,
        index: int | None = None,
    ) -> MaskLayer:
        doc = self._document
        name = name or self._free_name("Protect" if kind == LayerKind.PROTECT else "Mask")
        layer = doc.new_layer(name, kind, mask)
        index = len(doc.layers) if index is None else index
        self.undo_stack.push(commands.AddLayerCommand(self, layer, index, f"Add layer “{name}”"))
        self.set_active(layer.uid)
        return layer

    def delete_layer(self, uid: int) -> None:
        doc = self._document
        index = doc.layer_index(uid)
        self.undo_stack.push(commands.DeleteLayerCommand(self, doc.layers[index], index))

    def move_layer(self, uid: int, new_index: int) -> None:
        doc = self._document
        old = doc.layer_index(uid)
        new_index = max(0, min(new_index, len(doc.layers) - 1))
        if new_index != old:
            self.undo_stack.push(commands.MoveLayerCommand(self, uid, old, new_index))

    def set_layer_props(self, uid: int, **props) -> None:
        unknown = set(props) - set(_LAYER_PROPS)
        if unknown:
            raise TypeError(f"not a layer property: {', '.join(sorted(unknown))}")
        layer = self._document.layer_by_uid(uid)
        if "kind" in props:
            props["kind"] = LayerKind(props["kind"])
            # a layer in its kind's default colour takes the other kind's (protect blue, fill never)
            if "color" not in props and props["kind"] != layer.kind:
                if props["kind"] == LayerKind.PROTECT and tuple(layer.color) in FILL_COLOURS:
                    props["color"] = PROTECT_COLOUR
                elif props["kind"] == LayerKind.FILL and tuple(layer.color) == PROTECT_COLOUR:
                    props["color"] = FILL_COLOURS[0]
        if "color" in props:
            props["color"] = tuple(int(c) for c in props["color"])
        old = {k: getattr(layer, k) for k in props}
        if old == props:
            return
        text = _props_text(layer.name, props)
        self.undo_stack.push(commands.LayerPropsCommand(self, uid, old, dict(props), text))

    def commit_mask_edit(self, uid: int, patch: Patch | None, text: str, merge_key: int | None = None,
                         by_hand: bool = True) -> None:
        """Record an edit already made to a layer's mask (a brush stroke) as one undo step;
        it joins the step before when that was an edit of this layer with the same merge_key."""
        if patch:
            self.undo_stack.push(commands.MaskEditCommand(self, uid, patch, text, merge_key))
            if by_hand:
                self.mask_edited.emit(uid)

    def notify_mask_painted(self, uid: int, rect: Rect | None) -> None:
        """A live stroke changed pixels (its undo step comes at release via commit_mask_edit)."""
        if rect is not None:
            self.layer_pixels_changed.emit(uid, rect)

    def edit_mask(self, uid: int, tool: MaskTool, text: str, merge_key: int | None = None,
                  by_hand: bool = True) -> bool:
        """Run a one-shot tool (rect, lasso, grow, invert, clear...) on a layer; undoable.
        Returns False when nothing changed. `by_hand` False: the program's edit (a proposal)."""
        layer = self._document.layer_by_uid(uid)
        rect, patch = tool(layer.mask)
        if not patch:
            return False
        self.layer_pixels_changed.emit(uid, rect)
        self.commit_mask_edit(uid, patch, text, merge_key, by_hand)
        return True

    def replace_layer_mask(self, uid: int, new_mask: np.ndarray, text: str, merge_key: int | None = None) -> bool:
        """The program replaces a layer's mask (a detection proposal): undoable, not a hand edit."""
        from app.canvas.tools import replace_mask

        return self.edit_mask(uid, lambda mask: replace_mask(mask, new_mask), text, merge_key, by_hand=False)

    def set_result(self, outcome: InpaintOutcome | None) -> None:
        """A run's result arrives (or is discarded). Not an undo step: Apply is. The undo patch
        of a big one is worked out now, in the background, so that Apply is quick."""
        self._document.result = outcome
        self._start_photo_patch(outcome)
        self.result_changed.emit()

    def _start_photo_patch(self, outcome: InpaintOutcome | None) -> None:
        """Work out the undo patch of a big pending result in the background; the one of the result
        before is dropped (cancelled if it has not started: results in a row never queue up)."""
        if self._photo_patch_job is not None:
            self._photo_patch_job[2].cancel()
            self._photo_patch_job = None
        big = outcome is not None and outcome.image.shape[0] * outcome.image.shape[1] > PATCH_IN_BACKGROUND_PIXELS
        if big and outcome.image.shape == self._document.photo.shape:
            photo = self._document.photo
            self._photo_patch_job = (outcome, self.photo_generation,
                                     self._patch_worker.submit(_photo_patch, outcome, photo))

    def shutdown(self) -> None:
        """The window closes: a patch still queued is not worked out."""
        self._start_photo_patch(None)
        self._patch_worker.shutdown(wait=False, cancel_futures=True)

    def discard_result(self) -> None:
        self.set_result(None)

    def set_settings(self, settings: InpaintSettings) -> None:
        """The engine settings the next run uses; a project keeps them. Not an undo step (as
        the Run panel's choices in other editors), but the project counts it as a change."""
        if settings != self._document.settings:
            self._document.settings = settings
            self.settings_changed.emit()

    def set_restore_choices(self, choices: RestoreChoices) -> None:
        """The Restore panel's choices (detector, sensitivity, repair strengths); a project keeps
        them. Not an undo step, as the engine settings."""
        if choices != self._document.restore:
            self._document.restore = choices
            self.settings_changed.emit()

    def result_is_stale(self) -> bool:
        """Whether the fill layers changed since the pending engine result was made (painted,
        shown, hidden, undone, deleted): Apply would fill the area of the run, not what is shown.
        A run of chosen layers (Fill detected damage) is stale only when those changed: the
        others are not its business."""
        outcome = self._document.result
        if outcome is None or outcome.mask is None:
            return False
        only = outcome.layers if outcome.restricted else None
        return not np.array_equal(self._document.combined_mask(LayerKind.FILL, only=only), outcome.mask)

    def apply_result(self) -> bool:
        """The pending result becomes the photo (one undo step, which brings the result back);
        the unlocked visible fill layers are cleared where the run filled, with the faint rims
        of the strokes it filled (`tools.clear_filled`)."""
        doc = self._document
        outcome = doc.result
        if outcome is None:
            return False
        if outcome.image.shape != doc.photo.shape:
            raise ValueError("the result does not match the photo's size")
        job, self._photo_patch_job = self._photo_patch_job, None
        photo_patch = None
        if job is not None and job[0] is outcome and job[1] == self.photo_generation:
            try:
                photo_patch = job[2].result()  # worked out as the result arrived (or finishing now)
            except Exception:  # noqa: BLE001 - worked out again below, where a real error is raised
                photo_patch = None
        elif job is not None:
            job[2].cancel()
        if photo_patch is None:
            photo_patch = _photo_patch(outcome, doc.photo)
        box = Rect.of_mask(outcome.mask) if outcome.mask is not None else None
        mask_patches: dict[int, Patch] = {}
        if box is not None:
            h, w = outcome.mask.shape
            reach = tools.RIM_REACH  # the faint rims cleared with a fill lie within this of it
            region = Rect.from_corners(box.x - reach, box.y - reach, box.x1 + reach, box.y1 + reach).clipped(w, h)
            ran = outcome.mask[region.slices] > 0
            for layer in doc.layers:
                # the layers the run filled, even if hidden since (else the first run's area stays
                # masked and the next run fills it again); a locked layer keeps its pixels, as it
                # does against every other edit
                ran_on = layer.uid in outcome.layers if outcome.layers else layer.visible
                if layer.kind == LayerKind.FILL and ran_on and not layer.locked:
                    current = layer.mask[region.slices]
                    patch = Patch.from_diff(tools.clear_filled(current, ran), current, region.x, region.y)
                    if patch:
                        mask_patches[layer.uid] = patch
        self.undo_stack.push(commands.ApplyResultCommand(self, outcome, photo_patch, mask_patches))
        return True

    # ---------------------------------------------------------------- low level (commands only)
    def insert_layer(self, layer: MaskLayer, index: int) -> None:
        self._document.layers.insert(index, layer)
        self.layers_changed.emit()
        self.layer_pixels_changed.emit(layer.uid, None)
        if not any(other.uid == self._active_uid for other in self._document.layers):
            self.set_active(layer.uid)  # the only layer again (undo of a delete): paint on it

    def remove_layer(self, uid: int) -> None:
        doc = self._document
        index = doc.layer_index(uid)
        doc.layers.pop(index)
        if self._active_uid == uid:
            fallback = doc.layers[min(index, len(doc.layers) - 1)].uid if doc.layers else 0
            self.set_active(fallback)
        self.layers_changed.emit()
        self.layer_pixels_changed.emit(uid, None)

    def place_layer(self, uid: int, index: int) -> None:
        doc = self._document
        layer = doc.layers.pop(doc.layer_index(uid))
        doc.layers.insert(index, layer)
        self.layers_changed.emit()
        self.layer_pixels_changed.emit(uid, None)

    def set_props(self, uid: int, props: dict) -> None:
        layer = self._document.layer_by_uid(uid)
        for key, value in props.items():
            setattr(layer, key, value)
        self.layers_changed.emit()
        self.layer_pixels_changed.emit(uid, None)

    def swap_mask_patch(self, uid: int, patch: Patch) -> None:
        layer = self._document.layer_by_uid(uid)
        rect = patch.swap(layer.mask)
        self.layer_pixels_changed.emit(uid, rect)

    def swap_deep_source(self, deep: np.ndarray | None) -> np.ndarray | None:
        """Make `deep` the photo's 16-bit source (ImageMeta.deep, replaced, never edited: a
        project being saved may hold the old one); returns the one it replaces."""
        before = self._document.meta.deep
        self._document.meta = dataclasses.replace(self._document.meta, deep=deep)
        return before

    def swap_photo_patch(self, patch: Patch) -> None:
        rect = patch.swap(self._document.photo)
        self.photo_generation += 1
        self.photo_changed.emit(rect)

    # ---------------------------------------------------------------- helpers
    def _free_name(self, stem: str) -> str:
        names = {layer.name for layer in self._document.layers}
        n = 1
        while f"{stem} {n}" in names:
            n += 1
        return f"{stem} {n}"


#: a result on a photo larger than this has its undo patch worked out in the background as it
#: arrives (0.2-0.5 s on a 36 MP photo, which Apply would spend on the GUI thread)
PATCH_IN_BACKGROUND_PIXELS = 4_000_000


def _photo_patch(outcome: InpaintOutcome, photo) -> Patch:
    """The patch that makes `photo` the result (it holds the result's values). What changed lies
    in the run mask's box (an engine result, which writes only hole pixels) or anywhere (a repair)."""
    if outcome.confined and outcome.mask is not None:
        box = Rect.of_mask(outcome.mask)
        if box is None:
            return Patch()
        return Patch.from_diff(outcome.image[box.slices], photo[box.slices], box.x, box.y)
    return Patch.from_diff(outcome.image, photo)


def _props_text(name: str, props: dict) -> str:
    if set(props) == {"name"}:
        return f"Rename layer “{name}”"
    if set(props) == {"visible"}:
        return f"{'Show' if props['visible'] else 'Hide'} layer “{name}”"
    if set(props) == {"locked"}:
        return f"{'Lock' if props['locked'] else 'Unlock'} layer “{name}”"
    return f"Change layer “{name}”"

