"""Press/move/release gestures over image coordinates. No Qt: the canvas widget maps mouse
positions to image coordinates and feeds them here; tests feed synthetic points directly.

Each gesture edits one mask. `move`/`press` return the image rect that needs repainting
(the painted pixels for the brush, the preview outline for rectangle and lasso);
`release` returns the undo patch (or None if nothing changed) and the final dirty rect.
"""

from __future__ import annotations

import math
from enum import Enum

import numpy as np

from app.canvas.patch import Patch, Rect
from app.canvas.tools import Point, StrokeRecorder, fill_ellipse, fill_polygon, fill_rect


class Tool(str, Enum):
    BRUSH = "brush"
    RECT = "rect"
    ELLIPSE = "ellipse"
    LASSO = "lasso"


class BrushGesture:
    def __init__(self, mask: np.ndarray, radius: float, hardness: float = 1.0, erase: bool = False) -> None:
        self.recorder = StrokeRecorder(mask)
        self.radius, self.hardness, self.erase = float(radius), float(hardness), erase
        self._last: Point | None = None

    def press(self, pt: Point) -> Rect | None:
        self._last = pt
        return self.recorder.segment(pt, pt, self.radius, self.hardness, self.erase)

    def move(self, pt: Point) -> Rect | None:
        if self._last is None:
            return self.press(pt)
        if math.hypot(pt[0] - self._last[0], pt[1] - self._last[1]) < 1e-3:
            return None
        rect = self.recorder.segment(self._last, pt, self.radius, self.hardness, self.erase)
        self._last = pt
        return rect

    def release(self) -> tuple[Rect | None, Patch | None]:
        patch = self.recorder.finish()
        return (patch.rect if patch else None), patch


class RectGesture:
    def __init__(self, mask: np.ndarray, erase: bool = False) -> None:
        self.mask, self.erase = mask, erase
        self.start: Point | None = None
        self.end: Point | None = None

    def preview_rect(self) -> Rect | None:
        """The pixel rectangle the release would fill (pixel centres inside the drag box)."""
        if self.start is None or self.end is None:
            return None
        (x0, y0), (x1, y1) = self.start, self.end
        r = Rect.from_corners(round(min(x0, x1)), round(min(y0, y1)), round(max(x0, x1)), round(max(y0, y1)))
        return r if r.area else None

    def press(self, pt: Point) -> Rect | None:
        self.start = self.end = pt
        return None

    def move(self, pt: Point) -> Rect | None:
        before = self.preview_rect()
        self.end = pt
        after = self.preview_rect()
        if after is None:
            return before
        return after.united(before)

    def release(self) -> tuple[Rect | None, Patch | None]:
        rect = self.preview_rect()
        if rect is None:
            return None, None
        return fill_rect(self.mask, rect, self.erase)


class EllipseGesture(RectGesture):
    """Dragged like a rectangle; fills the ellipse inscribed in it (a ball, a sun spot, a sign)."""

    def release(self) -> tuple[Rect | None, Patch | None]:
        rect = self.preview_rect()
        if rect is None:
            return None, None
        return fill_ellipse(self.mask, rect, self.erase)


class LassoGesture:
    def __init__(self, mask: np.ndarray, erase: bool = False) -> None:
        self.mask, self.erase = mask, erase
        self.points: list[Point] = []

    def press(self, pt: Point) -> Rect | None:
        self.points = [pt]
        return None

    def move(self, pt: Point) -> Rect | None:
        prev = self.points[-1] if self.points else pt
        if math.hypot(pt[0] - prev[0], pt[1] - prev[1]) < 0.5:
            return None
        self.points.append(pt)
        first = self.points[0]
        xs = (prev[0], pt[0], first[0])
        ys = (prev[1], pt[1], first[1])
        return Rect.from_corners(math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)) + 1, math.ceil(max(ys)) + 1)

    def bounds(self) -> Rect | None:
        if not self.points:
            return None
        pts = np.asarray(self.points)
        return Rect.from_corners(
            math.floor(pts[:, 0].min()), math.floor(pts[:, 1].min()),
            math.ceil(pts[:, 0].max()) + 1, math.ceil(pts[:, 1].max()) + 1,
        )

    def release(self) -> tuple[Rect | None, Patch | None]:
        return fill_polygon(self.mask, self.points, self.erase)
