"""The document: a photo, its ordered mask layers and the latest engine result.

Plain Python + numpy, no Qt: the canvas widget, the project file and the tests all
work on this model. Masks are uint8 HxW, 0 = not painted, 255 = painted at full strength;
soft brushes leave values between, and a pixel counts as painted above `PAINTED_ABOVE`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from app.engine.settings import InpaintSettings
from app.io.images import PAINTED_ABOVE, ImageMeta
from app.restore.choices import RestoreChoices

_layer_ids = itertools.count(1)

#: overlay colours handed to new layers in turn
LAYER_COLOURS = ((255, 48, 48), (48, 140, 255), (60, 200, 90), (255, 170, 0), (200, 70, 255), (0, 200, 200))
# new layers: protect layers blue, fill layers any other colour, so the two kinds do not look alike
PROTECT_COLOUR = LAYER_COLOURS[1]
FILL_COLOURS = tuple(c for c in LAYER_COLOURS if c != PROTECT_COLOUR)


class LayerKind(str, Enum):
    FILL = "fill"  # area the engine fills
    PROTECT = "protect"  # area the engine never copies from


@dataclass(eq=False)
class MaskLayer:
    name: str
    mask: np.ndarray  # uint8 HxW, 255 = painted
    kind: LayerKind = LayerKind.FILL
    visible: bool = True
    locked: bool = False
    color: tuple[int, int, int] = LAYER_COLOURS[0]
    opacity: float = 0.5
    uid: int = field(default_factory=lambda: next(_layer_ids))


@dataclass(eq=False)
class InpaintOutcome:
    """A result waiting to be applied or discarded."""

    image: np.ndarray  # RGB uint8, same size as the photo
    method: str  # which coarse method ran, e.g. "model: inpaint-studio-default"
    backend: str  # which backend ran, e.g. "cpu (onnxruntime)"
    mask: np.ndarray | None = None  # the fill mask the run used (uint8 HxW); Apply clears it from the layers
    notes: list[str] = field(default_factory=list)  # what the engine wants the user to know
    # True when every pixel outside `mask` is the photo's (an engine run, which writes only hole
    # pixels): Apply then compares only inside the mask's box, not a 50 MP photo (repairs: False)
    confined: bool = False
    layers: tuple[int, ...] = ()  # uids of the fill layers the run filled (Apply clears them, shown or not)
    # the run filled only `layers` (Fill detected damage), not every visible fill layer (Run), with
    # `settings` (None: the document's): Run Again repeats it so
    restricted: bool = False
    settings: InpaintSettings | None = None
    # the result's 16-bit pixels (repairs of a 16-bit scan, made at 16 bits), read-only: Apply
    # makes them the photo's 16-bit source (ImageMeta.deep), so exports keep 16 bits everywhere
    deep: np.ndarray | None = None


@dataclass(eq=False)
class Document:
    photo: np.ndarray  # RGB uint8 HxWx3
    layers: list[MaskLayer] = field(default_factory=list)
    result: InpaintOutcome | None = None
    meta: ImageMeta = field(default_factory=ImageMeta)
    settings: InpaintSettings = field(default_factory=InpaintSettings)
    source_path: str | None = None
    restore: RestoreChoices = field(default_factory=RestoreChoices)  # the Restore panel's choices

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the photo."""
        return self.photo.shape[1], self.photo.shape[0]

    def new_layer(self, name: str, kind: LayerKind = LayerKind.FILL, mask: np.ndarray | None = None) -> MaskLayer:
        """Make (but do not insert) a layer that fits this photo."""
        h, w = self.photo.shape[:2]
        if mask is None:
            mask = np.zeros((h, w), np.uint8)
        if kind == LayerKind.PROTECT:
            colour = PROTECT_COLOUR
        else:
            fills = sum(layer.kind == LayerKind.FILL for layer in self.layers)
            colour = FILL_COLOURS[fills % len(FILL_COLOURS)]
        return MaskLayer(name=name, mask=mask, kind=kind, color=colour)

    def layer_by_uid(self, uid: int) -> MaskLayer:
        for layer in self.layers:
            if layer.uid == uid:
                return layer
        raise KeyError(uid)

    def layer_index(self, uid: int) -> int:
        for index, layer in enumerate(self.layers):
            if layer.uid == uid:
                return index
        raise KeyError(uid)

    def combined_mask(self, kind: LayerKind, raw: bool = False, region: tuple[slice, slice] | None = None,
                      only: tuple[int, ...] | None = None) -> np.ndarray:
        """Union of the visible layers of one kind, 0/255 (what a run uses): the pixels painted
        above half strength, as in a mask file; a soft brush's faint rim is not a hole. `raw`:
        the union of the paint itself, 0..255; `region`: only within these (row, column) slices;
        `only`: only the layers of these uids."""
        region = region or (slice(None), slice(None))
        out = np.zeros_like(self.photo[region][:, :, 0])
        for layer in self.layers:
            if layer.visible and layer.kind == kind and (only is None or layer.uid in only):
                np.maximum(out, layer.mask[region], out=out)
        return out if raw else np.where(out > PAINTED_ABOVE, 255, 0).astype(np.uint8)
