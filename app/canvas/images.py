"""QImages the canvas draws, made once and kept: no conversion per paint.

- `PhotoImages`: an RGB888 QImage over the photo array itself (no copy) plus, for zoomed-out
  views, area-averaged half/quarter/... levels made lazily and dropped when pixels change.
- `MaskOverlays`: per layer an Indexed8 QImage over the layer's mask array itself, whose
  colour table maps mask value v to the layer colour with alpha v. Painting a mask changes
  the overlay with zero work; the widget only repaints the dirty rectangle.

The arrays must stay alive and keep their shape while their QImage exists: both caches key
on the array object and rebuild if a layer or photo array is replaced.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtGui import QImage, qRgba

from app.canvas.document import MaskLayer


def wrap_rgb(rgb: np.ndarray) -> QImage:
    """QImage sharing an RGB uint8 HxWx3 C-contiguous array's memory."""
    if not rgb.flags.c_contiguous:
        raise ValueError("the photo array must be C-contiguous")
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)


class PhotoImages:
    """A photo (or result) as QImages at full size and at power-of-two reductions."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb
        self.full = wrap_rgb(rgb)
        self._levels: dict[int, tuple[np.ndarray, QImage]] = {}

    @property
    def width(self) -> int:
        return self.rgb.shape[1]

    @property
    def height(self) -> int:
        return self.rgb.shape[0]

    def invalidate(self) -> None:
        self._levels.clear()

    def for_zoom(self, zoom: float) -> tuple[QImage, int]:
        """(image, factor): the smallest level still at least as detailed as the view.
        Image coordinates are divided by `factor` to address the returned image."""
        factor = 1
        while zoom * factor * 2 <= 1.0 and min(self.width, self.height) // (factor * 2) >= 64:
            factor *= 2
        if factor == 1:
            return self.full, 1
        if factor not in self._levels:
            w, h = max(self.width // factor, 1), max(self.height // factor, 1)
            small = np.ascontiguousarray(cv2.resize(self.rgb, (w, h), interpolation=cv2.INTER_AREA))
            self._levels[factor] = (small, wrap_rgb(small))
        return self._levels[factor][1], factor


def colour_table(color: tuple[int, int, int]) -> list[int]:
    r, g, b = color
    return [qRgba(r, g, b, v) for v in range(256)]


class MaskOverlays:
    """One Indexed8 QImage per layer, sharing the mask's memory."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[np.ndarray, tuple[int, int, int], QImage]] = {}

    def image(self, layer: MaskLayer) -> QImage:
        entry = self._cache.get(layer.uid)
        mask = layer.mask
        if entry is None or entry[0] is not mask:
            if not mask.flags.c_contiguous or mask.dtype != np.uint8 or mask.ndim != 2:
                raise ValueError(f"layer {layer.name!r}: masks must be C-contiguous uint8 HxW")
            h, w = mask.shape
            img = QImage(mask.data, w, h, w, QImage.Format.Format_Indexed8)
            img.setColorTable(colour_table(layer.color))
            entry = (mask, tuple(layer.color), img)
            self._cache[layer.uid] = entry
        elif entry[1] != tuple(layer.color):
            entry[2].setColorTable(colour_table(layer.color))
            entry = (mask, tuple(layer.color), entry[2])
            self._cache[layer.uid] = entry
        return entry[2]

    def prune(self, live_uids: set[int]) -> None:
        for uid in list(self._cache):
            if uid not in live_uids:
                del self._cache[uid]

    def clear(self) -> None:
        self._cache.clear()
