"""Hole regions: which boxes of the photo the engine works in.

Each group of nearby holes gets one square box (hole bounding box plus a context margin)
at the photo's own resolution; holes far apart get separate boxes, and so do scattered
holes whose merged box would be mostly empty (dust); boxes may overlap, since regions
are filled in order and each sees the fills before it; a long thin hole (a
scratch across the photo) is cut into square-ish pieces along its length instead of
being squeezed into one huge square.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Region:
    """A square work box (may extend past the photo; that part is padding) and the part
    of the hole it is responsible for pasting: hole pixels inside `own` (x0, y0, x1, y1)."""

    x0: int
    y0: int
    side: int
    own: tuple[int, int, int, int]

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x0, self.y0, self.x0 + self.side, self.y0 + self.side


def _margin(extent: int, fraction: float, minimum: int) -> int:
    return int(max(minimum, round(fraction * extent)))


def _square_box(bx0, by0, bx1, by1, width, height, fraction, minimum, grid) -> tuple[int, int, int]:
    """A square around a hole bbox with margin, side a multiple of grid, shifted to stay in
    the photo where it fits. Returns (x0, y0, side)."""
    side = _side(max(bx1 - bx0, by1 - by0), fraction, minimum, grid, width, height)
    cx, cy = (bx0 + bx1) / 2, (by0 + by1) / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x0 = _fit(x0, side, width)
    y0 = _fit(y0, side, height)
    return x0, y0, side


def _side(extent: int, fraction: float, minimum: int, grid: int, width: int, height: int) -> int:
    """The side of the square box around a hole `extent` px across: the hole plus its margins,
    rounded up to the grid."""
    side = extent + 2 * _margin(extent, fraction, minimum)
    # context past the photo is only mirrored padding: no larger than the photo's long side,
    # so a hole across the whole photo still reaches the coarse stage at the best scale
    side = min(side, max(width, height))
    return -(-side // grid) * grid


def _fit(start: int, side: int, limit: int) -> int:
    if side >= limit:
        return (limit - side) // 2  # centred, padded on both sides
    return min(max(start, 0), limit - side)


#: fixed work of one region (crops, an OpenCV fill, the paste), in box pixels; a
#: generator run costs far more (the pipeline passes its own figure)
REGION_OVERHEAD = 256 * 256


def _cost(g, fraction: float, minimum: int, overhead: int) -> int:
    """Work of filling hole bbox g in one box: its square box's pixels plus the overhead."""
    ext = max(g[2] - g[0], g[3] - g[1])
    side = ext + 2 * _margin(ext, fraction, minimum)
    return side * side + overhead


#: a hole covering less than this share of its bounding box is sparse (a scratch across a scan):
#: cut into tiles rather than worked at reduced scale in one huge box
SPARSE_SHARE = 0.1
#: the context margin of a thin piece of such a hole, as a share of its extent
THIN_MARGIN = 0.1


def find_regions(
    mask: np.ndarray, fraction: float, minimum: int, grid: int, max_aspect: float = 3.0, overhead: int = REGION_OVERHEAD,
    max_side: int | None = None, thin_px: float = 0.0,
) -> list[Region]:
    """Group the hole pixels of `mask` (bool or 0/255) into work regions. A group whose box would
    be wider than `max_side` (worked at reduced scale: a thin scratch filled blurred) is cut into
    tiles whose boxes fit, its holes no thicker than 2 * thin_px cut where they cross tiles."""
    height, width = mask.shape
    hole = (mask > 0).view(np.uint8) if mask.dtype == bool else (mask > 0).astype(np.uint8)
    points = cv2.findNonZero(hole)
    if points is None:
        return []
    # label components only inside the mask's bounding box: cheap on a 24 MP photo
    ax, ay, aw, ah = cv2.boundingRect(points)
    count, _, stats, _ = cv2.connectedComponentsWithStats(hole[ay : ay + ah, ax : ax + aw], connectivity=8)
    bboxes = [
        [ax + int(s[0]), ay + int(s[1]), ax + int(s[0] + s[2]), ay + int(s[1] + s[3])] for s in stats[1:count]
    ]  # x0, y0, x1, y1 of each component
    # merge components whose context boxes overlap, until no two groups overlap
    groups = [list(b) for b in bboxes]
    changed = True
    while changed:
        changed = False
        boxes = []
        for g in groups:
            ext = max(g[2] - g[0], g[3] - g[1])
            m = _margin(ext, fraction, minimum)
            boxes.append((g[0] - m, g[1] - m, g[2] + m, g[3] + m))
        arr = np.array(boxes)
        merged: list[list[int]] = []
        used = np.zeros(len(groups), bool)
        for i in range(len(groups)):
            if used[i]:
                continue
            cur = list(groups[i])
            cur_box = arr[i].copy()
            used[i] = True
            grew = True
            while grew:
                hit = (~used) & (arr[:, 0] < cur_box[2]) & (cur_box[0] < arr[:, 2]) & (arr[:, 1] < cur_box[3]) & (
                    cur_box[1] < arr[:, 3]
                )
                grew = False
                for j in np.flatnonzero(hit):
                    g = groups[j]
                    union = [min(cur[0], g[0]), min(cur[1], g[1]), max(cur[2], g[2]), max(cur[3], g[3])]
                    # merge only when one box costs no more work than two: a scatter of
                    # dust specks must not become one photo-sized box
                    if _cost(union, fraction, minimum, overhead) > (
                        _cost(cur, fraction, minimum, overhead) + _cost(g, fraction, minimum, overhead)
                    ):
                        continue
                    cur = union
                    ext = max(cur[2] - cur[0], cur[3] - cur[1])
                    m = _margin(ext, fraction, minimum)
                    cur_box = np.array([cur[0] - m, cur[1] - m, cur[2] + m, cur[3] + m])
                    used[j] = True
                    grew = changed = True
            merged.append(cur)
        groups = merged
    regions: list[Region] = []
    for g in groups:
        for part, thin in _tiles(g, hole, fraction, minimum, grid, max_side, thin_px, width, height):
            # a thin piece is all edge band, filled from its edges: it needs neither a box in
            # proportion (each piece costs a run of the model) nor a wide margin, only grain
            # around it to carry in
            if thin:
                regions.extend(_split_long(part, width, height, THIN_MARGIN, minimum, grid, np.inf))
            else:
                regions.extend(_split_long(part, width, height, fraction, minimum, grid, max_aspect))
    return regions


