"""Pure numpy mask tools: brush segments, rectangle and lasso fills, grow/shrink/invert/clear.

No Qt. Every tool works in image coordinates on a uint8 HxW mask (255 = painted), edits it
in place, and reports the dirty rectangle it touched. Undo payloads are `Patch` objects
(see app/canvas/patch.py): one-shot tools return one; a brush stroke is recorded by a
`StrokeRecorder`, which backs up tiles before the first change and builds the patch at the end.

Coordinates: pixel (col, row) covers [col, col+1) x [row, row+1); its centre is (col+0.5, row+0.5).
A brush of radius r paints the pixels whose centre lies within r of the stroke's path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from app.canvas.patch import Patch, Rect
from app.io.images import PAINTED_ABOVE

PAINT = 255
Point = tuple[float, float]


def brush_footprint_rect(p0: Point, p1: Point, radius: float, width: int, height: int) -> Rect | None:
    """The pixel rectangle a segment of the given radius can touch, clipped to the mask."""
    r = max(float(radius), 0.5)
    x0 = math.floor(min(p0[0], p1[0]) - r)
    y0 = math.floor(min(p0[1], p1[1]) - r)
    x1 = math.ceil(max(p0[0], p1[0]) + r) + 1
    y1 = math.ceil(max(p0[1], p1[1]) + r) + 1
    return Rect.from_corners(x0, y0, x1, y1).clipped(width, height)


def brush_alpha(dist2: np.ndarray, radius: float, hardness: float) -> np.ndarray:
    """uint8 coverage (0..255) from squared distances to the brush path.

    hardness 1 = hard edge (255 within the radius, 0 outside); lower hardness fades
    linearly from radius*hardness to radius.
    """
    r = max(float(radius), 0.5)
    hardness = min(max(float(hardness), 0.0), 1.0)
    if hardness >= 1.0:
        return np.where(dist2 <= r * r, np.uint8(PAINT), np.uint8(0))
    inner = r * hardness
    alpha = (r - np.sqrt(dist2)) * (1.0 / (r - inner))
    np.clip(alpha, 0.0, 1.0, out=alpha)
    return (alpha * 255.0 + 0.5).astype(np.uint8)


def stamp_segment(
    mask: np.ndarray, p0: Point, p1: Point, radius: float, hardness: float = 1.0, erase: bool = False
) -> Rect | None:
    """Paint (or erase) the capsule from p0 to p1: every sample gap is filled exactly.

    Works only inside the segment's bounding box; returns that box, or None if off the mask.
    """
    h, w = mask.shape
    rect = brush_footprint_rect(p0, p1, radius, w, h)
    if rect is None:
        return None
    ys = np.arange(rect.y, rect.y1, dtype=np.float32)[:, None] + np.float32(0.5)
    xs = np.arange(rect.x, rect.x1, dtype=np.float32)[None, :] + np.float32(0.5)
    ax, ay = np.float32(p0[0]), np.float32(p0[1])
    dx, dy = np.float32(p1[0] - p0[0]), np.float32(p1[1] - p0[1])
    length2 = float(dx * dx + dy * dy)
    rx, ry = xs - ax, ys - ay
    if length2 < 1e-12:
        dist2 = rx * rx + ry * ry
    else:
        t = (rx * dx + ry * dy) * np.float32(1.0 / length2)
        np.clip(t, 0.0, 1.0, out=t)
        ex = rx - t * dx
        ey = ry - t * dy
        dist2 = ex * ex + ey * ey
    alpha = brush_alpha(dist2, radius, hardness)
    sub = mask[rect.slices]
    if erase:
        np.minimum(sub, PAINT - alpha, out=sub)
    else:
        np.maximum(sub, alpha, out=sub)
    return rect


def fill_rect(mask: np.ndarray, rect: Rect, erase: bool = False) -> tuple[Rect | None, Patch | None]:
    """Fill (or erase) a rectangle. Returns (dirty rect, undo patch), both None if nothing changed."""
    h, w = mask.shape
    rect = rect.clipped(w, h)
    if rect is None:
        return None, None
    old = mask[rect.slices].copy()
    mask[rect.slices] = 0 if erase else PAINT
    patch = Patch.from_diff(old, mask[rect.slices], rect.x, rect.y)
    return (rect, patch) if patch else (None, None)


def fill_ellipse(mask: np.ndarray, rect: Rect, erase: bool = False) -> tuple[Rect | None, Patch | None]:
    """Fill (or erase) the ellipse inscribed in `rect` (pixel centres inside it)."""
    h, w = mask.shape
    clipped = rect.clipped(w, h)
    if clipped is None:
        return None, None
    cx, cy, ax, ay = rect.x + rect.w / 2, rect.y + rect.h / 2, rect.w / 2, rect.h / 2
    sub = mask[clipped.slices]
    old = sub.copy()
    # row by row, the span of pixel centres inside: no full-box coordinate grids (a 50 MP ellipse)
    dy = (np.arange(clipped.y, clipped.y1) + 0.5 - cy) / ay
    half = ax * np.sqrt(np.clip(1.0 - dy * dy, 0.0, None))
    starts = np.clip(np.ceil(cx - half - 0.5), clipped.x, clipped.x1).astype(int) - clipped.x
    ends = np.clip(np.floor(cx + half - 0.5) + 1, clipped.x, clipped.x1).astype(int) - clipped.x
    for row, (x0, x1) in enumerate(zip(starts, ends)):
        if x1 > x0 and dy[row] ** 2 <= 1.0:
            sub[row, x0:x1] = 0 if erase else PAINT
    patch = Patch.from_diff(old, sub, clipped.x, clipped.y)
    return (clipped, patch) if patch else (None, None)


def fill_polygon(mask: np.ndarray, points: Sequence[Point], erase: bool = False) -> tuple[Rect | None, Patch | None]:
    """Fill (or erase) the lasso polygon through `points` (image coordinates)."""
    if len(points) < 3:
        return None, None
    pts = np.asarray(points, dtype=np.float64)
    h, w = mask.shape
    rect = Rect.from_corners(
        math.floor(pts[:, 0].min()), math.floor(pts[:, 1].min()), math.ceil(pts[:, 0].max()) + 1,
        math.ceil(pts[:, 1].max()) + 1,
    ).clipped(w, h)
    if rect is None:
        return None, None
    local = np.zeros((rect.h, rect.w), np.uint8)
    shift = 4  # sub-pixel precision for cv2.fillPoly; vertices at pixel centres
    fixed = np.round((pts - [rect.x + 0.5, rect.y + 0.5]) * (1 << shift)).astype(np.int32)
    cv2.fillPoly(local, [fixed], 255, lineType=cv2.LINE_8, shift=shift)
    sub = mask[rect.slices]
    old = sub.copy()
    if erase:
        sub[local > 0] = 0
    else:
        sub[local > 0] = PAINT
    patch = Patch.from_diff(old, sub, rect.x, rect.y)
    return (rect, patch) if patch else (None, None)


def replace_mask(mask: np.ndarray, new: np.ndarray) -> tuple[Rect | None, Patch | None]:
    """Write `new` over `mask` in place; report the changed box and the undo patch."""
    patch = Patch.from_diff(mask, new, 0, 0)
    if not patch:
        return None, None
    rect = patch.rect
    mask[rect.slices] = new[rect.slices]
    return rect, patch


def invert(mask: np.ndarray) -> tuple[Rect | None, Patch | None]:
    return replace_mask(mask, PAINT - mask)


def clear(mask: np.ndarray) -> tuple[Rect | None, Patch | None]:
    return replace_mask(mask, np.zeros_like(mask))


def grow(mask: np.ndarray, px: int) -> tuple[Rect | None, Patch | None]:
    """Grow (px > 0) or shrink (px < 0) the painted area by |px| pixels (Euclidean distance).

    Works on the painted area's bounding box plus the margin, so small masks on big photos
    stay cheap. Soft edges are kept where they are not covered by the new area.
    """
    px = int(px)
    if px == 0:
        return None, None
    painted = mask > PAINTED_ABOVE
    rows = np.flatnonzero(painted.any(axis=1))
    if rows.size == 0:
        return None, None
    cols = np.flatnonzero(painted.any(axis=0))
    h, w = mask.shape
    m = abs(px) + 1
    box = Rect.from_corners(cols[0] - m, rows[0] - m, cols[-1] + 1 + m, rows[-1] + 1 + m).clipped(w, h)
    sub_painted = painted[box.slices]
    new = mask.copy()
    sub_new = new[box.slices]
    if px > 0:
        # distance from every pixel to the nearest painted pixel
        dist = cv2.distanceTransform((~sub_painted).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        sub_new[dist <= px] = PAINT
    else:
        # distance from every painted pixel to the nearest unpainted one (outside the photo counts as painted)
        dist = cv2.distanceTransform(sub_painted.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        sub_new[dist <= -px] = 0  # unpainted (and soft-edge) pixels have distance 0: cleared too
    return replace_mask(mask, new)


RIM_REACH = 1024  # px around a fill where `clear_filled` looks for faint rims: half the largest soft brush


def clear_filled(mask: np.ndarray, filled: np.ndarray, reach: int = RIM_REACH) -> np.ndarray:
    """`mask` after a fill of `filled` (bool HxW) was applied: zero where it was filled, and
    zero on the faint rims (painted at most PAINTED_ABOVE, so never filled) of the strokes the
    fill came from, which would otherwise still show around it. Faint paint elsewhere (a soft
    stroke being built up) stays. Works within `reach` px of the fill: the widest faint rim,
    of the largest soft brush (radius 2000 px), is half its radius."""
    out = np.where(filled, np.uint8(0), mask)
    rows, cols = np.flatnonzero(filled.any(axis=1)), np.flatnonzero(filled.any(axis=0))
    if rows.size == 0:
        return out
    h, w = mask.shape
    box = Rect.from_corners(cols[0] - reach, rows[0] - reach, cols[-1] + 1 + reach, rows[-1] + 1 + reach).clipped(w, h)
    sub_mask, sub_filled = mask[box.slices], filled[box.slices]
    if not cv2.countNonZero(cv2.inRange(sub_mask, 1, PAINTED_ABOVE)):
        return out  # no faint paint near the fill (hard strokes, a detected layer): no rim to find
    count, labels = cv2.connectedComponents((sub_mask > 0).view(np.uint8), connectivity=8)
    touching = np.zeros(count, bool)
    touching[labels[sub_filled]] = True
    touching[0] = False
    rim = touching[labels] & (sub_mask <= PAINTED_ABOVE)
    out[box.slices][rim] = 0
    return out


@dataclass
class StrokeRecorder:
    """Records one brush stroke on one mask: back up each tile before its first change,
    then turn the backups into a bounding-box-per-tile diff (`Patch`) at the end."""

    mask: np.ndarray
    tile: int = 256

    def __post_init__(self) -> None:
        self._saved: dict[tuple[int, int], np.ndarray] = {}
        self.dirty: Rect | None = None

    def before_change(self, rect: Rect | None) -> None:
        if rect is None:
            return
        t = self.tile
        for ty in range(rect.y // t, (rect.y1 - 1) // t + 1):
            for tx in range(rect.x // t, (rect.x1 - 1) // t + 1):
                if (ty, tx) not in self._saved:
                    self._saved[(ty, tx)] = self.mask[ty * t : (ty + 1) * t, tx * t : (tx + 1) * t].copy()
        self.dirty = rect if self.dirty is None else self.dirty.united(rect)

    def segment(self, p0: Point, p1: Point, radius: float, hardness: float = 1.0, erase: bool = False) -> Rect | None:
        """Stamp one segment of the stroke; returns the dirty rect to repaint."""
        h, w = self.mask.shape
        self.before_change(brush_footprint_rect(p0, p1, radius, w, h))
        return stamp_segment(self.mask, p0, p1, radius, hardness, erase)

    def finish(self) -> Patch | None:
        """The stroke's undo patch (None if no pixel changed). The recorder is spent afterwards."""
        t = self.tile
        pieces = []
        for (ty, tx), old in self._saved.items():
            y, x = ty * t, tx * t
            new = self.mask[y : y + old.shape[0], x : x + old.shape[1]]
            pieces.extend(Patch.from_diff(old, new, x, y, tile=t).pieces)
        self._saved.clear()
        patch = Patch(pieces)
        return patch if patch else None
