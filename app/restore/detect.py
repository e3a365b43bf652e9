"""Proposals of old-photo damage: dust/spots and scratches/creases.

The detectors behind `analyse_damage` / `propose_damage` / `detect_damage`:
- "hand": the classical filters below (no weights).
- "learned": a small net trained on our own synthetic damage (app/restore/learned.py,
  models/damage_detector.onnx) gives per-kind probability maps; the sensitivity only
  thresholds them.
- "hybrid": the hand-made scratch filter and the net's dust map.
- "auto" (the default, DEFAULT_DETECTOR says why): learned when the net's model loads, else
  hand (the analysis' `note` says so).

Every detector takes an RGB uint8 photo and a ``sensitivity`` in [0, 1] (0.5 = default;
higher flags more) and returns a uint8 HxW mask, 255 = proposed damage. The proposal is
never applied silently: the editor shows it as a mask layer the user trims.

Thresholds are absolute grey-level floors raised by the local texture level (never
relative to the image's own response histogram: an Otsu-style threshold always flags
something, even on a clean photo).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

KINDS = ("scratches", "dust")
DEFAULT_SENSITIVITY = 0.5


@dataclass(frozen=True)
class DustParams:
    radius: int = 3  # median window radius: specks up to ~2*radius px across
    floor: float = 22.0  # grey levels a speck must differ from its local median
    texture_gain: float = 8.0  # ... and this many times the mean deviation around it
    texture_window: int = 21
    texture_statistic: str = "mean"  # mean also sees sparse pebbles and twigs that a median misses
    isolation_radius: int = 15  # px around a speck searched for company
    company_ratio: float = 0.5  # company = pixels deviating more than this share of the speck's contrast
    max_company: float = 2.0  # ... at most this many times the speck's area
    max_area: int = 40  # px; bigger blobs are content (or scratches)
    max_elongation: float = 4.0  # length / width; longer = a line (scratch detector's job)
    edge_ratio: float = 0.5  # drop if this fraction of the blob sits on a strong real edge
    max_chroma_gain: float = 0.5  # drop if the blob is this much more colourful than around it


@dataclass(frozen=True)
class ScratchParams:
    max_width: int = 4  # px: structures wider than this are content
    line_length: int = 15  # px: line kernel of the opening
    angles: int = 12  # line kernel orientations over 180 degrees
    along: int = 41  # px: responses averaged along their own orientation (a scratch keeps its level)
    floor: float = 14.0  # high (seed) threshold, grey levels
    low_ratio: float = 0.5  # hysteresis: low threshold = ratio * high
    texture_gain: float = 3.5  # seeds exceed this many times the typical (median) response nearby
    texture_window: int = 31
    levels: tuple[float, ...] = (1.0, 1.5, 2.2)  # threshold multiples tried in turn
    core_ratio: float = 0.5  # kept pixels: own (unaveraged) response above this share of the seed threshold
    min_length: int = 90  # px along the component (on small photos: min_length_fraction of the long side)
    min_length_fraction: float = 0.2
    min_elongation: float = 5.0  # length / mean width
    max_spread: float = 0.25  # std across the main axis / length: a line, or a gentle curve
    edge_ratio: float = 0.5
    max_chroma_gain: float = 0.5
    parallel_range: tuple[int, int] = (8, 60)  # px either side searched for parallel lines
    parallel_piece: int = 40  # px: pieces of the line searched separately
    max_parallel: float = 0.4  # drop when parallel neighbours reach this share of the own response
    side_offset: int = 6  # px either side of the line where the background is compared
    max_step: float = 0.6  # drop when the two sides differ by more than this share of the ridge


@dataclass(frozen=True)
class Cleanup:
    edge_threshold: float = 12.0  # grey levels/px in the defect-free proxy that mark a real edge
    dilate: int = 1  # px grown around the final proposal


def sensitivity_scale(sensitivity: float) -> float:
    """Threshold multiplier: 0 -> 2x (stricter), 0.5 -> 1x, 1 -> 0.5x (flags more)."""
    s = float(np.clip(sensitivity, 0.0, 1.0))
    return float(2.0 ** ((0.5 - s) * 2.0))


def luminance(rgb: np.ndarray) -> np.ndarray:
    """uint8 HxW grey (Rec. 601 luma), the channel all detectors work on."""
    _check_rgb(rgb)
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def _check_rgb(rgb: np.ndarray) -> None:
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise ValueError("expected an RGB uint8 HxWx3 image")


def _odd(n: int) -> int:
    n = max(int(n), 3)
    return n if n % 2 else n + 1


def texture_level(residual: np.ndarray, window: int, statistic: str = "median") -> np.ndarray:
    """Local level of |residual|: high in foliage, gravel, fur; ~noise on smooth areas.
    "median" ignores the few pixels a thin defect occupies in the window; "mean" also
    sees sparse high-contrast content (pebbles, twigs) that a median misses."""
    if statistic == "mean":
        return cv2.blur(np.abs(residual).astype(np.float32), (window, window))
    if residual.dtype == np.uint8:
        r = residual  # already what the rounding below gives
    else:
        r = np.clip(np.abs(residual) + 0.5, 0, 255).astype(np.uint8)
    # median over a big window on a 2x-reduced image: same statistic, a quarter of the work
    h, w = r.shape
    small = cv2.resize(r, (max(w // 2, 1), max(h // 2, 1)), interpolation=cv2.INTER_AREA)
    med = cv2.medianBlur(small, _odd(window // 2))
    return cv2.resize(med, (w, h), interpolation=cv2.INTER_LINEAR)


def real_edges(gray: np.ndarray, threshold: float, defect_width: int = 4) -> np.ndarray:
    """Strong edges of the photo's content: Sobel magnitude of a proxy with thin defects
    removed (opening then closing wider than a scratch), bool HxW, slightly dilated."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * defect_width + 1,) * 2)
    proxy = cv2.morphologyEx(cv2.morphologyEx(gray, cv2.MORPH_OPEN, k), cv2.MORPH_CLOSE, k)
    proxy = cv2.GaussianBlur(proxy, (0, 0), 1.0)
    gx = cv2.Sobel(proxy, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(proxy, cv2.CV_32F, 0, 1, ksize=3)
    strong = cv2.magnitude(gx, gy) / 8.0 > threshold  # a 3x3 Sobel has gain 8: now grey levels per px
    return cv2.dilate(strong.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def chroma_gain(rgb: np.ndarray, window: int = 9) -> np.ndarray:
    """How much more colourful each pixel is than its local median (Lab chroma, float32).

    Dust, scratches and creases move a print toward neutral (white paper base, grey dirt),
    so on damage this is <= 0; thin real structures often carry colour of their own (> 0).
    On a grey photo it is 0 everywhere and decides nothing."""
    def chroma(rgb_u8: np.ndarray) -> np.ndarray:
        _, a, b = cv2.split(cv2.cvtColor(rgb_u8, cv2.COLOR_RGB2LAB))
        return np.hypot(a.astype(np.float32) - 128.0, b.astype(np.float32) - 128.0)

    return chroma(rgb) - chroma(cv2.medianBlur(rgb, _odd(window)))


_TILE = 32  # px: the grid on which _component_filter finds where components can be


def _occupied(mask: np.ndarray) -> np.ndarray:
    """uint8 grid of _TILE x _TILE tiles: 1 where `mask` (bool HxW) has a pixel."""
    h, w = mask.shape
    th, tw = -(-h // _TILE), -(-w // _TILE)
    padded = cv2.copyMakeBorder(mask.view(np.uint8), 0, th * _TILE - h, 0, tw * _TILE - w, cv2.BORDER_CONSTANT, value=0)
    rows = padded.reshape(th, _TILE, tw * _TILE).max(axis=1)
    return rows.reshape(th, tw, _TILE).max(axis=2)


def _component_filter(
    low: np.ndarray,
    seeds: np.ndarray,
    keep,
    known: np.ndarray | None = None,
) -> np.ndarray:
    """Hysteresis + shape filter: components of `low` that contain a seed and pass
    `keep(component, box, area)` (component: bool mask of its box (x, y, w, h), in photo px).
    Components lying wholly in `known` (pixels already found) are not judged again: the
    caller ORs the result into it, where they change nothing.

    `low` is sparse, so components are labelled per group of touching occupied tiles that
    holds a seed, in that group's box with the other groups blanked out: a component lies
    within one group, so these are exactly the components of the whole mask (labelling
    the whole photo each time cost more than everything else)."""
    found = np.zeros(low.shape, bool)
    seeds = seeds & low
    occ = _occupied(low)
    n, groups, gstats, _ = cv2.connectedComponentsWithStats(occ, connectivity=8)
    if n <= 1:
        return found
    seeded_groups = np.unique(groups[_occupied(seeds) > 0])
    for g in seeded_groups[seeded_groups > 0]:
        gx, gy, gw, gh, _ = gstats[g]
        y0, x0 = gy * _TILE, gx * _TILE
        y1, x1 = min((gy + gh) * _TILE, low.shape[0]), min((gx + gw) * _TILE, low.shape[1])
        mine = groups[gy : gy + gh, gx : gx + gw] == g
        mine = np.repeat(np.repeat(mine, _TILE, axis=0), _TILE, axis=1)[: y1 - y0, : x1 - x0]
        sub_low = low[y0:y1, x0:x1] & mine
        k, labels, stats, _ = cv2.connectedComponentsWithStats(sub_low.view(np.uint8), connectivity=8)
        seeded = np.unique(labels[seeds[y0:y1, x0:x1] & sub_low])
        ok = np.zeros(k, bool)
        for i in seeded[seeded > 0]:
            x, y, w, h, area = stats[i]
            component = labels[y : y + h, x : x + w] == i
            if known is not None and not (component & ~known[y0 + y : y0 + y + h, x0 + x : x0 + x + w]).any():
                continue
            ok[i] = keep(component, (x + x0, y + y0, w, h), area)
        if ok.any():
            found[y0:y1, x0:x1] |= ok[labels]
    return found


def _mean_in(component: np.ndarray, box, values: np.ndarray) -> float:
    x, y, w, h = box
    return float(values[y : y + h, x : x + w][component].mean())


_edge_fraction = _mean_in


def _length(box, area: int) -> float:
    """Rough length of a thin component: its box diagonal."""
    _, _, w, h = box
    return float(max(np.hypot(w, h), 1.0))


def _shape(component: np.ndarray) -> tuple[float, float]:
    """(length, spread) of a component from the principal axes of its pixels: length is
    the extent along the main axis (a segment of length L has variance L^2/12) and spread
    the standard deviation across it. A scratch or crease has a small spread for its
    length, even when it bends gently; a web of texture does not."""
    ys, xs = np.nonzero(component)
    if len(xs) < 3:
        return float(len(xs)), 0.0
    cov = np.cov(np.stack([xs, ys]).astype(np.float64))
    lo, hi = np.linalg.eigvalsh(cov)
    return float(np.sqrt(12.0 * max(hi, 0.0))), float(np.sqrt(max(lo, 0.0)))


@dataclass(eq=False)
class DustAnalysis:
    """What the dust detector measures before any threshold (independent of the sensitivity)."""

    absdiff: np.ndarray  # uint8 HxW: |grey - local median|
    base: np.ndarray  # float32 HxW: seed threshold at sensitivity 0.5 (floor raised by the texture)


def analyse_dust(gray: np.ndarray, params: DustParams = DustParams()) -> DustAnalysis:
    med = cv2.medianBlur(gray, 2 * params.radius + 1)
    diff = gray.astype(np.int16) - med.astype(np.int16)
    # candidates: far from the local median by an absolute floor and by a multiple of the
    # typical deviation around; which of them are dust is decided per blob
    texture = texture_level(diff, params.texture_window, params.texture_statistic).astype(np.float32)
    base = np.maximum(params.floor, params.texture_gain * texture)
    return DustAnalysis(absdiff=cv2.absdiff(gray, med), base=base)


def _above(values: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """values > threshold for uint8 `values` and a float `threshold` >= 0, compared in uint8:
    an integer exceeds x exactly when it exceeds floor(x) (x >= 255: never)."""
    t = np.minimum(threshold, 255.0).astype(np.uint8)  # truncation = floor for x >= 0
    return values > t


def propose_dust(
    analysis: DustAnalysis,
    edges: np.ndarray,
    chroma: np.ndarray,
    sensitivity: float = DEFAULT_SENSITIVITY,
    params: DustParams = DustParams(),
    cleanup: Cleanup = Cleanup(),
) -> np.ndarray:
    """The sensitivity-dependent part of the dust detector: thresholds and the blob tests."""
    high = analysis.base * sensitivity_scale(sensitivity)
    absdiff = analysis.absdiff
    seeds = _above(absdiff, high)
    low = _above(absdiff, high * 0.5)
    H, W = absdiff.shape
    r = params.isolation_radius

    def keep(component, box, area) -> bool:
        if area > params.max_area:
            return False
        length = _length(box, area)
        width = area / length
        if length > 3 and length / max(width, 0.5) > params.max_elongation:
            return False
        if _mean_in(component, box, chroma) > params.max_chroma_gain:
            return False
        if _edge_fraction(component, box, edges) >= params.edge_ratio:
            return False
        # isolation: a speck stands alone; a pebble in gravel or a leaf in foliage has
        # company of comparable contrast around it
        x, y, w, h = box
        x0, y0, x1, y1 = max(x - r, 0), max(y - r, 0), min(x + w + r, W), min(y + h + r, H)
        own = np.zeros((y1 - y0, x1 - x0), bool)
        own[y - y0 : y - y0 + h, x - x0 : x - x0 + w] = component
        contrast = float(absdiff[y0:y1, x0:x1][own].max())
        near = cv2.dilate(own.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        company = int(((absdiff[y0:y1, x0:x1] > params.company_ratio * contrast) & ~near).sum())
        return company <= params.max_company * max(area, 4)
    found = _component_filter(low, seeds, keep)
    return _finish(found, cleanup.dilate)


def detect_dust(
    rgb: np.ndarray,
    sensitivity: float = DEFAULT_SENSITIVITY,
    params: DustParams = DustParams(),
    cleanup: Cleanup = Cleanup(),
) -> np.ndarray:
    """Dust and spots: small blobs far (dark or bright) from their local median."""
    gray = luminance(rgb)
    return propose_dust(analyse_dust(gray, params), real_edges(gray, cleanup.edge_threshold), chroma_gain(rgb),
                        sensitivity, params, cleanup)


def _line_kernels(length: int, angles: int) -> list[np.ndarray]:
    out = []
    c = length // 2
    for a in np.arange(angles) * np.pi / angles:
        k = np.zeros((length, length), np.uint8)
        dx, dy = np.cos(a) * c, np.sin(a) * c
        cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1, 1)
        out.append(k)
    return out


def _median_network(n: int) -> list[tuple[int, int]]:
    """Comparators (i, j) of Batcher's odd-even merge sort of n wires, cut down to those
    the middle one or two outputs depend on: after them, wires (n-1)//2 and n//2 hold the
    order statistics a full sort would put there."""
    size = 1 << max(n - 1, 1).bit_length()
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    pairs = [(i, j) for i, j in pairs if j < n]  # missing wires are +inf: those comparators do nothing
    needed, kept = {(n - 1) // 2, n // 2}, []
    for i, j in reversed(pairs):
        if i in needed or j in needed:
            kept.append((i, j))
            needed |= {i, j}
    return kept[::-1]


def _median_over_first_axis(stack) -> np.ndarray:
    """Median over axis 0 of a uint8 stack (or a list of equal planes), kept in uint8 (np.median would go float64); the
    mean of the two middle values, rounded down, for an even count. A sorting network of
    element-wise min/max over the planes (a third of np.partition's time)."""
    n = len(stack)
    wires = [np.ascontiguousarray(stack[i]) for i in range(n)]
    for i, j in _median_network(n):
        lo = cv2.min(wires[i], wires[j])
        wires[j] = cv2.max(wires[i], wires[j])
        wires[i] = lo
    lo, hi = wires[(n - 1) // 2], wires[n // 2]
    return ((lo.astype(np.uint16) + hi) // 2).astype(np.uint8)


def oriented_responses(gray: np.ndarray, params: ScratchParams = ScratchParams(), *,
                       progress=None, cancel=None) -> tuple[np.ndarray, np.ndarray] | None:
    """Thin-line responses per orientation: (own, along), uint8 [angles, H, W], grey levels.

    own: black-hat (dark lines) and top-hat (bright lines) with a disc wider than a scratch,
    each opened by a line kernel of each orientation; what survives is a line at that
    orientation. Texture survives openings at every angle alike and a line at one, so the
    median over angles is subtracted.
    along: `own` averaged along its orientation over `params.along` px. A scratch keeps its
    level over that length; grass blades, hair and twigs are shorter and are diluted.
    `progress(f)` gets the done fraction; `cancel()` is polled per step (None = gave up)."""
    report = progress or (lambda f: None)
    steps = 2 + params.angles
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * params.max_width + 1,) * 2)
    kernels = _line_kernels(_odd(params.line_length), params.angles)
    own = np.zeros((params.angles,) + gray.shape, np.uint8)
    for done, op in enumerate((cv2.MORPH_BLACKHAT, cv2.MORPH_TOPHAT)):
        if cancel is not None and cancel():
            return None
        report(done / steps)
        hat = cv2.morphologyEx(gray, op, disc)
        stack = [cv2.morphologyEx(hat, cv2.MORPH_OPEN, k) for k in kernels]
        med = _median_over_first_axis(stack)
        for a in range(params.angles):
            np.maximum(own[a], cv2.subtract(stack[a], med), out=own[a])
        del stack
    along = np.empty_like(own)
    if params.along > 1:
        c = _odd(params.along) // 2
        for a, k in enumerate(_line_kernels(_odd(params.along), params.angles)):
            if cancel is not None and cancel():
                return None
            report((2 + a) / steps)
            # the kernel cut to its line's box (same sums; a 1 x n line is filtered directly)
            ys, xs = np.nonzero(k)
            y0, x0 = int(ys.min()), int(xs.min())
            box = k[y0 : ys.max() + 1, x0 : xs.max() + 1].astype(np.float32) / float(k.sum())
            along[a] = cv2.filter2D(own[a], -1, box, anchor=(c - x0, c - y0), borderType=cv2.BORDER_REFLECT)
    else:
        along[:] = own
    return own, along


def line_response(gray: np.ndarray, params: ScratchParams = ScratchParams()) -> np.ndarray:
    """Best (along-averaged) thin-line response over orientations (uint8, grey levels)."""
    return oriented_responses(gray, params)[1].max(axis=0)


def _band(stack: np.ndarray, a: int) -> np.ndarray:
    """Max over orientation a and its two neighbours: gentle curves stay whole."""
    n = stack.shape[0]
    return np.maximum(np.maximum(stack[a], stack[(a - 1) % n]), stack[(a + 1) % n])


def _looks_alone_on_one_background(gray_s: np.ndarray, own: np.ndarray, xs: np.ndarray, ys: np.ndarray,
                                   params: ScratchParams) -> bool:
    """Context test of a line given by its pixels; False for
    - parallel: copies of it shifted along the normal by parallel_range px meet a line
      response of max_parallel of its own: a scratch is alone; window frames, railings and
      stripes have neighbours of their kind. The search runs per piece of the line
      (`parallel_piece` px), at the distance that piece's neighbour has, because rows of
      windows in perspective converge; texture at one distance averages out over a piece;
    - step: the backgrounds side_offset px either side differ by more than max_step of
      the ridge's contrast: a scratch lies on one background, a halo along a real edge
      separates two.
    `gray_s` is the smoothed grey (uint8), compared in float32."""
    h, w = gray_s.shape
    cov = np.cov(np.stack([xs, ys]).astype(np.float64))
    vecs = np.linalg.eigh(cov)[1]
    nx, ny = vecs[:, 0]  # the normal: the axis of least spread

    def shifted(img, d):
        """img at the line's pixels moved d px along the normal; d a number or a column of them."""
        sx = np.clip(np.round(xs + d * nx).astype(np.intp), 0, w - 1)
        sy = np.clip(np.round(ys + d * ny).astype(np.intp), 0, h - 1)
        return img[sy, sx]

    t = xs * vecs[0, 1] + ys * vecs[1, 1]
    piece = ((t - t.min()) // params.parallel_piece).astype(np.intp)
    n = int(piece.max()) + 1
    count = np.bincount(piece, minlength=n)
    # every shift at once: row k of `near` is the response d_k px away, summed per piece
    d = np.arange(params.parallel_range[0], params.parallel_range[1] + 1)
    shifts = np.stack([d, -d], axis=1).reshape(-1, 1).astype(np.float64)
    near = shifted(own, shifts).astype(np.float64)
    rows = np.arange(len(shifts))[:, None] * n + piece[None, :]
    sums = np.bincount(rows.ravel(), near.ravel(), n * len(shifts)).reshape(len(shifts), n)
    company = np.max(sums / np.maximum(count, 1), axis=0)
    level = max(float(np.median(own[ys, xs])), 1.0)
    if np.median(company[count > 0]) >= params.max_parallel * level:
        return False
    left = shifted(gray_s, -params.side_offset).astype(np.float32)
    right = shifted(gray_s, params.side_offset).astype(np.float32)
    step = float(np.median(np.abs(left - right)))
    ridge = max(float(np.median(np.abs(gray_s[ys, xs].astype(np.float32) - 0.5 * (left + right)))), 1.0)
    return step < params.max_step * ridge


@dataclass(eq=False)
class ScratchAnalysis:
    """What the scratch detector measures before any threshold (independent of the sensitivity)."""

    own: np.ndarray  # uint8 [angles, H, W]: thin-line response per orientation
    along: np.ndarray  # uint8 [angles, H, W]: `own` averaged along its orientation
    own_max: np.ndarray  # uint8 HxW: own.max(axis=0)
    base: np.ndarray  # float32 HxW: seed threshold at sensitivity 0.5 (floor raised by the texture)
    gray_s: np.ndarray  # uint8 HxW: lightly smoothed grey, for the context test


def analyse_scratches(gray: np.ndarray, params: ScratchParams = ScratchParams(), *,
                      progress=None, cancel=None) -> ScratchAnalysis | None:
    responses = oriented_responses(gray, params, progress=progress, cancel=cancel)
    if responses is None:
        return None
    own, along = responses
    # texture level: the typical (median) response nearby; grass, water ripples and hair are
    # line-like too. A median ignores the few pixels a scratch takes in the window.
    texture = params.texture_gain * texture_level(along.max(axis=0), params.texture_window).astype(np.float32)
    return ScratchAnalysis(own=own, along=along, own_max=own.max(axis=0), base=np.maximum(params.floor, texture),
                           gray_s=cv2.GaussianBlur(gray, (0, 0), 1.0))


def propose_scratches(
    analysis: ScratchAnalysis,
    edges: np.ndarray,
    chroma: np.ndarray,
    sensitivity: float = DEFAULT_SENSITIVITY,
    params: ScratchParams = ScratchParams(),
    cleanup: Cleanup = Cleanup(),
    cancel=None,
) -> np.ndarray | None:
    """The sensitivity-dependent part of the scratch detector: hysteresis, shape and context
    tests. `cancel()` is polled per orientation (None = gave up)."""
    own, along, gray_s = analysis.own, analysis.along, analysis.gray_s
    high = analysis.base * sensitivity_scale(sensitivity)
    low = high * params.low_ratio
    # the thresholds of each level, as uint8 (see _above); the same for every orientation
    lows = [np.minimum(low * level, 255.0).astype(np.uint8) for level in params.levels]
    highs = [np.minimum(high * level, 255.0).astype(np.uint8) for level in params.levels]
    min_length = min(params.min_length, params.min_length_fraction * max(gray_s.shape))
    band_own = None

    def keep(component, box, area) -> bool:
        if _length(box, area) < min_length:
            return False
        length, spread = _shape(component)
        if length < min_length or spread > params.max_spread * length:
            return False
        if length / max(area / length, 0.5) < params.min_elongation:
            return False
        if _mean_in(component, box, chroma) > params.max_chroma_gain:
            return False
        if _edge_fraction(component, box, edges) >= params.edge_ratio:
            return False
        x, y = box[:2]
        ys, xs = np.nonzero(component)
        xs, ys = xs + x, ys + y
        core = band_own[ys, xs] > high[ys, xs] * params.core_ratio
        if core.sum() >= 10:  # judge the line by its core, not the averaging's halo
            xs, ys = xs[core], ys[core]
        return _looks_alone_on_one_background(gray_s, band_own, xs, ys, params)

    # hysteresis per orientation band: a scratch does not merge with crossing texture into
    # one web of unknown shape
    # and at stricter levels too: a scratch through grass that merges with the blades at one
    # level stands alone at a higher one
    found = np.zeros(gray_s.shape, bool)
    for a in range(params.angles):
        if cancel is not None and cancel():
            return None
        r = _band(along, a)
        band_own = _band(own, a)
        for lo, hi in zip(lows, highs):
            found |= _component_filter(r > lo, r > hi, keep, known=found)
    found &= _above(analysis.own_max, high * params.core_ratio)
    return _finish(found, cleanup.dilate)


def detect_scratches(
    rgb: np.ndarray,
    sensitivity: float = DEFAULT_SENSITIVITY,
    params: ScratchParams = ScratchParams(),
    cleanup: Cleanup = Cleanup(),
) -> np.ndarray:
    """Scratches and creases: long thin line responses, hysteresis, shape and context filter."""
    gray = luminance(rgb)
    return propose_scratches(analyse_scratches(gray, params), real_edges(gray, cleanup.edge_threshold, params.max_width),
                             chroma_gain(rgb), sensitivity, params, cleanup)


def _finish(found: np.ndarray, dilate: int) -> np.ndarray:
    mask = found.astype(np.uint8) * 255
    if dilate > 0:
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1,) * 2))
    return mask


def parse_kinds(text: str | Iterable[str]) -> tuple[str, ...]:
    """'scratches,dust' -> ('scratches', 'dust'); 'none' or '' -> (); unknown -> ValueError."""
    items = [t.strip().lower() for t in (text.split(",") if isinstance(text, str) else text)]
    items = [t for t in items if t and t != "none"]
    aliases = {"scratch": "scratches", "creases": "scratches", "crease": "scratches", "tears": "scratches",
               "spots": "dust", "specks": "dust"}
    out: list[str] = []
    for t in items:
        t = aliases.get(t, t)
        if t not in KINDS:
            raise ValueError(f"unknown damage kind {t!r}: choose from {', '.join(KINDS)}")
        if t not in out:
            out.append(t)
    return tuple(out)


DETECTORS = ("auto", "hybrid", "learned", "hand")
#: what analyse_damage / detect_damage use unless told: "auto", the learned net when its model
#: loads (else the hand-made filters, with a note). On bench/restore.py's held-out sets the net
#: beats the hand-made filters on BSDS500-test and SUN in all three numbers and on Urban100 in
#: precision and recall, flagging as much of clean city photos (0.44 % vs 0.45 %: facade grids).
DEFAULT_DETECTOR = "auto"
#: which kinds each detector takes from the learned net (the others from the hand-made filters)
LEARNED_KINDS = {"hand": (), "hybrid": ("dust",), "learned": KINDS}
CLAIM_MARGIN = 8  # uint8 probability steps (0.03) by which another kind must be surer to take a pixel


@dataclass(eq=False)
class DamageAnalysis:
    """Everything the detectors measure on one photo before any threshold: computed once per
    photo (`analyse_damage`, the expensive part), then `propose_damage` turns it into a
    proposal for any sensitivity (the cheap part, what a slider move reruns). Read-only.

    `detector` says where each kind comes from: "hand" (the filter responses of the
    hand-made detectors above), "learned" (per-kind probability maps of the net in
    models/damage_detector.onnx, see app/restore/learned.py), or "hybrid" (the hand-made
    scratch filter and the net's dust map)."""

    shape: tuple[int, int]
    edges: np.ndarray | None = None  # bool HxW: strong real edges (hand)
    chroma: np.ndarray | None = None  # float32 HxW: chroma gain (hand)
    dust: DustAnalysis | None = None
    scratches: ScratchAnalysis | None = None
    dust_params: DustParams = DustParams()
    scratch_params: ScratchParams = ScratchParams()
    cleanup: Cleanup = Cleanup()
    detector: str = "hand"
    probability: dict[str, np.ndarray] = field(default_factory=dict)  # kind -> uint8 HxW, round(255 p)
    thresholds: dict[str, float] = field(default_factory=dict)  # kind -> probability threshold at sensitivity 0.5
    low_ratio: float = 1.0  # learned kinds: hysteresis low threshold / threshold
    grow_px: int = 1  # learned kinds: px the proposal is grown by (the model's calibrated value)
    model_path: str = ""  # the net the maps came from
    note: str = ""  # e.g. why the hand-made filters stand in for the learned detector
    _own: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # own_probability's cache

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k in KINDS if k in self.probability or getattr(self, k) is not None)

    def own_probability(self, kind: str) -> np.ndarray:
        """`kind`'s probability map (uint8) with 0 where another learned kind's map is clearly more
        confident (by more than CLAIM_MARGIN): proposing "dust" alone must not take the stretches
        of a scratch that also look speck-like to the net, while a speck both maps are sure of
        (one lying on a scratch, say) stays a speck. Compared as probabilities, not each against
        its kind's threshold: near certainty both maps saturate at 255 and the thresholds would
        decide the tie. Independent of the sensitivity, so computed once per kind."""
        own = self._own.get(kind)
        if own is None:
            mine = self.probability[kind]
            others = np.maximum.reduce([p for k, p in self.probability.items() if k != kind])
            stronger = others.astype(np.int16) > mine.astype(np.int16) + CLAIM_MARGIN
            own = self._own[kind] = np.where(stronger, np.uint8(0), mine)
        return own


def choose_detector(detector: str, model):
    """(name, loaded model or None, note) for the `detector` asked for: "auto" is "learned"
    when the net's model loads and otherwise falls back to the hand-made filters (the note
    says why); "hybrid" and "learned" raise the model's ModelError instead."""
    from app.engine.errors import ModelError
    from app.restore.learned import default_detector

    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}: choose from {', '.join(DETECTORS)}")
    name = "learned" if detector == "auto" else detector
    if name == "hand":
        return "hand", None, ""
    if model is not None:
        return name, model, ""
    try:
        return name, default_detector(), ""
    except ModelError as exc:
        if detector != "auto":
            raise
        return "hand", None, f"hand-made damage filters used: {exc}"


def analyse_damage(
    rgb: np.ndarray,
    kinds: Iterable[str] = KINDS,
    *,
    cancel=None,
    progress=None,
    reuse: DamageAnalysis | None = None,
    dust: DustParams = DustParams(),
    scratches: ScratchParams = ScratchParams(),
    detector: str = DEFAULT_DETECTOR,
    model=None,
) -> DamageAnalysis | None:
    """The sensitivity-independent analysis of `rgb` for `kinds`. Parts already in `reuse`
    (an analysis of the same photo with the same detector and parameters) are taken over.
    `progress(f)` gets the done fraction in [0, 1]; `cancel()` -> bool is polled between
    stages (None = gave up). `detector`: "hand", "hybrid", "learned" (these two raise
    ModelError when the net's model does not load) or "auto" (DEFAULT_DETECTOR: "learned" when
    the model loads, else "hand" with a note saying why); `model`: a loaded app.restore.learned.DetectorModel instead of the shipped one."""
    _check_rgb(rgb)
    kinds = parse_kinds(kinds)
    name, loaded, note = choose_detector(detector, model)
    looks: tuple = ()
    if loaded is not None:  # the shipped nets, and their sibling trained with wider damage
        from app.restore.learned import detectors_for

        looks = detectors_for(loaded, rgb.shape)
    source = "+".join(str(m.path) for m in looks)
    if reuse is not None and (reuse.detector != name or reuse.shape != rgb.shape[:2] or reuse.dust_params != dust
                              or reuse.scratch_params != scratches
                              or (loaded is not None and reuse.model_path != source)):
        reuse = None
    learned_kinds = tuple(k for k in kinds if k in LEARNED_KINDS[name])
    hand_kinds = tuple(k for k in kinds if k not in learned_kinds)
    report = progress or (lambda f: None)
    share = len(hand_kinds) / max(len(kinds), 1)  # of the progress bar, roughly
    out = _analyse_hand(rgb, hand_kinds, reuse, dust, scratches, cancel, lambda f: report(share * f))
    if out is None:
        return None
    out.detector, out.note = name, note
    if reuse is not None:
        out.probability, out.thresholds = dict(reuse.probability), dict(reuse.thresholds)
        out.low_ratio, out.grow_px, out.model_path = reuse.low_ratio, reuse.grow_px, reuse.model_path
    missing = tuple(k for k in learned_kinds if k not in out.probability)
    if missing:
        # one forward pass gives every kind the net knows: keep them all, so that a proposal of
        # one kind can leave out what another kind is surer of (DamageAnalysis.own_probability)
        missing = tuple(k for k in LEARNED_KINDS[name] if k in loaded.channels and k not in out.probability)
        from app.restore.learned import damage_probability, either_probability

        maps = []
        for i, look in enumerate(looks):
            start, part = share + (1 - share) * i / len(looks), (1 - share) / len(looks)
            got = damage_probability(look, rgb, missing, progress=lambda f, s=start, p=part: report(s + p * f),
                                     cancel=cancel)
            if got is None:
                return None
            maps.append(got)
        for k in missing:
            if len(looks) == 1:
                out.probability[k], out.thresholds[k] = maps[0][k], loaded.threshold_for(k)  # calibrated per kind
            else:  # proposed where either detector proposes, each at its own calibrated threshold
                out.probability[k] = either_probability([m[k] for m in maps], [m.threshold_for(k) for m in looks])
                out.thresholds[k] = 0.5
        out.low_ratio, out.grow_px, out.model_path = loaded.low_ratio, loaded.grow_px, source
    report(1.0)
    return out


def _analyse_hand(rgb, kinds, reuse, dust, scratches, cancel, report) -> DamageAnalysis | None:
    cleanup = Cleanup()

    def stopped() -> bool:
        return cancel is not None and cancel()

    if not kinds:  # nothing new by hand; keep what `reuse` has
        if reuse is None:
            return DamageAnalysis(shape=rgb.shape[:2], dust_params=dust, scratch_params=scratches, cleanup=cleanup)
        return DamageAnalysis(shape=reuse.shape, edges=reuse.edges, chroma=reuse.chroma, dust=reuse.dust,
                              scratches=reuse.scratches, dust_params=dust, scratch_params=scratches, cleanup=cleanup)
    gray = luminance(rgb)
    if reuse is None or reuse.edges is None:
        # edges and chroma are shared by both detectors (edges with the scratch width, as before)
        edges = real_edges(gray, cleanup.edge_threshold, ScratchParams().max_width)
        report(0.1)
        if stopped():
            return None
        chroma = chroma_gain(rgb)
        report(0.25)
        reuse = DamageAnalysis(shape=gray.shape, edges=edges, chroma=chroma, dust_params=dust,
                               scratch_params=scratches, cleanup=cleanup)
    out = DamageAnalysis(shape=reuse.shape, edges=reuse.edges, chroma=reuse.chroma, dust=reuse.dust,
                         scratches=reuse.scratches, dust_params=dust, scratch_params=scratches, cleanup=cleanup)
    if "dust" in kinds and out.dust is None:
        if stopped():
            return None
        out.dust = analyse_dust(gray, dust)
        report(0.35)
    if "scratches" in kinds and out.scratches is None:
        if stopped():
            return None
        start = 0.35 if "dust" in kinds else 0.25
        out.scratches = analyse_scratches(gray, scratches, progress=lambda f: report(start + (0.99 - start) * f),
                                          cancel=cancel)
        if out.scratches is None:
            return None
    return out


def propose_damage(
    analysis: DamageAnalysis,
    kinds: Iterable[str] | None = None,
    sensitivity: float = DEFAULT_SENSITIVITY,
    *,
    cancel=None,
) -> np.ndarray | None:
    """Union of the chosen detectors' proposals at `sensitivity` from a precomputed analysis
    (uint8 HxW, 255 = damage); identical to `detect_damage` on the analysed photo. `kinds`
    (default: all analysed) must have been analysed. `cancel()` -> bool is polled; None = gave up."""
    from app.restore.learned import probability_threshold, propose_from_probability

    kinds = analysis.kinds if kinds is None else parse_kinds(kinds)
    missing = [k for k in kinds if k not in analysis.kinds]
    if missing:
        raise ValueError(f"not analysed: {', '.join(missing)}")
    mask = np.zeros(analysis.shape, np.uint8)
    a = analysis
    # with every learned kind proposed only their union counts; alone, a kind keeps its own pixels
    alone = any(k not in kinds for k in a.probability)
    for kind in kinds:
        if cancel is not None and cancel():
            return None
        if kind in a.probability:
            p = a.own_probability(kind) if alone else a.probability[kind]
            threshold = probability_threshold(a.thresholds[kind], sensitivity)
            found = propose_from_probability([p], threshold, a.low_ratio, a.grow_px)
        elif kind == "scratches":
            found = propose_scratches(a.scratches, a.edges, a.chroma, sensitivity, a.scratch_params, a.cleanup,
                                      cancel=cancel)
            if found is None:
                return None
        else:
            found = propose_dust(a.dust, a.edges, a.chroma, sensitivity, a.dust_params, a.cleanup)
        np.maximum(mask, found, out=mask)
    return mask


def detect_damage(
    rgb: np.ndarray,
    kinds: Iterable[str] = KINDS,
    sensitivity: float = DEFAULT_SENSITIVITY,
    *,
    cancel=None,
    dust: DustParams = DustParams(),
    scratches: ScratchParams = ScratchParams(),
    detector: str = DEFAULT_DETECTOR,
    model=None,
) -> np.ndarray:
    """Union of the chosen detectors' proposals (uint8 HxW, 255 = damage): `analyse_damage`
    then `propose_damage` (`detector`, `model`: see analyse_damage). `cancel()` -> bool is
    polled between stages; when it says so, returns None."""
    _check_rgb(rgb)
    kinds = parse_kinds(kinds)
    if not kinds:
        return np.zeros(rgb.shape[:2], np.uint8)
    analysis = analyse_damage(rgb, kinds, cancel=cancel, dust=dust, scratches=scratches, detector=detector,
                              model=model)
    if analysis is None:
        return None
    return propose_damage(analysis, kinds, sensitivity, cancel=cancel)
