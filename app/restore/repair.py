"""Tone and noise repair for old photos: pure functions, RGB uint8 in, RGB uint8 out.

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

from dataclasses import dataclass

import cv2
import numpy as np

from app.engine.pipeline import is_gray

#: below this estimated sigma (grey levels) an automatic denoise does nothing
NOISE_FLOOR = 3.0
#: the strongest denoise offered (grey levels), on the command line and in the Restore panel
DENOISE_MAX = 30.0


def _check(rgb: np.ndarray) -> np.ndarray:
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise ValueError("expected an RGB uint8 HxWx3 image")
    return np.ascontiguousarray(rgb)


def estimate_noise(rgb: np.ndarray) -> float:
    """Gaussian noise sigma in grey levels (Immerkaer 1996: a Laplacian-difference mask that
    cancels image structure to second order, mean absolute response scaled)."""
    gray = cv2.cvtColor(_check(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
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
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = cv2.fastNlMeansDenoising(lab[:, :, 0], None, h=float(strength),
                                            templateWindowSize=template, searchWindowSize=search)
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def clahe_l(rgb: np.ndarray, clip_limit: float = 1.5, tiles: int = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation on L of Lab (hue kept)."""
    rgb = _check(rgb)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    clahe = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tiles), int(tiles)))
    lab[:, :, 0] = clahe.apply(lab[:, :, 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


#: colour statistics (cast, levels) are read from a copy no larger than this (px, long side)
BALANCE_ESTIMATE_SIDE = 1024


def _statistics_copy(rgb: np.ndarray) -> np.ndarray:
    """float32 copy for colour statistics: at most BALANCE_ESTIMATE_SIDE px (enough for them,
    fast on 12 MP) and blurred (sigma 1) so that pixel noise does not pass for colour."""
    h, w = rgb.shape[:2]
    scale = min(1.0, BALANCE_ESTIMATE_SIDE / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    return cv2.GaussianBlur(small.astype(np.float32), (0, 0), 1.0)


def auto_levels(rgb: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Per-channel percentile stretch: the `low` percentile goes to 0 and `high` to 255
    (also removes a colour cast from fading, since each channel is stretched on its own)."""
    rgb = _check(rgb)
    out = np.empty_like(rgb)
    # the ends are read from a smoothed copy: single noisy pixels must not set them. After the
    # luminance-only denoise green keeps the least noise, so its raw tails were the narrowest,
    # it was stretched the most and a print turned magenta
    stats = _statistics_copy(rgb)
    for c in range(3):
        ch = rgb[:, :, c]
        lo, hi = np.percentile(stats[:, :, c], [low, high])
        if hi - lo < 1.0:
            out[:, :, c] = ch
            continue
        lut = np.clip((np.arange(256, dtype=np.float32) - lo) * (255.0 / (hi - lo)), 0, 255)
        out[:, :, c] = np.round(lut).astype(np.uint8)[ch]
    return out


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
    luts = [np.round(np.clip(np.arange(256) * g, 0, 255)).astype(np.uint8) for g in gains]
    return np.dstack([luts[c][rgb[:, :, c]] for c in range(3)])


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
) -> np.ndarray:
    """Faded-print repair: auto levels, gray-world balance, then CLAHE on L."""
    out = _check(rgb)
    if levels:
        out = auto_levels(out, low, high)
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
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    L = lab[:, :, 0].astype(np.float32)
    detail = L - cv2.GaussianBlur(L, (0, 0), float(radius))
    detail[np.abs(detail) <= threshold] = 0.0
    lab[:, :, 0] = np.clip(np.round(L + float(amount) * detail), 0, 255).astype(np.uint8)
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


@dataclass(frozen=True)
class RepairSteps:
    """Which repair steps run, with their parameters (all off = the photo is untouched)."""

    denoise: bool = False
    denoise_strength: float | None = None  # None = automatic (from the noise estimate)
    fade: bool = False  # auto levels and CLAHE on L (as `levels` and `clahe` say)
    clahe: bool = True
    clip_limit: float = 1.5
    levels: bool = True
    balance: bool = False  # gray-world balance, a toggle of its own (runs between levels and CLAHE)
    balance_strength: float = 1.0
    sharpen: bool = False
    sharpen_amount: float = 0.6
    sharpen_radius: float = 1.5

    @property
    def any(self) -> bool:
        return self.denoise or self.fade or self.balance or self.sharpen


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
                          balance_strength=steps.balance_strength)
    if steps.sharpen:
        if progress:
            progress("sharpen")
        out = sharpen(out, steps.sharpen_amount, steps.sharpen_radius)
    if gray and out is not rgb and not is_gray(out):
        level = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)  # the steps' own gray, channels joined again
        out = cv2.merge([level, level, level])
    return out.copy() if out is rgb else out
