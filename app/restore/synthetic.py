"""Synthetic old-photo damage with a known ground truth (for the benchmark and the tests).

`add_damage(clean, rng)` draws thin curved scratches of varying width and contrast,
dust specks and short hairs, creases and (when the spec asks for them) tears onto a copy
of a clean RGB uint8 photo and returns the damaged photo together with two masks:

- ``support``: every pixel the damage touched at all (anti-aliased edges included);
- ``visible``: pixels the damage changed by at least ``visible_levels`` grey levels in
  some channel — what a person would call damaged and want filled.

Pure numpy + OpenCV, deterministic for a given ``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

_SS = 4  # supersampling factor for anti-aliased drawing


@dataclass(frozen=True)
class DamageSpec:
    scratches: tuple[int, int] = (2, 6)  # count range per image
    scratch_width: tuple[float, float] = (1.0, 3.5)  # px
    scratch_length: tuple[float, float] = (0.25, 0.9)  # fraction of the longer image side
    specks_per_mp: tuple[float, float] = (80.0, 250.0)  # dust specks per megapixel
    speck_radius: tuple[float, float] = (0.7, 2.8)  # px
    hairs: tuple[int, int] = (0, 3)
    creases: tuple[int, int] = (0, 2)
    # tears: jagged bands of bare paper running in from the photo's edge (off by default, so
    # the benchmark's damage stays comparable with earlier measurements)
    tears: tuple[int, int] = (0, 0)
    grain_sigma: float = 1.5  # film grain added over the whole damaged photo (0 = none)
    # share of the scratches drawn perfectly straight, of even width and tone (film-transport
    # lines, a scrape along a ruler); 0 = none and draws nothing from the random stream, so
    # the benchmark's damage stays as measured
    straight_share: float = 0.0
    visible_levels: int = 12


# what bench/restore.py measures and tools/train_detector.py calibrates on: the defaults
# plus up to one tear per photo
BENCH_DAMAGE = DamageSpec(tears=(0, 1))


def widened(spec: DamageSpec, factor: float) -> DamageSpec:
    """`spec` with its scratches and specks `factor` times wider: the same damage on a scan made
    at `factor` times the resolution of the photos (a print scanned at 1200 dpi has 3-10 px
    scratches, where the training photos' are 1-4.5 px)."""
    return replace(spec, scratch_width=tuple(w * factor for w in spec.scratch_width),
                   speck_radius=tuple(r * factor for r in spec.speck_radius))


@dataclass(eq=False)
class Damage:
    image: np.ndarray  # damaged RGB uint8
    support: np.ndarray  # uint8 0/255: touched at all
    visible: np.ndarray  # uint8 0/255: changed by >= visible_levels
    # which detector each touched pixel belongs to (uint8 0/255; for training a learned
    # detector per kind): scratches and creases; dust specks and hairs
    lines: np.ndarray | None = None
    specks: np.ndarray | None = None


def _curve(rng: np.random.Generator, start: np.ndarray, angle: float, length: float, wiggle: float) -> np.ndarray:
    """A smooth random curve (points 1 px apart) whose direction drifts slowly."""
    n = max(int(length), 2)
    # curvature: low-pass filtered noise, so the path bends gently
    k = rng.normal(0.0, wiggle, n)
    k = np.convolve(k, np.ones(25) / 25.0, mode="same")
    theta = angle + np.cumsum(k)
    steps = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return start[None, :] + np.cumsum(steps, axis=0)


def _draw_path(alpha: np.ndarray, pts: np.ndarray, widths: np.ndarray, strengths: np.ndarray) -> None:
    """Max-composite an anti-aliased path of varying width/strength into `alpha` (float32 HxW)."""
    h, w = alpha.shape
    pad = int(np.ceil(widths.max())) + 3
    x0 = int(max(np.floor(pts[:, 0].min()) - pad, 0))
    y0 = int(max(np.floor(pts[:, 1].min()) - pad, 0))
    x1 = int(min(np.ceil(pts[:, 0].max()) + pad, w))
    y1 = int(min(np.ceil(pts[:, 1].max()) + pad, h))
    if x1 <= x0 or y1 <= y0:
        return
    seg = 6  # points per drawn segment: width and strength change along the path
    for i in range(0, len(pts) - 1, seg):
        chunk = pts[i : i + seg + 1]
        if len(chunk) < 2:
            continue
        canvas = np.zeros(((y1 - y0) * _SS, (x1 - x0) * _SS), np.uint8)
        poly = np.round((chunk - [x0, y0]) * _SS + (_SS - 1) / 2.0).astype(np.int32)
        thick = max(round(widths[i] * _SS), 1)
        cv2.polylines(canvas, [poly], False, 255, thickness=thick, lineType=cv2.LINE_8)
        cov = cv2.resize(canvas, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        view = alpha[y0:y1, x0:x1]
        np.maximum(view, cov * strengths[i], out=view)


def _smooth_profile(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    knots = rng.uniform(lo, hi, max(n // 40, 2) + 1)
    return np.interp(np.linspace(0, len(knots) - 1, n), np.arange(len(knots)), knots)


def _composite(img: np.ndarray, alpha: np.ndarray, target: np.ndarray) -> np.ndarray:
    a = alpha[:, :, None]
    return img * (1.0 - a) + target * a


def add_damage(clean: np.ndarray, rng: np.random.Generator, spec: DamageSpec = DamageSpec()) -> Damage:
    h, w = clean.shape[:2]
    side = max(h, w)
    img = clean.astype(np.float32)
    support = np.zeros((h, w), bool)
    kinds = {"lines": np.zeros((h, w), bool), "specks": np.zeros((h, w), bool)}

    def paint(alpha: np.ndarray, target: np.ndarray, kind: str) -> None:
        """Blend `target` (a colour, or a colour per pixel) in by `alpha`; record the touch."""
        nonlocal img
        img = _composite(img, alpha, target)
        touched = alpha > 0.02
        support[touched] = True
        kinds[kind][touched] = True

    def layer(alpha: np.ndarray, tone: float, kind: str) -> None:
        paint(alpha, np.clip(tone + rng.normal(0, 4, 3), 0, 255).astype(np.float32), kind)

    # scratches: thin, curved, bright (emulsion scraped off) or dark (dirt in the groove)
    for _ in range(int(rng.integers(spec.scratches[0], spec.scratches[1] + 1))):
        alpha = np.zeros((h, w), np.float32)
        length = rng.uniform(*spec.scratch_length) * side
        start = rng.uniform([0, 0], [w, h])
        if spec.straight_share > 0 and rng.random() < spec.straight_share:
            pts = _curve(rng, start, rng.uniform(0, 2 * np.pi), length, wiggle=0.0)
            widths = np.full(len(pts), max(rng.uniform(*spec.scratch_width), 0.8))
            strengths = np.full(len(pts), rng.uniform(0.5, 1.0))
        else:
            pts = _curve(rng, start, rng.uniform(0, 2 * np.pi), length, wiggle=rng.uniform(0.002, 0.02))
            base_w = rng.uniform(*spec.scratch_width)
            widths = np.clip(_smooth_profile(rng, len(pts), 0.6, 1.2) * base_w, 0.8, None)
            strengths = _smooth_profile(rng, len(pts), *sorted(rng.uniform(0.35, 1.0, 2)))
        _draw_path(alpha, pts, widths, strengths)
        layer(alpha, rng.uniform(225, 255) if rng.random() < 0.65 else rng.uniform(10, 50), "lines")

    # creases: long, gentle, wider, lower contrast; a bright crack with a faint shadow beside it
    for _ in range(int(rng.integers(spec.creases[0], spec.creases[1] + 1))):
        length = rng.uniform(0.6, 1.2) * side
        start = rng.uniform([0, 0], [w, h])
        ang = rng.uniform(0, 2 * np.pi)
        start = start - 0.5 * length * np.array([np.cos(ang), np.sin(ang)])
        pts = _curve(rng, start, ang, length, wiggle=rng.uniform(0.0005, 0.004))
        base_w = rng.uniform(2.0, 4.5)
        widths = np.clip(_smooth_profile(rng, len(pts), 0.7, 1.2) * base_w, 1.0, None)
        strengths = _smooth_profile(rng, len(pts), 0.3, 0.8)
        normal = np.stack([-np.sin(ang), np.cos(ang)])
        shadow = np.zeros((h, w), np.float32)
        _draw_path(shadow, pts + normal * (base_w * 0.5 + 1.5), widths * 0.8, strengths * 0.5)
        layer(shadow, rng.uniform(30, 70), "lines")
        crack = np.zeros((h, w), np.float32)
        _draw_path(crack, pts, widths, strengths)
        layer(crack, rng.uniform(215, 250), "lines")

    # tears: a rip starts at the print's edge and runs inwards on a jagged path; where the
    # pieces meet, the white paper core shows as a fibrous band of uneven width
    n_tears = int(rng.integers(spec.tears[0], spec.tears[1] + 1)) if spec.tears[1] > 0 else 0  # same stream when off
    for _ in range(n_tears):
        pts = _tear_path(rng, h, w)
        n = len(pts)
        base_w = rng.uniform(1.5, 6.0)
        widths = np.clip(_smooth_profile(rng, n, 0.5, 1.3) * base_w * rng.uniform(0.7, 1.3, n), 1.0, None)
        alpha = np.zeros((h, w), np.float32)
        _draw_path(alpha, pts, widths, rng.uniform(0.75, 1.0, n))
        tone = rng.uniform(205, 250)
        paper = np.array([tone, tone - rng.uniform(0, 6), tone - rng.uniform(3, 18)], np.float32)
        fibres = rng.normal(0, 6, (h, w, 1)).astype(np.float32)
        paint(alpha, paper + fibres, "lines")

    # dust specks: small irregular blobs, mostly dark on a print scan, some bright
    mp = h * w / 1e6
    n_specks = int(rng.uniform(*spec.specks_per_mp) * mp) + 3
    dark = np.zeros((h, w), np.float32)
    bright = np.zeros((h, w), np.float32)
    for _ in range(n_specks):
        c = rng.uniform([0, 0], [w, h])
        r = rng.uniform(*spec.speck_radius)
        blobs = []
        for _k in range(int(rng.integers(1, 4))):
            off = rng.normal(0, r * 0.5, 2)
            blobs.append((c + off, r * rng.uniform(0.6, 1.1), r * rng.uniform(0.4, 1.0), rng.uniform(0, 180)))
        _stamp_blobs(dark if rng.random() < 0.7 else bright, blobs, rng.uniform(0.6, 1.0))
    # hairs / fibres: short thin curls
    for _ in range(int(rng.integers(spec.hairs[0], spec.hairs[1] + 1))):
        pts = _curve(rng, rng.uniform([0, 0], [w, h]), rng.uniform(0, 2 * np.pi), rng.uniform(15, 60), 0.08)
        n = len(pts)
        _draw_path(dark, pts, np.full(n, rng.uniform(1.0, 1.8)), np.full(n, rng.uniform(0.6, 0.95)))
    layer(dark, rng.uniform(10, 45), "specks")
    layer(bright, rng.uniform(220, 255), "specks")

    if spec.grain_sigma > 0:
        grain = rng.normal(0.0, spec.grain_sigma, (h, w, 1)).astype(np.float32)
        img = img + grain
    out = np.clip(np.round(img), 0, 255).astype(np.uint8)
    change = np.abs(out.astype(np.int16) - clean.astype(np.int16)).max(axis=2)
    visible = (change >= spec.visible_levels) & support
    return Damage(
        image=out,
        support=np.where(support, 255, 0).astype(np.uint8),
        visible=np.where(visible, 255, 0).astype(np.uint8),
        lines=np.where(kinds["lines"], 255, 0).astype(np.uint8),
        specks=np.where(kinds["specks"], 255, 0).astype(np.uint8),
    )


def _tear_path(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """From a random point of the border inwards: a meandering curve with a short-range zigzag
    across it (torn fibres), cut where it leaves the photo."""
    t = rng.uniform(0.1, 0.9)
    edge = int(rng.integers(4))
    start, inward = [((t * w, 0.0), np.pi / 2), ((w - 1.0, t * h), np.pi), ((t * w, h - 1.0), -np.pi / 2),
                     ((0.0, t * h), 0.0)][edge]
    length = rng.uniform(0.3, 1.0) * max(h, w)
    pts = _curve(rng, np.array(start), inward + rng.uniform(-0.7, 0.7), length, wiggle=rng.uniform(0.004, 0.015))
    d = np.gradient(pts, axis=0)
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1) / (np.linalg.norm(d, axis=1, keepdims=True) + 1e-6)
    zigzag = np.convolve(rng.normal(0, 1.6, len(pts)), np.ones(4) / 4, mode="same") * rng.uniform(0.8, 2.0)
    pts = pts + normal * zigzag[:, None]
    inside = (pts[:, 0] >= -2) & (pts[:, 0] <= w + 1) & (pts[:, 1] >= -2) & (pts[:, 1] <= h + 1)
    return pts if inside.all() else pts[: max(int(np.argmin(inside)), 2)]


def _stamp_blobs(alpha: np.ndarray, blobs: list, strength: float) -> None:
    h, w = alpha.shape
    cx = np.mean([b[0][0] for b in blobs])
    cy = np.mean([b[0][1] for b in blobs])
    pad = int(max(max(b[1], b[2]) for b in blobs) + 4 + max(np.hypot(*(b[0] - [cx, cy])) for b in blobs))
    x0, y0 = max(int(cx) - pad, 0), max(int(cy) - pad, 0)
    x1, y1 = min(int(cx) + pad + 1, w), min(int(cy) + pad + 1, h)
    if x1 <= x0 or y1 <= y0:
        return
    canvas = np.zeros(((y1 - y0) * _SS, (x1 - x0) * _SS), np.uint8)
    for centre, ax, ay, ang in blobs:
        c = tuple(int(v) for v in np.round((centre - [x0, y0]) * _SS + (_SS - 1) / 2.0))
        axes = (max(round(ax * _SS), 1), max(round(ay * _SS), 1))
        cv2.ellipse(canvas, c, axes, float(ang), 0, 360, 255, -1, lineType=cv2.LINE_8)
    cov = cv2.resize(canvas, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    view = alpha[y0:y1, x0:x1]
    np.maximum(view, cov * strength, out=view)


@dataclass(frozen=True)
class Score:
    precision: float  # share of proposed pixels within `tolerance` px of touched (support) pixels
    recall: float  # share of visible damage pixels within `tolerance` px of a proposed pixel
    flagged: float  # share of all pixels proposed


class ProposalScorer:
    """`score_proposal` of many proposals against one damage: the truth's tolerance band is
    computed once (threshold calibration scores thousands of proposals per photo)."""

    def __init__(self, damage: Damage | None, tolerance: int = 2):
        self.kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tolerance + 1,) * 2)
        self.clean = damage is None
        if damage is not None:
            self.near_truth = cv2.dilate(damage.support, self.kernel) > 0
            self.visible = damage.visible > 0
            self.visible_count = int(self.visible.sum())

    def __call__(self, proposal: np.ndarray) -> Score:
        prop = proposal > 0
        flagged = float(prop.mean())
        if self.clean:
            return Score(precision=0.0 if prop.any() else 1.0, recall=1.0, flagged=flagged)
        near_prop = cv2.dilate(proposal, self.kernel) > 0
        proposed = int(prop.sum())
        precision = float((prop & self.near_truth).sum() / proposed) if proposed else 1.0
        recall = float((self.visible & near_prop).sum() / self.visible_count) if self.visible_count else 1.0
        return Score(precision=precision, recall=recall, flagged=flagged)


def score_proposal(proposal: np.ndarray, damage: Damage | None, tolerance: int = 2) -> Score:
    """Pixel-wise precision/recall with a tolerance band (a proposal pixel counts as right
    when it lies within `tolerance` px of any touched pixel; a visible damage pixel counts
    as found when a proposal pixel lies within `tolerance` px). `damage=None`: a clean photo,
    where every proposed pixel is a false positive."""
    return ProposalScorer(damage, tolerance)(proposal)
