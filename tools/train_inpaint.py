"""Train Inpaint Studio's default inpainting generator on the CPU.

A small fully convolutional U-Net with a dilated bottleneck, designed for two CPU
cores: it learns the coarse structure of a fill at low resolution, and the engine's
contextual residual aggregation (CRA) carries the photo's own high-frequency detail
into the hole at full resolution.

Model contract (what tools/export_onnx.py exports, see models/default.json):
    image [N,3,S,S] float32 RGB in [0,1] (hole pixels may hold anything: the net zeroes them)
    mask  [N,1,S,S] float32, 1 = hole, 0 = keep
    -> inpainted [N,3,S,S] float32 in [0,1], pixels outside the hole equal the input.

Data: photos from ../shared/data/photos (research-only licences: never ship them),
holes from ../shared/data/masks plus random free-form strokes. The development set
(bsds500/test, 40 held-out sun_hays80 photos, NVIDIA masks whose index ends in 5 and
the last 20 HiFill templates) is never trained on; see `dev_split()`.

Usage:
    python tools/train_inpaint.py --run .runs/default            # start or resume
    python tools/train_inpaint.py --run .runs/default --resume   # same, explicit
    python tools/train_inpaint.py --bench-step                   # measure s/step
    python tools/train_inpaint.py --run .runs/more --init-onnx models/default.onnx --lr 5e-5
                                     # train the shipped model further (no checkpoint needed)
Checkpoints: <run>/latest.pt (every --ckpt-minutes) and <run>/step_<N>.pt snapshots;
losses: <run>/log.csv.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"

# ---------------------------------------------------------------------------------
# data split (shared with bench/quality.py)
# ---------------------------------------------------------------------------------
HELD_OUT_SUN = 40  # every other sun_hays80 photo (sorted) is held out, 40 in all


def photo_split(root: Path) -> tuple[list[Path], list[Path]]:
    """(train, dev) photo paths. Dev = bsds500/test + every second sun_hays80 photo."""
    photos = root / "photos"
    sun = sorted((photos / "sun_hays80").glob("*.jpg"))
    sun_dev = sun[1::2][:HELD_OUT_SUN]
    sun_train = [p for p in sun if p not in set(sun_dev)]
    train = (
        sorted((photos / "bsds500" / "train").glob("*"))
        + sorted((photos / "bsds500" / "val").glob("*"))
        + sorted((photos / "urban100").glob("*"))
        + sun_train
    )
    dev = sorted((photos / "bsds500" / "test").glob("*")) + sun_dev
    return [p for p in train if p.is_file()], [p for p in dev if p.is_file()]


def mask_split(root: Path) -> tuple[list[Path], list[Path]]:
    """(train, dev) mask paths. NVIDIA masks whose index ends in 5 and the last 20
    HiFill templates (sorted) are kept for the dev set."""
    nv = sorted((root / "masks" / "nvidia_irregular_test").glob("*.png"))
    tpl = sorted((root / "masks" / "hifill_templates").glob("*.png"))
    nv_train = [p for p in nv if not p.stem.endswith("5")]
    nv_dev = [p for p in nv if p.stem.endswith("5")]
    return nv_train + tpl[:-20], nv_dev + tpl[-20:]


# ---------------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------------
class ConvAct(nn.Sequential):
    def __init__(self, cin, cout, k=3, stride=1, dilation=1, act=True):
        pad = dilation * (k - 1) // 2
        layers = [nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation)]
        if act:
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        super().__init__(*layers)


class ResDilated(nn.Module):
    def __init__(self, c, dilation):
        super().__init__()
        self.a = ConvAct(c, c, 3, dilation=dilation)
        self.b = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return F.leaky_relu(x + self.b(self.a(x)), 0.2)


def push_pull_fill(image: torch.Tensor, keep: torch.Tensor, levels: int = 5, k: float = 64.0) -> torch.Tensor:
    """Smooth fill of the hole from the known pixels (push-pull / normalized convolution
    pyramid): average the known pixels down `levels` times, then fill each level's gaps
    from the upsampled level below. Cheap ONNX ops only (AvgPool, Resize, Div, Mul); the
    side must be divisible by 2**levels. A cell's own average is trusted once more than
    1/k of it is known (k = 64 measured best on the dev set: at the photo's resolution it
    matches or beats OpenCV Telea in PSNR on the small, medium and large hole bands)."""
    nums, dens = [image * keep], [keep]
    for _ in range(levels):
        nums.append(F.avg_pool2d(nums[-1], 2))
        dens.append(F.avg_pool2d(dens[-1], 2))
    num, den = nums[-1], dens[-1]
    mean = num.sum(dim=(2, 3), keepdim=True) / (den.sum(dim=(2, 3), keepdim=True) + 1e-6)
    w = (den * k).clamp(0.0, 1.0)
    fill = w * (num / (den + 1e-6)) + (1.0 - w) * mean
    for lvl in range(levels - 1, -1, -1):
        up = F.interpolate(fill, scale_factor=2.0, mode="bilinear", align_corners=False)
        # a 3x3 box blur hides the coarse cells' block edges (+0.04-0.1 dB on the dev set)
        up = F.avg_pool2d(up, 3, 1, 1, count_include_pad=False)
        num, den = nums[lvl], dens[lvl]
        w = den if lvl == 0 else (den * k).clamp(0.0, 1.0)
        fill = w * (num / (den + 1e-6)) + (1.0 - w) * up
    return fill


class InpaintNet(nn.Module):
    """U-Net: 3 stride-2 downsamplings (input side must be a multiple of 8; the engine
    uses multiples of 32), a dilated residual bottleneck at 1/8 resolution, nearest
    upsampling + conv decoders with skip connections."""

    def __init__(self, width: int = 32, dilations=(1, 2, 4, 8, 16, 1), prefill: bool = False):
        super().__init__()
        c1, c2, c3 = width, width * 2, width * 4
        self.width = width
        self.dilations = tuple(dilations)
        self.prefill = bool(prefill)
        self.e1 = ConvAct(4, c1, 5)  # 1/1
        self.e2 = nn.Sequential(ConvAct(c1, c2, 3, 2), ConvAct(c2, c2, 3))  # 1/2
        self.e3 = nn.Sequential(ConvAct(c2, c3, 3, 2), ConvAct(c3, c3, 3))  # 1/4
        self.e4 = ConvAct(c3, c3, 3, 2)  # 1/8
        self.mid = nn.Sequential(*[ResDilated(c3, d) for d in dilations])
        self.d3 = nn.Sequential(ConvAct(c3 + c3, c3, 3), ConvAct(c3, c2, 3))  # 1/4
        self.d2 = ConvAct(c2 + c2, c1, 3)  # 1/2
        self.d1 = nn.Sequential(ConvAct(c1 + c1, c1, 3), nn.Conv2d(c1, 3, 3, padding=1))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = 1.0 - mask
        if self.prefill:
            base = push_pull_fill(image, keep)
            x = torch.cat([base * 2.0 - 1.0, mask], dim=1)
        else:
            x = torch.cat([(image * 2.0 - 1.0) * keep, mask], dim=1)
        f1 = self.e1(x)
        f2 = self.e2(f1)
        f3 = self.e3(f2)
        f4 = self.mid(self.e4(f3))
        u = F.interpolate(f4, scale_factor=2.0, mode="nearest")
        u = self.d3(torch.cat([u, f3], 1))
        u = F.interpolate(u, scale_factor=2.0, mode="nearest")
        u = self.d2(torch.cat([u, f2], 1))
        u = F.interpolate(u, scale_factor=2.0, mode="nearest")
        raw = self.d1(torch.cat([u, f1], 1))
        if self.prefill:  # the net predicts a correction to the smooth fill
            return base + raw * 0.5
        return (raw + 1.0) * 0.5

    def inpaint(self, image, mask):
        """Clamped prediction composited with the known pixels (what is exported)."""
        out = self.forward(image, mask).clamp(0.0, 1.0)
        return out * mask + image * (1.0 - mask)


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ---------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------
def _imread_rgb(p: Path) -> np.ndarray:
    im = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if im is None:
        raise OSError(f"cannot read {p}")
    return cv2.cvtColor(im, cv2.COLOR_BGR2RGB)


def free_form_mask(rng: random.Random, size: int) -> np.ndarray:
    """Random brush strokes (like an editor user's), 255 = hole."""
    m = np.zeros((size, size), np.uint8)
    for _ in range(rng.randint(1, 4)):
        x, y = rng.randrange(size), rng.randrange(size)
        width = max(2, int(size * rng.uniform(0.03, 0.12)))
        for _ in range(rng.randint(2, 8)):
            angle = rng.uniform(0, 2 * math.pi)
            length = size * rng.uniform(0.05, 0.35)
            nx = int(np.clip(x + length * math.cos(angle), 0, size - 1))
            ny = int(np.clip(y + length * math.sin(angle), 0, size - 1))
            cv2.line(m, (x, y), (nx, ny), 255, width)
            cv2.circle(m, (nx, ny), width // 2, 255, -1)
            x, y = nx, ny
    if rng.random() < 0.25:  # an object-sized blob
        cx, cy = rng.randrange(size), rng.randrange(size)
        ax, ay = int(size * rng.uniform(0.05, 0.2)), int(size * rng.uniform(0.05, 0.2))
        cv2.ellipse(m, (cx, cy), (ax, ay), rng.uniform(0, 180), 0, 360, 255, -1)
    return m


class Sampler:
    """Random crops (random scale, flips) and random holes, all in memory."""

    def __init__(self, photos: list[Path], masks: list[Path], crop: int, seed: int,
                 max_side: int = 1024):
        self.crop = crop
        self.rng = random.Random(seed)
        self.images = []
        for p in photos:
            im = _imread_rgb(p)
            s = max_side / max(im.shape[:2])
            if s < 1:
                im = cv2.resize(im, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            self.images.append(im)
        self.masks = []
        for p in masks:
            m = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            if m is not None:
                self.masks.append(m)

    def image_crop(self) -> np.ndarray:
        rng, c = self.rng, self.crop
        im = self.images[rng.randrange(len(self.images))]
        h, w = im.shape[:2]
        # region side in source pixels: between the crop size (1:1) and the short side
        lo = min(c, h, w)
        side = int(lo * math.exp(rng.uniform(0, math.log(max(min(h, w) / lo, 1.0001)))))
        side = max(8, min(side, h, w))
        y, x = rng.randint(0, h - side), rng.randint(0, w - side)
        reg = im[y:y + side, x:x + side]
        reg = cv2.resize(reg, (c, c), interpolation=cv2.INTER_AREA if side > c else cv2.INTER_LINEAR)
        if rng.random() < 0.5:
            reg = reg[:, ::-1]
        return np.ascontiguousarray(reg)

    def hole(self) -> np.ndarray:
        rng, c = self.rng, self.crop
        for _ in range(10):
            r = rng.random()
            if r < 0.45 and self.masks:
                m = self.masks[rng.randrange(len(self.masks))]
                h, w = m.shape
                side = rng.randint(min(h, w) // 2, min(h, w))
                y, x = rng.randint(0, h - side), rng.randint(0, w - side)
                m = cv2.resize(m[y:y + side, x:x + side], (c, c), interpolation=cv2.INTER_NEAREST)
                m = np.rot90(m, rng.randrange(4))
                if rng.random() < 0.5:
                    m = m[:, ::-1]
            elif r < 0.9:
                m = free_form_mask(rng, c)
            else:  # union of both
                m = free_form_mask(rng, c)
                if self.masks:
                    m2 = cv2.resize(self.masks[rng.randrange(len(self.masks))], (c, c),
                                    interpolation=cv2.INTER_NEAREST)
                    m = np.maximum(m, m2)
            frac = (m > 127).mean()
            if 0.01 <= frac <= 0.6:
                return np.ascontiguousarray(m > 127)
        return np.ascontiguousarray(m > 127)

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        ims = np.stack([self.image_crop() for _ in range(n)]).astype(np.float32) / 255.0
        ms = np.stack([self.hole() for _ in range(n)]).astype(np.float32)
        img = torch.from_numpy(ims).permute(0, 3, 1, 2).contiguous()
        mask = torch.from_numpy(ms)[:, None].contiguous()
        return img, mask


# ---------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------
def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size).contiguous()


_WINDOW = _gaussian_window()


def ssim_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM of [N,3,H,W] images in [0,1], per channel: the Gaussian 11/1.5 window
    of bench/quality.py, so the loss optimises what the benchmark measures."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    blur = lambda t: F.conv2d(F.pad(t, (5, 5, 5, 5), mode="reflect"), _WINDOW, groups=3)
    ma, mb = blur(a), blur(b)
    saa, sbb, sab = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
    return ((2 * ma * mb + c1) * (2 * sab + c2)) / ((ma * ma + mb * mb + c1) * (saa + sbb + c2))


def losses(out, gt, mask, w_hole=6.0, w_valid=1.0, w_grad=1.0, w_ssim=0.0):
    """PConv-style weighted L1 (hole weighted 6x), plus an L1 on image gradients inside
    the (dilated) hole that rewards edges rather than the blur an L1 alone settles for,
    plus (w_ssim > 0) 1 - SSIM of the composite around the hole: an L1 fill wins PSNR,
    an SSIM term rewards local contrast and structure that agree with the photo."""
    diff = (out - gt).abs()
    hole = (diff * mask).mean()
    valid = (diff * (1 - mask)).mean()
    comp = out * mask + gt * (1 - mask)
    band = F.max_pool2d(mask, 3, 1, 1)
    gx = lambda t: t[..., :, 1:] - t[..., :, :-1]
    gy = lambda t: t[..., 1:, :] - t[..., :-1, :]
    grad = ((gx(comp) - gx(gt)).abs() * band[..., :, 1:]).mean() + \
           ((gy(comp) - gy(gt)).abs() * band[..., 1:, :]).mean()
    total = w_hole * hole + w_valid * valid + w_grad * grad
    parts = {"hole": hole.item(), "valid": valid.item(), "grad": grad.item()}
    if w_ssim > 0:
        near = F.max_pool2d(mask, 11, 1, 5)  # every window that sees a hole pixel
        dissim = ((1 - ssim_map(comp, gt)) * near).mean()
        total = total + w_ssim * dissim
        parts["ssim"] = dissim.item()
    return total, parts


# ---------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------
def save_checkpoint(path: Path, model, opt, step: int, args: dict, rng_state) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({
        "model": model.state_dict(), "opt": opt.state_dict(), "step": step,
        "config": {"width": model.width, "dilations": list(model.dilations), "prefill": model.prefill},
        "args": args, "rng": rng_state, "torch_rng": torch.get_rng_state(),
    }, tmp)
    os.replace(tmp, path)


def model_from_onnx(path: str | Path, prefill: bool = True) -> tuple[InpaintNet, int]:
    """The InpaintNet inside an ONNX file written by tools/export_onnx.py, and the steps it
    was trained (from its JSON sidecar; 0 if unknown). The export keeps every weight as an
    initializer named after the state_dict, so a shipped model can be trained further when
    its torch checkpoint is gone (checkpoints live in machine-local run folders)."""
    import json

    import onnx
    from onnx import numpy_helper

    path = Path(path)
    weights = {i.name.removeprefix("net."): torch.from_numpy(numpy_helper.to_array(i).copy())
               for i in onnx.load(str(path)).graph.initializer if i.name.startswith("net.")}
    if "e1.0.weight" not in weights:
        raise SystemExit(f"{path} holds no InpaintNet weights (was it written by tools/export_onnx.py?)")
    blocks = sorted({int(k.split(".")[1]) for k in weights if k.startswith("mid.")})
    sidecar = path.with_suffix(".json")
    meta = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    dilations = _dilations_from_architecture(meta.get("architecture", ""), len(blocks))
    model = InpaintNet(width=int(weights["e1.0.weight"].shape[0]), dilations=dilations, prefill=prefill)
    model.load_state_dict(weights)  # strict: a missing or extra weight is an error
    return model, int(meta.get("steps_trained", 0))


def _dilations_from_architecture(text: str, blocks: int) -> tuple[int, ...]:
    import re

    found = re.search(r"\[([\d, ]+)\]", text)
    dilations = tuple(int(d) for d in found.group(1).split(",")) if found else (1, 2, 4, 8, 16, 1)
    if len(dilations) != blocks:
        raise SystemExit(f"the sidecar's architecture {text!r} does not match the {blocks} bottleneck blocks")
    return dilations


def load_model(path: str | Path) -> tuple[InpaintNet, dict]:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = InpaintNet(**ck["config"])
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck


# ---------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default=".runs/default", help="run folder (checkpoints, log.csv)")
    ap.add_argument("--data", default=str(DATA_ROOT), help="root holding photos/ and masks/")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--prefill", type=int, default=1, help="1 = the net corrects a push-pull fill (default)")
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--ssim-weight", type=float, default=0.0, help="weight of the 1 - SSIM term (0 = off)")
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--steps", type=int, default=1_000_000, help="stop after this many steps")
    ap.add_argument("--minutes", type=float, default=0, help="stop after this much time (0 = no limit)")
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--snapshot-every", type=int, default=500, help="keep step_<N>.pt every N steps")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads; 0 = auto: 2 while the machine is otherwise idle, 1 under load "
                         "(two threads stall each other when other processes hold the cores)")
    ap.add_argument("--resume", action="store_true", help="resume from <run>/latest.pt (default if it exists)")
    ap.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    ap.add_argument("--init-onnx", help="start a new run from the weights of an exported model "
                                        "(e.g. models/default.onnx); its steps count on from the sidecar's")
    ap.add_argument("--bench-step", action="store_true", help="time a few steps and exit")
    ap.add_argument("--max-photos", type=int, default=0, help="use only the first N train photos (tests)")
    return ap.parse_args(argv)


def _auto_threads(current: int) -> int:
    try:
        others = os.getloadavg()[0] - current
    except OSError:
        return 2
    return 2 if others < 0.8 else 1


def train(args) -> dict:
    threads = args.threads or 2
    torch.set_num_threads(threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    run = Path(args.run)
    root = Path(args.data)
    photos, _ = photo_split(root)
    masks, _ = mask_split(root)
    if args.max_photos:
        photos = photos[: args.max_photos]
    if not photos:
        raise SystemExit(f"no training photos under {root / 'photos'}")
    model = InpaintNet(width=args.width, prefill=args.prefill)
    if args.prefill:  # start as the smooth fill: a small last layer
        with torch.no_grad():
            model.d1[-1].weight.mul_(0.1)
            model.d1[-1].bias.zero_()
    step = 0
    if args.init_onnx:  # overridden below by the run's own checkpoint if it has one
        model, step = model_from_onnx(args.init_onnx, prefill=bool(args.prefill))
        print(f"initialised from {args.init_onnx} (trained {step} steps)", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))
    latest = run / "latest.pt"
    sampler = Sampler(photos, masks, args.crop, args.seed)
    if latest.exists() and not args.fresh:
        ck = torch.load(latest, map_location="cpu", weights_only=False)
        model = InpaintNet(**ck["config"])
        model.load_state_dict(ck["model"])
        opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))
        opt.load_state_dict(ck["opt"])
        for g in opt.param_groups:  # --lr on resume wins over the saved one
            g["lr"] = args.lr
        step = ck["step"]
        sampler.rng.setstate(ck["rng"])
        torch.set_rng_state(ck["torch_rng"])
        print(f"resumed {latest} at step {step}", flush=True)
    print(f"params {count_params(model):,}  photos {len(photos)}  masks {len(masks)}", flush=True)

    if args.bench_step:
        model.train()
        times = []
        for i in range(4):
            img, mask = sampler.batch(args.batch)
            t = time.perf_counter()
            out = model(img, mask)
            loss, _ = losses(out, img, mask)
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t)
        print(f"s/step (batch {args.batch}, crop {args.crop}): {min(times[1:]):.3f}", flush=True)
        return {"step_time": min(times[1:])}

    run.mkdir(parents=True, exist_ok=True)
    log_path = run / "log.csv"
    new_log = not log_path.exists()
    logf = open(log_path, "a", newline="")
    log = csv.writer(logf)
    if new_log:
        log.writerow(["step", "time", "loss", "hole_l1", "valid_l1", "grad_l1", "lr", "s_per_step"])
    t0 = time.time()
    last_ck = time.time()
    acc = {"loss": 0.0, "hole": 0.0, "valid": 0.0, "grad": 0.0, "ssim": 0.0, "n": 0}
    history = []
    model.train()
    tstep = time.time()
    stop = False
    # SIGTERM / Ctrl+C: finish the step, write the checkpoint, exit (no lost work)
    interrupted = []

    def _request_stop(signum, _frame):
        interrupted.append(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():  # signals reach only the main thread
        previous = {sig: signal.signal(sig, _request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    while not stop:
        img, mask = sampler.batch(args.batch)
        out = model(img, mask)
        loss, parts = losses(out, img, mask, w_ssim=args.ssim_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        history.append(loss.item())
        acc["loss"] += loss.item()
        for k in ("hole", "valid", "grad", "ssim"):
            acc[k] += parts.get(k, 0.0)
        acc["n"] += 1
        if not args.threads and step % 20 == 0:
            t = _auto_threads(threads)
            if t != threads:
                threads = t
                torch.set_num_threads(threads)
        if step % args.log_every == 0:
            n = acc["n"]
            sps = (time.time() - tstep) / n
            log.writerow([step, f"{time.time():.0f}", f"{acc['loss'] / n:.5f}", f"{acc['hole'] / n:.5f}",
                          f"{acc['valid'] / n:.5f}", f"{acc['grad'] / n:.5f}", args.lr, f"{sps:.3f}"])
            logf.flush()
            ssim_part = f" 1-ssim {acc['ssim'] / n:.4f}" if args.ssim_weight > 0 else ""
            print(f"step {step} loss {acc['loss'] / n:.4f} hole {acc['hole'] / n:.4f}{ssim_part} "
                  f"{sps:.2f}s/step threads {threads}", flush=True)
            acc = dict.fromkeys(acc, 0.0)
            acc["n"] = 0
            tstep = time.time()
        done = bool(interrupted) or step >= args.steps or (args.minutes and time.time() - t0 > args.minutes * 60)
        if done or time.time() - last_ck > args.ckpt_minutes * 60:
            save_checkpoint(latest, model, opt, step, vars(args), sampler.rng.getstate())
            last_ck = time.time()
        if args.snapshot_every and step % args.snapshot_every == 0:
            save_checkpoint(run / f"step_{step:06d}.pt", model, opt, step, vars(args), sampler.rng.getstate())
        stop = bool(done)
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    if interrupted:
        print(f"stopped by signal at step {step}; checkpoint written", flush=True)
    logf.close()
    return {"step": step, "history": history}


def main(argv=None):
    args = parse_args(argv)
    train(args)


if __name__ == "__main__":
    sys.exit(main())
