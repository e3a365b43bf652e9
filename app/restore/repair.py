"""Tone and noise repair for old photos: pure functions, RGB in, RGB of the same depth out.
Every step takes 8-bit (uint8) or 16-bit (uint16) RGB; parameters are in 8-bit levels either
way, and a 16-bit scan is repaired at 16 bits (a levels stretch of a faded scan in 8 bits
leaves gaps in its histogram, the banding a 16-bit scan is made to avoid).

- `estimate_noise`: Immerkaer's fast noise sigma on the luminance;
- `denoise`: non-local means on L of Lab, only when the estimate says the photo is noisy
  (or when a strength is given);
- `clahe_l`, `auto_levels`, `gray_world` (a gray-edge cast estimate), and `repair_fade` combining them for faded prints
  (gray-world is a step of its own in `RepairSteps`: it would undo a sepia or a wanted tone);
- `sharpen`: unsharp mask with a threshold so grain is not amplified.

`RepairSteps` + `apply_repairs` run the chosen steps in the usual order
(denoise -> fade: auto levels, gray-world balance, CLAHE -> sharpen) for the command line
and the editor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from app.engine.pipeline import is_gray
from app.io.images import to_8_bit

#: below this estimated sigma (grey levels) an automatic denoise does nothing
NOISE_FLOOR = 3.0
#: the strongest denoise offered (grey levels), on the command line and in the Restore panel
DENOISE_MAX = 30.0


#: 8-bit levels -> 16-bit levels
DEEP_SCALE = 257.0
#: NL-means on 16 bits weighs patches by their L1 distance (OpenCV has no L2 there): this h (in
#: proportion to the 8-bit h) gave the 8-bit result within 0.3-0.7 levels at noise sigma 4-20
DEEP_NLM_H = 0.8


def _check(rgb: np.ndarray) -> np.ndarray:
    if not (isinstance(rgb, np.ndarray) and rgb.dtype in (np.uint8, np.uint16) and rgb.ndim == 3
            and rgb.shape[2] == 3):
        raise ValueError("expected an RGB HxWx3 image of 8 or 16 bits per channel")
    return np.ascontiguousarray(rgb)


def _deep(rgb: np.ndarray) -> bool:
    return rgb.dtype == np.uint16


#: rows per pass of the 16-bit Lab conversions: float copies of a strip, not of a 100 MP photo
LAB_ROWS = 512


def _to_lab(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Lab, L): 8-bit Lab as OpenCV scales it (L 0..255) for uint8; for uint16 float32 Lab and
    L as uint16 0..65535. Write the new L back with `_from_lab`."""
    if not _deep(rgb):
        lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
        return lab, lab[:, :, 0].copy()
    lab = np.empty(rgb.shape, np.float32)
    L = np.empty(rgb.shape[:2], np.uint16)
    for y in range(0, rgb.shape[0], LAB_ROWS):
        rows = slice(y, y + LAB_ROWS)
        part = rgb[rows].astype(np.float32)
        part *= np.float32(1.0 / 65535.0)
        lab[rows] = cv2.cvtColor(part, cv2.COLOR_RGB2LAB)
        L[rows] = np.round(lab[rows, :, 0] * np.float32(655.35))
    return lab, L


def _from_lab(lab: np.ndarray, L: np.ndarray) -> np.ndarray:
    """RGB of `lab` with its L replaced by `L` (as `_to_lab` gave it, maybe float), at Lab's depth."""
    if lab.dtype == np.uint8:
        lab[:, :, 0] = L
        return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    out = np.empty(lab.shape, np.uint16)
    for y in range(0, lab.shape[0], LAB_ROWS):
        rows = slice(y, y + LAB_ROWS)
        lab[rows, :, 0] = L[rows] * np.float32(1.0 / 655.35)
        part = cv2.cvtColor(lab[rows], cv2.COLOR_LAB2RGB)
        np.clip(part, 0.0, 1.0, out=part)
        part *= np.float32(65535.0)
        out[rows] = np.round(part)
    return out


