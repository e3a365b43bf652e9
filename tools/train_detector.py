"""Train the learned old-photo damage detector (issue 6) on the CPU, and export it to ONNX.

A small fully convolutional net looks at an RGB photo and gives, per pixel, the
probability of two kinds of damage: "scratches" (scratches, creases) and "dust" (specks,
hairs). The app (app/restore/learned.py) runs it once per photo; the sensitivity slider
only thresholds the map.

Architecture (DamageNet), built for one CPU core on 12 MP photos: 8 channels at full
resolution (thin lines and 1-px specks need it), 16 at 1/2, and a 48-channel dilated
context branch at 1/4 (receptive field ~250 px: is this line alone, or one of a row of
railings and window frames?); the coarse features are added back to the full-resolution
ones by bilinear upsampling.

Data: synthetic damage (app/restore/synthetic.py) drawn onto clean photos from
bsds500/train, bsds500/val and urban100 photos 3-22 (sorted; URBAN_TRAIN): Urban100's
railings, window frames and cables are the real thin lines a scratch detector must leave
alone, and BSDS500 has few of them. bsds500/test, sun_hays80 and urban100 from photo 27 on
are bench/restore.py's report sets and are never read here. The last VALIDATION photos of
bsds500/val and urban100 photos 23-26 (URBAN_VALIDATION) are not trained on; they
calibrate the probability thresholds of the default sensitivity. Every damaged photo has
its own seed and randomly varied damage parameters (counts, widths, contrast, speck size,
grain, tears), and some are left undamaged or grain-free, so the net does not learn one
generator setting's quirks. With --scale-min, photos larger than 600 px (Urban100's) are
also drawn at a random smaller scale, so that a crop holds more of a facade's grid of
mullions. Photos are drawn from a pool that is refreshed with a new damaged photo every
--refresh steps; the pool at any step is a function of (--seed, step), so a resumed run
sees exactly what an uninterrupted one would.

With --grid-share, that share of the photos also gets a painted regular grid of thin lines
(paint_grid: mullions, railings, fences at a random angle and perspective), labelled "no
damage": facade grids are the detector's main false alarm, and 20 city photos are few.
With --wave-share, that share of the grids has lines that follow one smooth wave (paving laid
in curved rows: the worst false alarm of the grid-trained model).
With --cast-share, that share of the photos (damaged or not) gets a colour cast over
everything, damage included (a yellowed print, a scanner's white balance; see random_cast):
nets trained on neutral damage only take a tinted scratch for part of the picture.

Labels per kind: 1 where that kind changed the photo visibly (>= 12 grey levels), ignored
where the damage touched the photo only faintly (and 1 px around it: the benchmark counts
a proposal within 2 px of damage as right), 0 elsewhere.

Usage:
    python tools/train_detector.py --run .runs/detector                # start or resume
    python tools/train_detector.py --run .runs/detector --export models/damage_detector.onnx
    python tools/train_detector.py --run .runs/a --ensemble .runs/b .runs/c --export OUT.onnx
    python tools/train_detector.py --search-members .runs/a .runs/b .runs/c .runs/d --sizes 2 3
The shipped model is such an ensemble (the mean of several runs' logits; models/damage_detector.md
gives each run's options); --search-members ranks the ensembles of a set of runs on the
calibration photos (the logits of each run are cached in <run>/calibration_logits.npz).
Checkpoint: <run>/latest.pt (every --ckpt-every steps and on SIGTERM/Ctrl+C); losses and
validation scores: <run>/log.csv.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.restore.learned import propose_from_probability
from app.restore.synthetic import BENCH_DAMAGE, DamageSpec, ProposalScorer, add_damage, score_proposal, widened

DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
KINDS = ("scratches", "dust")  # output channels, in this order (app/restore/detect.py's KINDS)
VALIDATION = 20  # last photos of bsds500/val: threshold calibration, never trained on
# urban100 photos by sorted index: 0-2 tune the hand-made filters (bench/restore.py "dev"),
# 27 on are bench/restore.py's held-out "urban" set
URBAN_TRAIN = slice(3, 23)
URBAN_VALIDATION = slice(23, 27)
URBAN_REPEAT = 3  # urban photos appear this many times in the training list (20 vs 280 bsds)
LARGE = 600  # px: photos with a longer side than this are rescaled by --scale-min
STRIDE = 4  # the net's input sides must be multiples of this
CALIBRATION_TIE = 0.005  # min(precision, recall) differences below this are calibration noise


# ---------------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------------
def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, dilation, dilation=dilation), nn.ReLU(inplace=True))


class DamageNet(nn.Module):
    """RGB [N,3,H,W] in [0,1] -> logits [N,2,H,W] (scratches, dust); H, W multiples of 4."""

    def __init__(self, width: int = 8, context_width: int = 48, dilations=(2, 4, 8, 16), contrast: bool = False):
        super().__init__()
        w, c = width, context_width
        self.config = {"width": width, "context_width": context_width, "dilations": list(dilations)}
        # with `contrast`, a fourth input channel: the grey image divided by its local contrast,
        # in which a dark speck on dark paving stands out as much as one on a light wall
        self.contrast = bool(contrast)
        if self.contrast:
            self.config["contrast"] = True
        self.full = nn.Sequential(_conv(4 if self.contrast else 3, w), _conv(w, w))
        self.mid = nn.Sequential(_conv(w, 2 * w, stride=2), _conv(2 * w, 2 * w))
        self.context = nn.Sequential(_conv(2 * w, c, stride=2), *[_conv(c, c, dilation=d) for d in dilations],
                                     _conv(c, c))
        self.context_to_half = nn.Conv2d(c, 2 * w, 1)
        self.half_mix = _conv(2 * w, 2 * w)
        self.half_to_full = nn.Conv2d(2 * w, w, 1)
        self.head = nn.Sequential(_conv(w, w), nn.Conv2d(w, len(KINDS), 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image - 0.5
        if self.contrast:
            x = torch.cat([x, local_contrast(image)], dim=1)
        full = self.full(x)
        half = self.mid(full)
        ctx = self.context(half)
        half = self.half_mix(half + F.interpolate(self.context_to_half(ctx), size=half.shape[-2:], mode="bilinear",
                                                  align_corners=False))
        full = full + F.interpolate(self.half_to_full(half), size=full.shape[-2:], mode="bilinear",
                                    align_corners=False)
        return self.head(full)


def local_contrast(image: torch.Tensor, window: int = 15, floor: float = 0.02) -> torch.Tensor:
    """The grey image minus its local mean, over its local standard deviation (at least
    `floor`), scaled to about +-1: [N,1,H,W]. Exported as ONNX AveragePool (no padding counted)."""
    grey = image.mean(dim=1, keepdim=True)
    pool = lambda t: F.avg_pool2d(t, window, 1, window // 2, count_include_pad=False)
    centred = grey - pool(grey)
    return 0.25 * centred / torch.sqrt(pool(centred * centred) + floor * floor)


class DamageEnsemble(nn.Module):
    """The mean of the logits of several DamageNets trained differently (photo scales,
    width, seed). Their false alarms on facade grids differ more than their hits, so the
    mean keeps the hits and drops most of the false alarms (bench/restore.py, urban)."""

    def __init__(self, members: list[DamageNet]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.config = {"members": [m.config for m in members]}

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(image) for m in self.members]).mean(dim=0)


# ---------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------
def photo_split(root: Path, urban_repeat: int = URBAN_REPEAT) -> tuple[list[Path], list[Path]]:
    """(train, validation) photos: bsds500/train + val minus the last VALIDATION of val,
    plus urban100's URBAN_TRAIN (`urban_repeat` times) and URBAN_VALIDATION."""
    bsds = root / "photos" / "bsds500"
    train = sorted((bsds / "train").glob("*.jpg"))
    val = sorted((bsds / "val").glob("*.jpg"))
    urban = sorted((root / "photos" / "urban100").glob("*.png"))
    return (train + val[:-VALIDATION] + urban[URBAN_TRAIN] * urban_repeat,
            val[-VALIDATION:] + urban[URBAN_VALIDATION])


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def random_spec(rng: np.random.Generator, tear_share: float | None = None) -> DamageSpec:
    """Damage parameters varied around the generator's defaults. `tear_share`: the share of
    photos with a tear (None = a quarter, drawn as the runs before the option were)."""
    def span(lo, hi, spread):
        a, b = sorted(rng.uniform(lo, hi, 2))
        return (a, max(b, a + spread))

    nmax = int(rng.integers(1, 9))
    return DamageSpec(
        scratches=(int(rng.integers(0, nmax + 1)), nmax),
        scratch_width=span(0.8, 4.5, 0.5),
        scratch_length=span(0.1, 1.0, 0.1),
        specks_per_mp=span(20.0, 500.0, 30.0),
        speck_radius=span(0.6, 3.5, 0.4),
        hairs=(0, int(rng.integers(0, 5))),
        creases=(0, int(rng.integers(0, 3))),
        tears=(0, int(rng.integers(0, 2))) if tear_share is None else (int(rng.random() < tear_share),) * 2,
        grain_sigma=float(rng.choice([0.0, rng.uniform(0.3, 3.0)], p=[0.25, 0.75])),
    )


