"""Undo commands. Each holds only what it needs to go back and forth: a patch (bounding-box
diff) for raster edits, the layer object and its index for layer operations, old/new
values for property changes. They call the session's low-level mutators, which emit the
signals the views listen to."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from PySide6.QtGui import QUndoCommand

from app.canvas.patch import Patch

if TYPE_CHECKING:
    import numpy as np

    from app.canvas.document import InpaintOutcome, MaskLayer
    from app.canvas.session import EditSession

_MERGE_PROPS_ID = 1001
_MERGE_MASK_ID = 1002
_log = logging.getLogger(__name__)


def _reported(step):
    """An exception must not leave redo()/undo(): Qt calls them from C++, and PySide crashes the
    program reporting it there. The session hears of it instead and tells the user."""

    @functools.wraps(step)
    def guarded(self) -> None:
        try:
            step(self)
        except Exception as exc:  # noqa: BLE001 - any failure is reported, never raised into Qt
            _log.exception("%s of “%s” failed", step.__name__, self.text())
            self._session.command_failed.emit(f"“{self.text()}” could not be {'redone' if step.__name__ == 'redo' else 'undone'}: {exc}")

    return guarded


class MaskEditCommand(QUndoCommand):
    """A stroke or a one-shot tool on one layer. The edit is already on the canvas when the
    command is pushed, so the first redo() does nothing. Successive edits of one layer with the
    same `merge_key` (the live proposals of one slider drag) merge into one step."""

    def __init__(self, session: EditSession, uid: int, patch: Patch, text: str, merge_key: int | None = None) -> None:
        super().__init__(text)
        self._session, self._uid, self._patch = session, uid, patch
        self._merge_key = merge_key
        self._applied = True

    def id(self) -> int:
        return -1 if self._merge_key is None else _MERGE_MASK_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, MaskEditCommand) or (other._uid, other._merge_key) != (self._uid, self._merge_key):
            return False
        mask = self._session.document.layer_by_uid(self._uid).mask
        self._patch = Patch.combined(self._patch, other._patch, mask)
        self.setObsolete(not self._patch)  # the drag came back to where it started: no step
        return True

    @property
    def nbytes(self) -> int:
        return self._patch.nbytes

    @_reported
    def redo(self) -> None:
        if self._applied:
            return
        self._session.swap_mask_patch(self._uid, self._patch)
        self._applied = True

    @_reported
    def undo(self) -> None:
        self._session.swap_mask_patch(self._uid, self._patch)
        self._applied = False


class AddLayerCommand(QUndoCommand):
    def __init__(self, session: EditSession, layer: MaskLayer, index: int, text: str = "Add layer") -> None:
        super().__init__(text)
        self._session, self._layer, self._index = session, layer, index

    @_reported
    def redo(self) -> None:
        self._session.insert_layer(self._layer, self._index)

    @_reported
    def undo(self) -> None:
        self._session.remove_layer(self._layer.uid)


class DeleteLayerCommand(QUndoCommand):
    def __init__(self, session: EditSession, layer: MaskLayer, index: int) -> None:
        super().__init__(f"Delete layer “{layer.name}”")
        self._session, self._layer, self._index = session, layer, index

    @_reported
    def redo(self) -> None:
        self._session.remove_layer(self._layer.uid)

    @_reported
    def undo(self) -> None:
        self._session.insert_layer(self._layer, self._index)


class MoveLayerCommand(QUndoCommand):
    def __init__(self, session: EditSession, uid: int, old_index: int, new_index: int) -> None:
        super().__init__("Reorder layers")
        self._session, self._uid, self._old, self._new = session, uid, old_index, new_index

    @_reported
    def redo(self) -> None:
        self._session.place_layer(self._uid, self._new)

    @_reported
    def undo(self) -> None:
        self._session.place_layer(self._uid, self._old)


class LayerPropsCommand(QUndoCommand):
    """Rename, hide/show, lock, kind, colour, opacity. Consecutive opacity changes of one
    layer (a slider drag) merge into one step."""

    def __init__(self, session: EditSession, uid: int, old: dict, new: dict, text: str) -> None:
        super().__init__(text)
        self._session, self._uid, self._old, self._new = session, uid, old, new

    def id(self) -> int:
        return _MERGE_PROPS_ID if set(self._new) == {"opacity"} else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, LayerPropsCommand) or other._uid != self._uid or set(other._new) != set(self._new):
            return False
        self._new = dict(other._new)
        return True

    @_reported
    def redo(self) -> None:
        self._session.set_props(self._uid, self._new)

    @_reported
    def undo(self) -> None:
        self._session.set_props(self._uid, self._old)


class ApplyResultCommand(QUndoCommand):
    """The pending result becomes the working photo and the pixels the run filled are
    cleared from the fill layers, so the next removal starts clean. Undo brings back the
    photo, the masks and the pending result."""

    def __init__(
        self, session: EditSession, outcome: InpaintOutcome, photo_patch: Patch, mask_patches: dict[int, Patch]
    ) -> None:
        super().__init__("Apply result")
        self._session, self._outcome = session, outcome
        self._photo_patch, self._mask_patches = photo_patch, mask_patches

        self._deep_before: np.ndarray | None = None  # the photo's 16-bit source the result's replaced

    @_reported
    def redo(self) -> None:
        if self._outcome.deep is not None:  # first: the photo's listeners then read the new source
            self._deep_before = self._session.swap_deep_source(self._outcome.deep)
        self._session.swap_photo_patch(self._photo_patch)
        for uid, patch in self._mask_patches.items():
            self._session.swap_mask_patch(uid, patch)
        self._session.set_result(None)

    @_reported
    def undo(self) -> None:
        if self._outcome.deep is not None:
            self._session.swap_deep_source(self._deep_before)
        self._session.swap_photo_patch(self._photo_patch)
        for uid, patch in self._mask_patches.items():
            self._session.swap_mask_patch(uid, patch)
        self._session.set_result(self._outcome)