def _lut(rgb: np.ndarray, channel: int, curve: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """One channel through `curve(levels)`, levels 0..255 (or 0..65535), rounded and clipped."""
    peak = 65535 if _deep(rgb) else 255
    table = np.round(np.clip(curve(np.arange(peak + 1, dtype=np.float32)), 0, peak)).astype(rgb.dtype)
    return table[rgb[:, :, channel]]


def estimate_noise(rgb: np.ndarray) -> float:
    """Gaussian noise sigma in grey levels (Immerkaer 1996: a Laplacian-difference mask that
    cancels image structure to second order, mean absolute response scaled)."""
    rgb = _check(rgb)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    if _deep(rgb):
        gray *= np.float32(1.0 / DEEP_SCALE)
    h, w = gray.shape
    if h < 3 or w < 3:
        return 0.0
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    resp = cv2.filter2D(gray, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2.0) / (6.0 * (w - 2) * (h - 2)) * np.abs(resp).sum())


def denoise(rgb: np.ndarray, strength: float | None = None, *, template: int = 7, search: int = 21) -> np.ndarray:
    """Non-local means on L (colour untouched). `strength` is the NL-means h in grey levels;
    None = automatic: h from the noise estimate, and no change at all when it is below
    NOISE_FLOOR (a clean photo must not be smeared)."""
    rgb = _check(rgb)
    if strength is None:
        sigma = estimate_noise(rgb)
        if sigma < NOISE_FLOOR:
            return rgb.copy()
        strength = 1.2 * sigma
    if strength <= 0:
        return rgb.copy()
    lab, L = _to_lab(rgb)
    if _deep(rgb):
        L = cv2.fastNlMeansDenoising(L, [float(strength) * DEEP_SCALE * DEEP_NLM_H], None,
                                     templateWindowSize=template, searchWindowSize=search, normType=cv2.NORM_L1)
    else:
        L = cv2.fastNlMeansDenoising(L, None, h=float(strength), templateWindowSize=template, searchWindowSize=search)
    return _from_lab(lab, L)