def _tiles(g, hole: np.ndarray, fraction: float, minimum: int, grid: int, max_side: int | None, thin_px: float,
           width: int, height: int) -> list[tuple[list[int], bool]]:
    """The hole of group `g` as (part, thin) pairs: when g's box would be wider than `max_side`
    px, a sparse hole larger than a tile and nowhere thicker than 2 * thin_px (a scratch across
    the photo) is cut along a grid of tiles whose boxes fit (thin pieces); the holes that fit a
    tile (dust) stay one part, as grouped, and so does any other hole (worked at reduced scale:
    its fill needs the context around all of it, and a cut through it would show). Else [g]."""
    bx0, by0, bx1, by1 = g
    if max_side is None or _side(max(bx1 - bx0, by1 - by0), fraction, minimum, grid, width, height) <= max_side:
        return [(g, False)]
    tile = _tile_extent(fraction, minimum, grid, max_side, width, height)
    part = hole[by0:by1, bx0:bx1]
    count, labels, stats, _ = cv2.connectedComponentsWithStats(part, connectivity=8)
    parts: dict[tuple[int, int], list[int]] = {}  # tile (column, row) -> bounding box of what it fills
    whole: list[list[int]] = []
    small: dict = {}  # the holes that fit a tile (dust), together as before: one box for all costs least
    cut = np.zeros(count, bool)
    for i in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[i])
        if max(w, h) <= tile:
            _grow(small, 0, [bx0 + x, by0 + y, bx0 + x + w, by0 + y + h])
        elif area < SPARSE_SHARE * w * h and not _has_core(labels[y : y + h, x : x + w] == i, thin_px):
            cut[i] = True
        else:
            whole.append([bx0 + x, by0 + y, bx0 + x + w, by0 + y + h])
    whole.extend(small.values())
    if cut.any():
        pieces = cut[labels].view(np.uint8)
        del labels
        for ty in range(0, part.shape[0], tile):
            for tx in range(0, part.shape[1], tile):
                points = cv2.findNonZero(pieces[ty : ty + tile, tx : tx + tile])
                if points is not None:
                    x, y, w, h = cv2.boundingRect(points)
                    x0, y0 = bx0 + tx + x, by0 + ty + y
                    _grow(parts, (tx // tile, ty // tile), [x0, y0, x0 + w, y0 + h])
    return [(box, False) for box in whole] + [(box, True) for box in parts.values()]


def _has_core(component: np.ndarray, thin_px: float) -> bool:
    """Whether a hole has parts thicker than 2 * thin_px (a stain on a scratch): cut there, the
    two boxes' fills would meet in a visible seam. Thinner holes are filled from their edges
    (the pipeline's edge band), the same whichever box they fall in."""
    return bool(cv2.distanceTransform(component.view(np.uint8), cv2.DIST_L2, 3).max() > thin_px)


def _grow(parts: dict, key, box: list[int]) -> None:
    """Widen parts[key] to cover `box`."""
    cur = parts.setdefault(key, list(box))
    cur[:] = [min(cur[0], box[0]), min(cur[1], box[1]), max(cur[2], box[2]), max(cur[3], box[3])]


def _tile_extent(fraction: float, minimum: int, grid: int, max_side: int, width: int, height: int) -> int:
    """The largest hole extent whose box is at most `max_side` px."""
    extent = max(grid, int(min((max_side - grid) / (1 + 2 * fraction), max_side - grid - 2 * minimum)))
    while extent > grid and _side(extent, fraction, minimum, grid, width, height) > max_side:
        extent -= grid
    return extent


def _split_long(g, width, height, fraction, minimum, grid, max_aspect) -> list[Region]:
    bx0, by0, bx1, by1 = g
    bw, bh = bx1 - bx0, by1 - by0
    long_side, short_side = max(bw, bh), max(1, min(bw, bh))
    pieces = 1
    if long_side > max_aspect * short_side:
        # pieces about 1.5x as long as the hole is wide (but at least a few hundred px),
        # so each gets a box of sensible resolution
        piece_len = max(1.5 * short_side, 4 * minimum)
        pieces = max(1, int(np.ceil(long_side / piece_len)))
    out = []
    for k in range(pieces):
        if bw >= bh:
            ox0 = bx0 + (bw * k) // pieces
            ox1 = bx0 + (bw * (k + 1)) // pieces
            own = (ox0, by0, ox1, by1)
        else:
            oy0 = by0 + (bh * k) // pieces
            oy1 = by0 + (bh * (k + 1)) // pieces
            own = (bx0, oy0, bx1, oy1)
        x0, y0, side = _square_box(*own, width, height, fraction, minimum, grid)
        out.append(Region(x0=x0, y0=y0, side=side, own=own))
    return out