WIDE_FACTOR = (1.5, 2.5)  # --wide-share: scratch widths and speck radii scaled by this much


def paint_grid(rgb: np.ndarray, rng: np.random.Generator, wavy: bool = False) -> np.ndarray:
    """`rgb` with a regular grid (or a row) of thin straight lines painted over a random part
    of it, seen at a random angle and in perspective: window mullions, railings, fences.
    Training negatives (labelled "no damage"): a scratch is not one of many evenly spaced
    parallel lines, and the net should learn that from more facades than Urban100's 20.
    `wavy`: the lines follow one smooth wave, all alike (paving in curved rows, corrugation)."""
    h, w = rgb.shape[:2]
    # over a random rectangle of the photo only, so crops also see where a grid ends
    y0, x0 = int(rng.integers(0, h // 2 + 1)), int(rng.integers(0, w // 2 + 1))
    y1, x1 = int(rng.integers(y0 + h // 3, h + 1)), int(rng.integers(x0 + w // 3, w + 1))
    region = np.zeros((h, w), np.float32)
    region[y0:y1, x0:x1] = 1.0
    size = int(1.5 * max(h, w))
    layer = np.zeros((size, size), np.float32)
    # at least about 5 lines across the rectangle: two or three lines would be scratches
    spacing = rng.uniform(8, max(min(70, min(y1 - y0, x1 - x0) / 5), 9), 2)
    width = rng.uniform(0.8, 3.5)
    both = rng.random() < 0.7  # a grid; else one family of parallel lines
    for axis in (0, 1) if both else (int(rng.integers(2)),):
        for c in np.arange(rng.uniform(0, spacing[axis]), size, spacing[axis]):
            a, b = (round(c), 0), (round(c), size - 1)
            cv2.line(layer, a if axis == 0 else a[::-1], b if axis == 0 else b[::-1], 1.0,
                     max(round(width), 1), cv2.LINE_AA)
    if wavy:
        # every line displaced by the same sine across its length; slope at most ~1.1
        wavelength = rng.uniform(0.3, 1.0, 2) * size
        amplitude = rng.uniform(0.05, 0.18, 2) * wavelength
        phase = rng.uniform(0, 2 * np.pi, 2)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        map_x = xx + amplitude[0] * np.sin(2 * np.pi * yy / wavelength[0] + phase[0])
        map_y = yy + amplitude[1] * np.sin(2 * np.pi * xx / wavelength[1] + phase[1])
        layer = cv2.remap(layer, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR)
    # rotate and tilt: map the square's corners to a jittered quadrilateral around the photo
    angle = rng.uniform(0, np.pi)
    cx, cy, r = w / 2, h / 2, 0.75 * size
    quad = np.array([[cx + r * np.cos(angle + k * np.pi / 2 + np.pi / 4),
                      cy + r * np.sin(angle + k * np.pi / 2 + np.pi / 4)] for k in range(4)], np.float32)
    quad += rng.uniform(-0.25, 0.25, (4, 2)).astype(np.float32) * size
    src = np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float32)
    alpha = cv2.warpPerspective(layer, cv2.getPerspectiveTransform(src, quad), (w, h))
    alpha *= region * rng.uniform(0.5, 1.0)
    tone = rng.uniform(5, 70) if rng.random() < 0.7 else rng.uniform(190, 250)
    colour = np.clip(tone + rng.normal(0, 15, 3), 0, 255).astype(np.float32)
    out = rgb.astype(np.float32) * (1 - alpha[..., None]) + colour * alpha[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def random_cast(rgb: np.ndarray, rng: np.random.Generator, strength: float = 0.35) -> np.ndarray:
    """`rgb` under a colour cast: channel gains exp(g) with g of mean 0 in a random direction,
    its largest component up to `strength` (0.35: blue at 0.7 of red, a strongly yellowed
    print), and half the time a brightness change of up to 15 %. Every direction, not only the
    warm one, so the net learns that damage takes the print's tint, whatever it is."""
    direction = rng.normal(size=3)
    direction -= direction.mean()
    direction /= max(float(np.abs(direction).max()), 1e-6)
    log_gains = direction * rng.uniform(0.05, strength)
    if rng.random() < 0.5:
        log_gains += rng.uniform(-0.15, 0.1)
    gains = np.exp(log_gains).astype(np.float32)
    return np.clip(rgb.astype(np.float32) * gains + 0.5, 0, 255).astype(np.uint8)


def labels(dmg, clean_only: bool, shape) -> tuple[np.ndarray, np.ndarray]:
    """(target, weight) float32 [2,H,W] for one damaged photo (see the module docstring)."""
    if clean_only:
        return np.zeros((2,) + shape, np.float32), np.ones((2,) + shape, np.float32)
    k = np.ones((3, 3), np.uint8)
    visible = dmg.visible > 0
    target, weight = [], []
    for kind_mask in (dmg.lines, dmg.specks):
        mine = kind_mask > 0
        pos = visible & mine
        unsure = (cv2.dilate(kind_mask, k) > 0) & ~pos
        # the other kind's visible damage is not this kind's false alarm: ignore it too
        unsure |= visible & ~mine
        target.append(pos.astype(np.float32))
        weight.append((~unsure).astype(np.float32))
    return np.stack(target), np.stack(weight)


class Pool:
    """Damaged photos to crop from; slot i at step s holds the photo made at the last
    refresh step t < s with t // refresh = i (mod size), or the initial one: a function of
    (seed, step) only."""

    def __init__(self, photos: list[Path], size: int, refresh: int, seed: int, clean_share: float = 0.1,
                 scale_min: float = 1.0, grid_share: float = 0.0, straight_share: float = 0.0,
                 wave_share: float = 0.0, tear_share: float | None = None, cast_share: float = 0.0,
                 wide_share: float = 0.0):
        self.photos, self.size, self.refresh, self.seed, self.clean_share = photos, size, refresh, seed, clean_share
        self.scale_min, self.grid_share, self.straight_share = scale_min, grid_share, straight_share
        self.wave_share, self.tear_share, self.cast_share = wave_share, tear_share, cast_share
        self.wide_share = wide_share
        self._cache: dict[int, np.ndarray] = {}
        self.slots: list[tuple[int | None, tuple]] = [(None, ())] * size  # (tick, item)

    def _make(self, tick: int) -> tuple:
        img, t, w = self._make_neutral(tick)
        # the cast has its own generator: runs without it see exactly the photos they saw before
        cast_rng = np.random.default_rng([self.seed, 11, tick + 10**6])
        if self.cast_share > 0 and cast_rng.random() < self.cast_share:
            img = random_cast(img, cast_rng)
        return img, t, w

    def _make_neutral(self, tick: int) -> tuple:
        rng = np.random.default_rng([self.seed, 7, tick + 10**6])
        idx = int(rng.integers(len(self.photos)))
        if idx not in self._cache:
            self._cache[idx] = read_rgb(self.photos[idx])
        clean = self._cache[idx]
        if self.scale_min < 1.0 and max(clean.shape[:2]) > LARGE:
            # big photos also at a random smaller scale: a facade's whole grid of mullions then
            # fits in a crop, the real thin lines a scratch detector must learn to leave alone
            f = rng.uniform(self.scale_min, 1.0)
            clean = cv2.resize(clean, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        if self.grid_share > 0 and rng.random() < self.grid_share:
            # wave_share 0 draws nothing more, so runs without it see the same photos as before
            wavy = self.wave_share > 0 and rng.random() < self.wave_share
            clean = paint_grid(clean, rng, wavy)  # part of the photo, not damage: labelled 0
        if rng.random() < self.clean_share:  # undamaged, sometimes with grain: nothing to find
            sigma = rng.choice([0.0, rng.uniform(0.3, 3.0)])
            img = np.clip(clean + rng.normal(0, sigma, clean.shape[:2] + (1,)), 0, 255).astype(np.uint8)
            t, w = labels(None, True, clean.shape[:2])
            return img, t, w
        spec = replace(random_spec(rng, self.tear_share), straight_share=self.straight_share)
        # its own generator too: runs without it see exactly the photos they saw before
        wide_rng = np.random.default_rng([self.seed, 13, tick + 10**6])
        if self.wide_share > 0 and wide_rng.random() < self.wide_share:
            spec = widened(spec, float(wide_rng.uniform(*WIDE_FACTOR)))
        dmg = add_damage(clean, rng, spec)
        t, w = labels(dmg, False, clean.shape[:2])
        return dmg.image, t, w

    def at(self, step: int) -> list[tuple]:
        tick_now = step // self.refresh
        for i in range(self.size):
            # the newest tick <= tick_now that lands in slot i; initial ticks are negative
            tick = tick_now - ((tick_now - i) % self.size)
            if tick < 0:
                tick = i - self.size  # initial content of slot i
            if self.slots[i][0] != tick:
                self.slots[i] = (tick, self._make(tick))
        return [item for _, item in self.slots]


def batch(items: list[tuple], n: int, crop: int, rng: np.random.Generator):
    imgs, tgts, wts = [], [], []
    for _ in range(n):
        img, t, w = items[int(rng.integers(len(items)))]
        h, wd = img.shape[:2]
        y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, wd - crop + 1))
        a = img[y : y + crop, x : x + crop].transpose(2, 0, 1).astype(np.float32) / 255.0
        b, c = t[:, y : y + crop, x : x + crop], w[:, y : y + crop, x : x + crop]
        k = int(rng.integers(4))
        flip = rng.random() < 0.5
        out = []
        for arr in (a, b, c):
            arr = np.rot90(arr, k, axes=(1, 2))
            out.append(np.ascontiguousarray(arr[:, :, ::-1] if flip else arr))
        imgs.append(out[0])
        tgts.append(out[1])
        wts.append(out[2])
    return torch.from_numpy(np.stack(imgs)), torch.from_numpy(np.stack(tgts)), torch.from_numpy(np.stack(wts))


def loss_fn(logits, target, weight, pos_weight: float) -> torch.Tensor:
    per_px = F.binary_cross_entropy_with_logits(logits, target, reduction="none",
                                                pos_weight=torch.tensor(pos_weight))
    return (per_px * weight).sum() / weight.sum().clamp(min=1.0)


# ---------------------------------------------------------------------------------
# validation / calibration
# ---------------------------------------------------------------------------------
def predict_logits(model: nn.Module, rgb: np.ndarray) -> np.ndarray:
    """Logits [2,H,W] of a whole (small) photo, padded to a multiple of STRIDE."""
    h, w = rgb.shape[:2]
    ph, pw = -h % STRIDE, -w % STRIDE
    x = cv2.copyMakeBorder(rgb, 0, ph, 0, pw, cv2.BORDER_REFLECT)
    with torch.no_grad():
        t = torch.from_numpy(x.transpose(2, 0, 1).astype(np.float32)[None] / 255.0)
        return model(t)[0, :, :h, :w].numpy()


def app_probability(logits: np.ndarray) -> np.ndarray:
    """The app's uint8 probability maps, round(255 p), from logits."""
    return np.rint(255.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))).astype(np.uint8)


def predict(model: nn.Module, rgb: np.ndarray) -> np.ndarray:
    """Probabilities [2,H,W] of a whole (small) photo."""
    return 1.0 / (1.0 + np.exp(-predict_logits(model, rgb)))


def validation_set(photos: list[Path], seed: int) -> list[tuple]:
    out = []
    for i, p in enumerate(photos):
        clean = read_rgb(p)
        out.append((clean, add_damage(clean, np.random.default_rng([seed, 99, i]), BENCH_DAMAGE)))
    return out


def evaluate(model: DamageNet, vset: list[tuple], rules=((0.5, 0.5), (0.7, 0.5), (0.8, 0.5))) -> dict[tuple, tuple]:
    """Per proposal rule (threshold, hysteresis low ratio): mean precision, recall, clean
    flagged on the validation photos - a progress reading during training: one threshold on
    the maximum of both kinds' maps, grown by 1 px (`calibrate` applies per-kind thresholds
    to each map on its own, as the app does)."""
    def as_app_map(rgb):  # the app's uint8 map of either kind
        return [np.rint(predict(model, rgb).max(axis=0) * 255).astype(np.uint8)]

    model.eval()
    maps = [(as_app_map(dmg.image), as_app_map(clean), dmg) for clean, dmg in vset]
    model.train()
    res = {rule: [] for rule in rules}
    for pd, pc, dmg in maps:
        for t, ratio in rules:
            s = score_proposal(propose_from_probability(pd, t, ratio, 1), dmg)
            flagged = float((propose_from_probability(pc, t, ratio, 1) > 0).mean())
            res[(t, ratio)].append((s.precision, s.recall, flagged))
    return {rule: tuple(np.mean(v, axis=0)) for rule, v in res.items()}


# ---------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------
def save_checkpoint(path: Path, model, opt, step: int, args: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "config": model.config, "opt": opt.state_dict(), "step": step,
                "args": args}, tmp)
    tmp.replace(path)