def clahe_l(rgb: np.ndarray, clip_limit: float = 1.5, tiles: int = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation on L of Lab (hue kept)."""
    rgb = _check(rgb)
    lab, L = _to_lab(rgb)
    if _deep(rgb):
        L = clahe_16(L, clip_limit, tiles)
    else:
        L = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tiles), int(tiles))).apply(L)
    return _from_lab(lab, L)


def clahe_16(L: np.ndarray, clip_limit: float = 1.5, tiles: int = 8) -> np.ndarray:
    """OpenCV's 8-bit CLAHE carried to 16 bits: the same tiles, clipped histograms (of the
    levels rounded to 8 bits) and lookup tables as `cv2.createCLAHE(...).apply`, each table read
    between its entries at the 16-bit level. OpenCV's own 16-bit CLAHE counts 65536 bins, so
    its clip limit (at least 1 per bin) clips nearly everything: another, much harsher curve."""
    h, w = L.shape
    tables, th, tw = _clahe_tables(to_8_bit(L), clip_limit, tiles)
    flat = tables.reshape(-1)
    # each pixel between the centres of its four nearest tiles, as OpenCV interpolates
    x1, x2, xa = _tile_weights(w, tw, tiles)
    out = np.empty((h, w), np.uint16)
    for y0 in range(0, h, 256):
        y1, y2, ya = _tile_weights(min(y0 + 256, h), th, tiles, start=y0)
        y1, y2, ya = y1[:, None], y2[:, None], ya[:, None]
        level = L[y0:y0 + 256].astype(np.float32) * np.float32(1.0 / DEEP_SCALE)
        entry = np.minimum(level.astype(np.int64), 255)
        frac = level - entry
        row1 = (1 - ya) * ((1 - xa) * _read(flat, y1 * tiles + x1, entry, frac) + xa * _read(flat, y1 * tiles + x2, entry, frac))
        row2 = ya * ((1 - xa) * _read(flat, y2 * tiles + x1, entry, frac) + xa * _read(flat, y2 * tiles + x2, entry, frac))
        out[y0:y0 + 256] = np.round(np.clip((row1 + row2) * np.float32(DEEP_SCALE), 0, 65535))
    return out


def _clahe_tables(L8: np.ndarray, clip_limit: float, tiles: int) -> tuple[np.ndarray, int, int]:
    """(tiles x tiles x 257 float32 lookup tables, the last entry repeated; tile height, width),
    as OpenCV's CLAHE builds them (its padding, clip limit and spread of the clipped counts)."""
    h, w = L8.shape
    pad_y, pad_x = (0, 0) if h % tiles == 0 and w % tiles == 0 else (tiles - h % tiles, tiles - w % tiles)
    padded = cv2.copyMakeBorder(L8, 0, pad_y, 0, pad_x, cv2.BORDER_REFLECT_101) if pad_y or pad_x else L8
    th, tw = padded.shape[0] // tiles, padded.shape[1] // tiles
    area = th * tw
    limit = max(int(float(clip_limit) * area / 256), 1) if clip_limit > 0 else 0
    tables = np.empty((tiles, tiles, 257), np.float32)
    for ty in range(tiles):
        for tx in range(tiles):
            hist = np.bincount(padded[ty * th:(ty + 1) * th, tx * tw:(tx + 1) * tw].ravel(), minlength=256)
            if limit:
                clipped = int(np.maximum(hist - limit, 0).sum())
                hist = np.minimum(hist, limit) + clipped // 256
                residual = clipped % 256
                if residual:  # OpenCV's spread of the remainder: one each, every (256 // residual)th bin
                    hist[np.arange(0, 256, max(256 // residual, 1))[:residual]] += 1
            tables[ty, tx, :256] = np.clip(np.round(np.cumsum(hist) * np.float32(255.0 / area)), 0, 255)
            tables[ty, tx, 256] = tables[ty, tx, 255]
    return tables, th, tw


def _tile_weights(stop: int, size: int, tiles: int, start: int = 0):
    """For positions start..stop-1: the tiles whose centres lie before and after, and the weight
    of the one after (clamped at the edges), as OpenCV's CLAHE interpolates."""
    pos = np.arange(start, stop, dtype=np.float32) / np.float32(size) - np.float32(0.5)
    first = np.floor(pos).astype(np.int64)
    weight = (pos - first).astype(np.float32)
    return np.maximum(first, 0), np.minimum(first + 1, tiles - 1), weight


def _read(flat: np.ndarray, tile: np.ndarray, entry: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Tables `tile` read at the fractional level entry + frac."""
    index = tile * 257 + entry
    return flat[index] * (1 - frac) + flat[index + 1] * frac


#: colour statistics (cast, levels) are read from a copy no larger than this (px, long side)
BALANCE_ESTIMATE_SIDE = 1024


def _statistics_copy(rgb: np.ndarray) -> np.ndarray:
    """float32 copy for colour statistics: at most BALANCE_ESTIMATE_SIDE px (enough for them,
    fast on 12 MP) and blurred (sigma 1) so that pixel noise does not pass for colour; in
    8-bit levels whatever the photo's depth."""
    h, w = rgb.shape[:2]
    scale = min(1.0, BALANCE_ESTIMATE_SIDE / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    levels = small.astype(np.float32) * np.float32(1.0 / DEEP_SCALE) if _deep(rgb) else small.astype(np.float32)
    return cv2.GaussianBlur(levels, (0, 0), 1.0)


def auto_levels(rgb: np.ndarray, low: float = 0.5, high: float = 99.5, linked: bool = False) -> np.ndarray:
    """Per-channel percentile stretch: the `low` percentile goes to 0 and `high` to 255
    (also removes a colour cast from fading, since each channel is stretched on its own).
    `linked`: the lightness (L of Lab) alone is stretched, so a sepia or toned print keeps its
    colour, hue and strength (per channel, a sepia print's chroma fell from 18 to nothing; the
    three channels stretched alike doubled it)."""
    rgb = _check(rgb)
    # the ends are read from a smoothed copy: single noisy pixels must not set them. After the
    # luminance-only denoise green keeps the least noise, so its raw tails were the narrowest,
    # it was stretched the most and a print turned magenta
    stats = _statistics_copy(rgb)
    if linked:
        return _stretch_lightness(rgb, stats, low, high)
    out = np.empty_like(rgb)
    scale = DEEP_SCALE if _deep(rgb) else 1.0
    ends = [np.percentile(stats[:, :, c], [low, high]) for c in range(3)]
    for c in range(3):
        lo, hi = ends[c]
        if hi - lo < 1.0:
            out[:, :, c] = rgb[:, :, c]
            continue
        lo, gain = lo * scale, 255.0 / (hi - lo)
        out[:, :, c] = _lut(rgb, c, lambda levels, lo=lo, gain=gain: (levels - lo) * gain)
    return out


def _stretch_lightness(rgb: np.ndarray, stats: np.ndarray, low: float, high: float) -> np.ndarray:
    """Levels on L of Lab alone (`auto_levels` with `linked`): the percentiles of the smoothed
    copy's lightness go to black and white, a and b stay."""
    lightness = cv2.cvtColor(stats * np.float32(1.0 / 255.0), cv2.COLOR_RGB2LAB)[:, :, 0]  # 0..100
    lo, hi = np.percentile(lightness, [low, high])
    if hi - lo < 0.5:
        return rgb.copy()
    lab, L = _to_lab(rgb)
    peak = 65535 if _deep(rgb) else 255
    stretched = (L.astype(np.float32) - np.float32(lo * peak / 100.0)) * np.float32(100.0 / (hi - lo))
    return _from_lab(lab, np.round(np.clip(stretched, 0, peak)).astype(rgb.dtype))


#: Minkowski order of the edge pooling in `cast_estimate` (4 and 6 measured equal, 1 and 2 worse)
EDGE_NORM = 4.0


def cast_estimate(rgb: np.ndarray, norm: float = EDGE_NORM) -> np.ndarray:
    """The colour of the light (3 channel weights, mean 1) under the gray-edge hypothesis
    (van de Weijer et al. 2007): the colour *difference* across the photo's edges is gray.
    Unlike the plain channel means (gray-world), one big coloured area - an orange suit, a
    lawn, a sky - does not pass for a cast. The edges are pooled with a Minkowski norm of
    order `norm` (EDGE_NORM), so strong edges count most and fine noise hardly at all: with a plain
    mean (order 1) the chroma noise that luminance-only denoising leaves behind passed for a
    cast (a warm print turned green after Denoise + balance). bench/balance.py, 90 photos with
    random casts: mean angular error 3.04 degrees (order 1: 3.34, channel means 7.40), with
    noise of sigma 10 denoised first 3.15 (order 1: 5.17); with synthetic scratches and dust
    still in the photo 3.48 (order 1: 3.17), so the restore fills the damage before it
    balances. A photo without edges falls back to the channel means."""
    img = _statistics_copy(_check(rgb))
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, borderType=cv2.BORDER_REFLECT)
    magnitude = np.sqrt(gx * gx + gy * gy).reshape(-1, 3).astype(np.float64)
    edges = np.mean(magnitude**norm, axis=0) ** (1.0 / norm)
    estimate = edges if edges.mean() > 0.5 else img.reshape(-1, 3).mean(axis=0)
    return estimate / max(float(estimate.mean()), 1e-6)


def gray_world(rgb: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Colour balance: divide out the cast of `cast_estimate` (gray-edge, the gray-world
    idea applied to edges); `strength` 0..1 blends the channel gains towards 1."""
    rgb = _check(rgb)
    return balanced_by(rgb, cast_estimate(rgb), strength)


def balanced_by(rgb: np.ndarray, cast: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """`rgb` with the cast (channel weights, mean 1) divided out; a copy when a channel is all
    but missing (nothing sensible to scale)."""
    if np.any(cast < 0.05):
        return rgb.copy()
    gains = 1.0 + float(np.clip(strength, 0.0, 1.0)) * (1.0 / cast - 1.0)
    return np.dstack([_lut(rgb, c, lambda levels, g=g: levels.astype(np.float64) * g) for c, g in enumerate(gains)])


def repair_fade(
    rgb: np.ndarray,
    *,
    clahe: bool = True,
    clip_limit: float = 1.5,
    levels: bool = True,
    low: float = 0.5,
    high: float = 99.5,
    balance: bool = True,
    balance_strength: float = 1.0,
    keep_tone: bool = False,
) -> np.ndarray:
    """Faded-print repair: auto levels (of the lightness alone with `keep_tone`), gray-world
    balance, then CLAHE on L."""
    out = _check(rgb)
    if levels:
        out = auto_levels(out, low, high, linked=keep_tone)
    if balance:
        out = gray_world(out, balance_strength)
    if clahe:
        out = clahe_l(out, clip_limit)
    return out.copy() if out is rgb else out


def sharpen(rgb: np.ndarray, amount: float = 0.6, radius: float = 1.5, threshold: int = 3) -> np.ndarray:
    """Unsharp mask on L: L + amount * (L - blur(L)) where |L - blur(L)| > threshold."""
    rgb = _check(rgb)
    if amount <= 0:
        return rgb.copy()
    lab, L = _to_lab(rgb)
    L = L.astype(np.float32)
    peak, scale = (65535, DEEP_SCALE) if _deep(rgb) else (255, 1.0)
    detail = L - cv2.GaussianBlur(L, (0, 0), float(radius))
    detail[np.abs(detail) <= threshold * scale] = 0.0
    return _from_lab(lab, np.clip(np.round(L + float(amount) * detail), 0, peak).astype(rgb.dtype))


@dataclass(frozen=True)
class RepairSteps:
    """Which repair steps run, with their parameters (all off = the photo is untouched)."""

    denoise: bool = False
    denoise_strength: float | None = None  # None = automatic (from the noise estimate)
    fade: bool = False  # auto levels and CLAHE on L (as `levels` and `clahe` say)
    clahe: bool = True
    clip_limit: float = 1.5
    levels: bool = True
    keep_tone: bool = False  # auto levels stretch the lightness alone: a sepia or toned print keeps its colour
    balance: bool = False  # gray-world balance, a toggle of its own (runs between levels and CLAHE)
    balance_strength: float = 1.0
    sharpen: bool = False
    sharpen_amount: float = 0.6
    sharpen_radius: float = 1.5

    @property
    def any(self) -> bool:
        return self.denoise or self.fade or self.balance or self.sharpen

    @property
    def names(self) -> list[str]:
        """The steps ticked, in the order they run: "denoise", "fade", "balance", "sharpen"."""
        return [name for name, on in (("denoise", self.denoise), ("fade", self.fade), ("balance", self.balance),
                                      ("sharpen", self.sharpen)) if on]


def apply_repairs(rgb: np.ndarray, steps: RepairSteps, progress=None) -> np.ndarray:
    """Run the enabled steps in order; `progress(name)` is called before each. A gray photo
    comes back gray: the steps work in Lab and round each channel on its own, which leaves
    channels a level or two apart (and a gray scan exported as colour)."""
    out = _check(rgb)
    gray = is_gray(out)
    if steps.denoise:
        if progress:
            progress("denoise")
        out = denoise(out, steps.denoise_strength)
    if steps.fade or steps.balance:
        if progress:
            for name, on in (("fade", steps.fade), ("balance", steps.balance)):
                if on:
                    progress(name)
        out = repair_fade(out, clahe=steps.fade and steps.clahe, clip_limit=steps.clip_limit,
                          levels=steps.fade and steps.levels, balance=steps.balance,
                          balance_strength=steps.balance_strength, keep_tone=steps.keep_tone)
    if steps.sharpen:
        if progress:
            progress("sharpen")
        out = sharpen(out, steps.sharpen_amount, steps.sharpen_radius)
    if gray and out is not rgb and not is_gray(out):
        level = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)  # the steps' own gray (uint16 too), channels joined again
        out = cv2.merge([level, level, level])
    return out.copy() if out is rgb else out
