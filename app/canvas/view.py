"""The canvas view transform (zoom + pan) between widget and image coordinates. No Qt.

view = image * zoom + offset;  image = (view - offset) / zoom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.canvas.patch import Rect

MIN_ZOOM = 0.01
MAX_ZOOM = 32.0


@dataclass
class ViewTransform:
    zoom: float = 1.0
    ox: float = 0.0
    oy: float = 0.0

    def to_image(self, vx: float, vy: float) -> tuple[float, float]:
        return (vx - self.ox) / self.zoom, (vy - self.oy) / self.zoom

    def to_view(self, ix: float, iy: float) -> tuple[float, float]:
        return ix * self.zoom + self.ox, iy * self.zoom + self.oy

    def view_rect_of(self, rect: Rect, pad: int = 1) -> tuple[int, int, int, int]:
        """Widget pixels (x, y, w, h) covering an image rect, padded for smoothing."""
        x0, y0 = self.to_view(rect.x, rect.y)
        x1, y1 = self.to_view(rect.x1, rect.y1)
        x0, y0 = math.floor(x0) - pad, math.floor(y0) - pad
        x1, y1 = math.ceil(x1) + pad, math.ceil(y1) + pad
        return x0, y0, x1 - x0, y1 - y0

    def image_rect_of(self, vx: int, vy: int, vw: int, vh: int, width: int, height: int) -> Rect | None:
        """Image pixels visible in a widget rectangle (clipped to the image)."""
        x0, y0 = self.to_image(vx, vy)
        x1, y1 = self.to_image(vx + vw, vy + vh)
        return Rect.from_corners(math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)).clipped(width, height)

    def fit(self, view_w: int, view_h: int, img_w: int, img_h: int, margin: int = 8) -> None:
        """Whole image visible and centred."""
        avail_w, avail_h = max(view_w - 2 * margin, 1), max(view_h - 2 * margin, 1)
        self.zoom = _clamp(min(avail_w / max(img_w, 1), avail_h / max(img_h, 1)))
        self.ox = (view_w - img_w * self.zoom) / 2
        self.oy = (view_h - img_h * self.zoom) / 2

    def set_zoom(self, zoom: float, anchor_x: float, anchor_y: float) -> None:
        """Zoom keeping the image point under the anchor (widget coordinates) in place."""
        ix, iy = self.to_image(anchor_x, anchor_y)
        self.zoom = _clamp(zoom)
        self.ox = anchor_x - ix * self.zoom
        self.oy = anchor_y - iy * self.zoom

    def pan(self, dx: float, dy: float) -> None:
        self.ox += dx
        self.oy += dy


def _clamp(zoom: float) -> float:
    return min(max(zoom, MIN_ZOOM), MAX_ZOOM)