def load_model(path: Path) -> tuple[DamageNet, dict]:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg = ck["config"]
    model = DamageNet(cfg["width"], cfg["context_width"], tuple(cfg["dilations"]), cfg.get("contrast", False))
    model.load_state_dict(ck["model"])
    return model, ck


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, help="the run to train or export (needed except with --search-members)")
    ap.add_argument("--data", type=Path, default=DATA_ROOT)
    ap.add_argument("--steps", type=int, default=20000, help="planned length (sets the learning-rate schedule)")
    ap.add_argument("--until", type=int, default=0, help="stop (with a checkpoint) at this step; 0 = --steps")
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--pos-weight", type=float, default=2.0)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--context-width", type=int, default=48)
    ap.add_argument("--urban-repeat", type=int, default=URBAN_REPEAT,
                    help="times each training Urban100 photo is in the photo list")
    ap.add_argument("--scale-min", type=float, default=1.0,
                    help="photos larger than 600 px are each drawn at a random scale in [this, 1]")
    ap.add_argument("--grid-share", type=float, default=0.0,
                    help="share of training photos that get a painted grid of thin lines (a negative)")
    ap.add_argument("--straight-share", type=float, default=0.0,
                    help="share of the scratches drawn perfectly straight and even (positives that "
                         "look like one grid line: with --grid-share the net must tell one from many)")
    ap.add_argument("--wave-share", type=float, default=0.0,
                    help="share of the painted grids whose lines follow a smooth wave (curved paving)")
    ap.add_argument("--tear-share", type=float, default=None,
                    help="share of the damaged training photos with a tear (default: a quarter, as "
                         "the runs before the option; the bench's damage has one in half of its photos)")
    ap.add_argument("--cast-share", type=float, default=0.0,
                    help="share of the training photos under a random colour cast, damage included (random_cast)")
    ap.add_argument("--wide-share", type=float, default=0.0,
                    help="share of the damaged training photos whose scratches and specks are drawn "
                         "1.5-2.5x wider (WIDE_FACTOR: damage as on a scan at 1.5-2.5x the photos' resolution)")
    ap.add_argument("--contrast", action="store_true",
                    help="give the net the local-contrast image as a fourth channel (see local_contrast)")
    ap.add_argument("--pool", type=int, default=48)
    ap.add_argument("--refresh", type=int, default=2, help="steps between new damaged photos in the pool")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=1000, help="0 = never")
    ap.add_argument("--ckpt-every", type=int, default=200)
    ap.add_argument("--export", type=Path, help="write the run's model as ONNX + JSON sidecar and stop")
    ap.add_argument("--ensemble", type=Path, nargs="*", default=[],
                    help="with --export: more runs whose models are averaged with --run's (mean of the logits)")
    ap.add_argument("--search-members", type=Path, nargs="+", metavar="RUN",
                    help="rank ensembles of these runs on the calibration photos (see search_members) and stop")
    ap.add_argument("--sizes", type=int, nargs="+", default=[3, 4, 5], help="with --search-members: ensemble sizes")
    ap.add_argument("--max-flagged", type=float, default=0.0025,
                    help="with --search-members: the most of the clean photos a rule may flag (calibrate's limit)")
    ap.add_argument("--top", type=int, default=10, help="with --search-members: how many ensembles to print")
    ap.add_argument("--members-from", type=Path, metavar="ONNX",
                    help="write the members of this ensemble file as runs under --run (member0, ...) and stop")
    args = ap.parse_args(argv)
    for name in ("grid_share", "straight_share", "wave_share", "cast_share", "wide_share"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            ap.error(f"--{name.replace('_', '-')} is a share: between 0 and 1")
    return args


def train(args) -> dict:
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    torch.manual_seed(args.seed)
    args.run.mkdir(parents=True, exist_ok=True)
    train_photos, val_photos = photo_split(args.data, args.urban_repeat)
    if not train_photos:
        raise SystemExit(f"no photos under {args.data / 'photos' / 'bsds500'}")
    ckpt = args.run / "latest.pt"
    model = DamageNet(args.width, args.context_width, contrast=args.contrast)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step = 0
    if ckpt.exists():
        model, ck = load_model(ckpt)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
        print(f"resumed at step {step}", flush=True)
    pool = Pool(train_photos, args.pool, args.refresh, args.seed, scale_min=args.scale_min,
                grid_share=args.grid_share, straight_share=args.straight_share, wave_share=args.wave_share,
                tear_share=args.tear_share, cast_share=args.cast_share, wide_share=args.wide_share)
    vset = validation_set(val_photos, args.seed) if args.eval_every and val_photos else []
    log_path = args.run / "log.csv"
    new_log = not log_path.exists()
    log = log_path.open("a", newline="")
    writer = csv.writer(log)
    if new_log:
        writer.writerow(["step", "loss", "lr", "s_per_step", "val"])
    stop = threading.Event()

    def _request_stop(signum, _frame):
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    running, t0, history = 0.0, time.perf_counter(), []
    try:
        end = min(args.until or args.steps, args.steps)
        while step < end and not stop.is_set():
            # cosine decay to 5 % over the planned steps
            lr = args.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * step / args.steps)))
            for g in opt.param_groups:
                g["lr"] = lr
            items = pool.at(step)
            x, y, w = batch(items, args.batch, args.crop, np.random.default_rng([args.seed, 3, step]))
            loss = loss_fn(model(x), y, w, args.pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            history.append(loss.item())
            running = history[-1] if running == 0 else 0.98 * running + 0.02 * history[-1]
            val = ""
            if args.eval_every and vset and step % args.eval_every == 0:
                scores = evaluate(model, vset)
                val = json.dumps({f"{t}/{r}": [round(v, 4) for v in sc] for (t, r), sc in scores.items()})
            if step % args.log_every == 0 or val:
                dt = (time.perf_counter() - t0) / args.log_every
                t0 = time.perf_counter()
                writer.writerow([step, f"{running:.5f}", f"{lr:.2e}", f"{dt:.3f}", val])
                log.flush()
                print(f"step {step} loss {running:.4f} lr {lr:.1e} {dt:.2f} s/step {val}", flush=True)
            if step % args.ckpt_every == 0:
                save_checkpoint(ckpt, model, opt, step, vars_for_ckpt(args))
    finally:
        save_checkpoint(ckpt, model, opt, step, vars_for_ckpt(args))
        log.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stop.is_set():
        print(f"stopped by signal at step {step}; checkpoint written", flush=True)
    return {"step": step, "history": history}


def vars_for_ckpt(args) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


# ---------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------
def rule_scores(prob_pairs: list[tuple[np.ndarray, np.ndarray]], vset: list[tuple],
                rules: list[tuple[float, float, float, int]]) -> np.ndarray:
    """Mean (precision, recall, clean flagged) over the validation photos of each proposal rule
    (scratch threshold, dust threshold, hysteresis low ratio, grow px), applied as the app
    does: each kind on its own map, grown, then united. `prob_pairs`: per photo of `vset`, the
    uint8 probability maps [2,H,W] (round(255 p)) of its damaged and its clean version."""
    sums = np.zeros((len(rules), 3))
    per_kind = [sorted({(rule[k], rule[2], rule[3]) for rule in rules}) for k in range(len(KINDS))]
    for (prob_damaged, prob_clean), (_, dmg) in zip(prob_pairs, vset, strict=True):
        maps = {}
        for name, prob in (("damaged", prob_damaged), ("clean", prob_clean)):
            for k in range(len(KINDS)):
                for t, r, g in per_kind[k]:
                    maps[name, k, t, r, g] = propose_from_probability([prob[k]], t, r, g) > 0
        score = ProposalScorer(dmg)
        for i, (ts, td, r, g) in enumerate(rules):
            s = score((maps["damaged", 0, ts, r, g] | maps["damaged", 1, td, r, g]).view(np.uint8))
            sums[i] += (s.precision, s.recall, (maps["clean", 0, ts, r, g] | maps["clean", 1, td, r, g]).mean())
    return sums / len(vset)


def best_rule(scores: np.ndarray, max_flagged: float) -> list[int]:
    """Indices of the rules that flag at most `max_flagged` of the clean photos (if none does,
    the last rule), best min(precision, recall) first (issue 6 asks for both >= 0.8).
    `calibrate` then prefers the strictest of those within CALIBRATION_TIE of the best."""
    ok = [i for i in range(len(scores)) if scores[i, 2] <= max_flagged] or [len(scores) - 1]
    ok.sort(key=lambda i: -min(scores[i, :2]))
    return ok


def calibrate(model: nn.Module, val_photos: list[Path], seed: int,
              max_flagged: float = 0.0025) -> tuple[dict[str, float], float, int]:
    """The proposal rule of the default sensitivity: a probability threshold per kind, one
    hysteresis low ratio and how many px the proposal is grown by. On the validation photos:
    the rule with the best min(precision, recall) among those that flag at most `max_flagged`
    of the clean photos (the issue's limit is 0.005; held-out photos vary, so half of it);
    among rules within CALIBRATION_TIE of the best, the strictest."""
    vset = validation_set(val_photos, seed)
    thresholds = [float(t) for t in np.round(np.r_[np.arange(0.3, 0.96, 0.05), 0.97, 0.98], 2)]
    ratios = (1.0, 0.7, 0.5)
    # growing by 1 px adds recall only for damage 3 px from the found pixels (the score forgives
    # 2 px) but fattens every false alarm; the rule search decides
    grows = (0, 1)
    rules = [(ts, td, r, g) for ts in thresholds for td in thresholds for r in ratios for g in grows]
    model.eval()
    prob_pairs = [(app_probability(predict_logits(model, dmg.image)), app_probability(predict_logits(model, clean)))
                  for clean, dmg in vset]
    scores = rule_scores(prob_pairs, vset, rules)
    ok = best_rule(scores, max_flagged)
    # within CALIBRATION_TIE of the best score the rules are equal on 24 photos; take the strictest (the
    # highest low thresholds), so that e.g. the dust map alone does not pick up scratches
    best = min(scores[ok[0], :2])
    ties = [i for i in ok if min(scores[i, :2]) >= best - CALIBRATION_TIE]
    strictest = max(ties, key=lambda i: (rules[i][0] + rules[i][1]) * rules[i][2])
    ok.remove(strictest)
    ok.insert(0, strictest)
    for i in ok[:10]:
        ts, td, r, g = rules[i]
        p, rc, f = scores[i]
        print(f"  thresholds scratches {ts:.2f} dust {td:.2f} low ratio {r:.2f} grown {g} px: precision {p:.3f} "
              f"recall {rc:.3f} clean flagged {100 * f:.3f} %")
    ts, td, r, g = rules[ok[0]]
    return {"scratches": ts, "dust": td}, r, g


def member_logits(run: Path, vset: list[tuple], key: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per validation photo, the logits [2,H,W] of `run`'s model on its damaged and its clean
    version; cached in <run>/calibration_logits.npz under `key` + the checkpoint's step, so that
    a member search over many runs computes each run's maps once."""
    model, ck = load_model(run / "latest.pt")
    key = f"{key} step {ck['step']}"
    cache = run / "calibration_logits.npz"
    if cache.exists():
        with np.load(cache) as z:
            if str(z["key"]) == key:
                return [(z[f"damaged{i}"], z[f"clean{i}"]) for i in range(len(vset))]
    model.eval()
    pairs = [(predict_logits(model, dmg.image).astype(np.float16), predict_logits(model, clean).astype(np.float16))
             for clean, dmg in vset]
    arrays = {f"{name}{i}": a for i, pair in enumerate(pairs) for name, a in zip(("damaged", "clean"), pair)}
    np.savez(cache, key=key, **arrays)
    return pairs


def search_members(args) -> list[tuple]:
    """Rank ensembles of the given runs (every combination of --sizes of them) by calibration's
    own rule on the calibration photos: the best min(precision, recall) over a coarse
    threshold grid, at most --max-flagged of the clean photos flagged. The ensemble's logits
    are the mean of its members' (DamageEnsemble), so each run's maps are computed once.
    Prints the best --top; export the chosen one with --export (full calibration)."""
    torch.set_num_threads(args.threads)
    _, val_photos = photo_split(args.data)
    vset = validation_set(val_photos, args.seed)
    key = f"seed {args.seed} photos " + ",".join(p.name for p in val_photos)
    runs = args.search_members
    logits = {}
    for run in runs:
        logits[run] = member_logits(run, vset, key)
        print(f"  logits of {run.name} ready", flush=True)
    thresholds = (0.4, 0.5, 0.6, 0.7, 0.8)
    rules = [(ts, td, 1.0, 0) for ts in thresholds for td in thresholds]
    results = []
    combos = [c for size in args.sizes for c in itertools.combinations(runs, size)]
    for n, combo in enumerate(combos, 1):
        prob_pairs = [tuple(app_probability(np.mean([logits[run][i][v].astype(np.float32) for run in combo], axis=0))
                            for v in (0, 1)) for i in range(len(vset))]
        scores = rule_scores(prob_pairs, vset, rules)
        best = best_rule(scores, args.max_flagged)[0]
        results.append((float(min(scores[best, :2])), combo, rules[best], scores[best]))
        print(f"  [{n}/{len(combos)}] {'+'.join(run.name for run in combo)}: {results[-1][0]:.4f}", flush=True)
    results.sort(key=lambda r: -r[0])
    print("best ensembles (min(precision, recall) on the calibration photos, at most "
          f"{100 * args.max_flagged:.2f} % of clean pixels flagged):")
    for value, combo, (ts, td, _, _), (p, rc, f) in results[:args.top]:
        print(f"  {value:.4f}  {' '.join(str(run) for run in combo)}  (scratches {ts:.2f} dust {td:.2f}: "
              f"precision {p:.3f} recall {rc:.3f} clean flagged {100 * f:.3f} %)")
    return results


def members_from_onnx(onnx_path: Path, out_dir: Path) -> list[Path]:
    """Write each member of a shipped ensemble file as a run (`out_dir/member<i>/latest.pt`), so
    that a new net can be searched and exported with it when the members' own run folders
    (machine-local) are gone. The export names every weight after the state_dict."""
    import onnx
    from onnx import numpy_helper

    weights: dict[int, dict[str, torch.Tensor]] = {}
    for init in onnx.load(str(onnx_path)).graph.initializer:
        if init.name.startswith("members."):
            _, index, name = init.name.split(".", 2)
            weights.setdefault(int(index), {})[name] = torch.from_numpy(numpy_helper.to_array(init).copy())
    if not weights:
        raise SystemExit(f"{onnx_path} holds no ensemble members (was it written by --export with --ensemble?)")
    sidecar = json.loads(onnx_path.with_suffix(".json").read_text())
    steps, crops = sidecar.get("steps_trained", []), sidecar.get("train_crop", [])
    runs = []
    for index, state in sorted(weights.items()):
        model = DamageNet(int(state["full.0.0.weight"].shape[0]), int(state["context.0.0.weight"].shape[0]),
                          contrast=state["full.0.0.weight"].shape[1] == 4)
        model.load_state_dict(state)  # strict: a missing or extra weight is an error
        run = out_dir / f"member{index}"
        run.mkdir(parents=True, exist_ok=True)
        args = {"crop": crops[index] if index < len(crops) else 0, "from_onnx": str(onnx_path.name)}
        # a fresh optimizer: training the member on starts its moments anew
        save_checkpoint(run / "latest.pt", model, torch.optim.Adam(model.parameters()),
                        steps[index] if index < len(steps) else 0, args)
        runs.append(run)
    return runs


def export(args) -> None:
    loaded = [load_model(run / "latest.pt") for run in [args.run, *args.ensemble]]
    model = loaded[0][0] if len(loaded) == 1 else DamageEnsemble([m for m, _ in loaded])
    model.eval()
    _, val_photos = photo_split(args.data)
    per_kind, low_ratio, grow_px = (calibrate(model, val_photos, args.seed) if val_photos
                                    else (dict.fromkeys(KINDS, 0.5), 1.0, 1))
    out = args.export
    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, 64, 64)
    torch.onnx.export(model, dummy, str(out), input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h", 3: "w"}},
                      opset_version=17, dynamo=False)
    sidecar = {
        "name": "inpaint-studio-damage-detector",
        "version": 1,
        "contract": "damage-probability",
        "layout": "NCHW",
        "inputs": {"image": "image"},
        "outputs": {"logits": "logits"},
        "image_range": [0.0, 1.0],
        "channels": list(KINDS),
        "stride": STRIDE,
        "receptive_field": 256,
        "threshold_at_default": min(per_kind.values()),  # for readers that know one threshold only
        "thresholds_at_default": per_kind,
        "hysteresis_low_ratio": low_ratio,
        "proposal_grow_px": grow_px,
        "opset": 17,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "architecture": (f"DamageNet {model.config}" if len(loaded) == 1 else
                         f"mean of the logits of {len(loaded)} DamageNets {model.config['members']}"),
        "steps_trained": [int(ck["step"]) for _, ck in loaded] if len(loaded) > 1 else int(loaded[0][1]["step"]),
        "train_crop": [int(ck["args"].get("crop", 0)) for _, ck in loaded] if len(loaded) > 1
                      else int(loaded[0][1]["args"].get("crop", 0)),
        "trained_on": "synthetic damage (app/restore/synthetic.py, varied parameters, tears included) on "
                      "bsds500/train, bsds500/val and urban100 photos 3-22; threshold calibrated on the last 20 "
                      "of bsds500/val and urban100 photos 23-26 (not trained on)",
        "licence_note": "trained on research-only photos (BSDS500, Urban100); see damage_detector.md",
    }
    out.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) and {out.with_suffix('.json').name}; "
          f"thresholds at the default sensitivity {per_kind}, hysteresis low ratio {low_ratio}, grown {grow_px} px")


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.run and not args.search_members:
        raise SystemExit("train_detector.py: --run DIR is needed (or --search-members RUN...)")
    if args.search_members:
        search_members(args)
    elif args.members_from:
        for run in members_from_onnx(args.members_from, args.run):
            print(f"wrote {run / 'latest.pt'}")
    elif args.export:
        export(args)
    else:
        train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
