"""Inpainting quality on a fixed development set: our model against classical methods.

    python bench/quality.py                       # default model, 20 images per band
    python bench/quality.py --per-band 8 --methods telea,ns,net
    python bench/quality.py --ckpt .runs/default/latest.pt --methods net   # a training checkpoint
    python bench/quality.py --grid bench/out/grid.png

Dev set (never trained on; the split lives in tools/train_inpaint.py): bsds500/test plus
40 held-out sun_hays80 photos, with NVIDIA irregular masks whose index ends in 5, in
three hole-size bands (index // 2000: 0 -> 1-10 %, 1-2 -> 10-30 %, 3-5 -> 30-60 %) plus
the 20 held-out HiFill templates. Photo/mask pairs are drawn with a fixed seed, and the
masks are resized (nearest) to each photo's size.

Methods:
    telea, ns     OpenCV cv2.inpaint (radius 5) on the full photo
    patchmatch    pypatchmatch (PyPI, bench extra), patch size 7
    net           the raw network: hole box + context -> resized to the model's input
                  size -> model -> resized back -> hole pixels pasted (no CRA)
    engine        app.engine.inpaint(method="model") - the product path (CRA on top)
    engine-nocra  the same with cra=False: what the CRA detail stage adds or costs
    engine@T      the engine at Texture T (0 = smooth fill, 1 = the default: detail as
                  strong as the photo's around each hole patch)

Per band and method it prints: PSNR (dB, whole photo), SSIM (whole photo, Gaussian
window 11/1.5 on each RGB channel), L1 inside the hole (0..255 scale), sharpness ratio
(median over images of the RMS of the Laplacian of the grey image inside the hole,
result over original: a blurry fill scores far below 1, Telea about 0.2) and seconds
per image.
The dev photos have research-only licences: the grid goes to bench/out/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))

BANDS = {
    "small 1-10%": lambda i: i // 2000 == 0,
    "medium 10-30%": lambda i: i // 2000 in (1, 2),
    "large 30-60%": lambda i: i // 2000 in (3, 4, 5),
}


# ---------------------------------------------------------------------------------
# dev set
# ---------------------------------------------------------------------------------
def dev_photos(root: Path) -> list[Path]:
    photos = root / "photos"
    sun = sorted((photos / "sun_hays80").glob("*.jpg"))
    return sorted((photos / "bsds500" / "test").glob("*.jpg")) + sun[1::2][:40]


def dev_masks(root: Path) -> dict[str, list[Path]]:
    nv = sorted(p for p in (root / "masks" / "nvidia_irregular_test").glob("*.png") if p.stem.endswith("5"))
    out = {name: [p for p in nv if pred(int(p.stem))] for name, pred in BANDS.items()}
    out["hifill templates"] = sorted((root / "masks" / "hifill_templates").glob("*.png"))[-20:]
    return out


def read_rgb(p: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def make_cases(root: Path, per_band: int, seed: int):
    rng = random.Random(seed)
    photos = dev_photos(root)
    cases = []
    for band, masks in dev_masks(root).items():
        for _ in range(per_band):
            ph, mk = rng.choice(photos), rng.choice(masks)
            cases.append((band, ph, mk))
    return cases


def load_case(ph: Path, mk: Path):
    img = read_rgb(ph)
    m = cv2.imread(str(mk), cv2.IMREAD_GRAYSCALE)
    m = cv2.resize(m, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
    return img, np.where(m > 127, 255, 0).astype(np.uint8)


# ---------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------
def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def ssim(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    vals = []
    for ch in range(a.shape[2]):
        x, y = a[..., ch], b[..., ch]
        mx, my = blur(x), blur(y)
        sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        vals.append(s[5:-5, 5:-5].mean())
    return float(np.mean(vals))


def hole_l1(res, gt, mask):
    h = mask > 0
    return float(np.abs(res.astype(np.float32) - gt.astype(np.float32))[h].mean())


def hf_energy(img, mask):
    """RMS of the Laplacian inside the hole (seam pixels left out)."""
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    lap = cv2.Laplacian(g, cv2.CV_32F, ksize=3)
    inner = cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0  # keep the seam out of it
    if inner.sum() < 10:
        inner = mask > 0
    return float(np.sqrt(np.mean(lap[inner] ** 2)))


def sharpness(res, gt, mask):
    e0 = hf_energy(gt, mask)
    return hf_energy(res, mask) / max(e0, 1e-6)


# ---------------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------------
def m_telea(img, mask):
    return cv2.inpaint(img, mask, 5, cv2.INPAINT_TELEA)


def m_ns(img, mask):
    return cv2.inpaint(img, mask, 5, cv2.INPAINT_NS)


def m_patchmatch():
    from patchmatch import patch_match  # pypatchmatch

    if not patch_match.patchmatch_available:
        raise ImportError("pypatchmatch's native library did not build/load")

    def run(img, mask):
        return patch_match.inpaint(img, mask, patch_size=7)
    return run


class RawNet:
    """Hole box plus context -> model input size -> model -> paste the hole pixels back."""

    def __init__(self, onnx_path: Path | None = None, ckpt: Path | None = None, size: int | None = None,
                 context: float = 0.75, min_ctx: int = 48):
        self.context, self.min_ctx = context, min_ctx
        if ckpt is not None:
            import torch
            sys.path.insert(0, str(REPO / "tools"))
            from train_inpaint import load_model
            torch.set_num_threads(2)
            self.model, _ = load_model(ckpt)
            self.size = size or 256
            self._torch = torch
        else:
            import onnxruntime as ort
            spec = json.loads(Path(onnx_path).with_suffix(".json").read_text())
            self.size = size or spec["input_size"]
            if self.size != spec["input_size"]:
                raise ValueError("the ONNX model has a fixed input size; use --ckpt to try others")
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 2
            self.sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
            self.model = None

    def _infer(self, img, mask):
        if self.model is not None:
            with self._torch.no_grad():
                out = self.model.inpaint(self._torch.from_numpy(img), self._torch.from_numpy(mask))
            return out.numpy()
        return self.sess.run(["inpainted"], {"image": img, "mask": mask})[0]

    def box(self, mask):
        ys, xs = np.nonzero(mask)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        h, w = mask.shape
        side = max(y1 - y0, x1 - x0)
        margin = max(self.min_ctx, int(self.context * side))
        cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
        half = side // 2 + margin
        # a square box (no stretching), shifted/clipped into the photo
        half = min(half, max(h, w) // 2)
        y0, y1 = max(0, cy - half), min(h, cy + half)
        x0, x1 = max(0, cx - half), min(w, cx + half)
        return y0, y1, x0, x1

    def __call__(self, img, mask):
        if not mask.any():
            return img.copy()
        y0, y1, x0, x1 = self.box(mask)
        crop, mcrop = img[y0:y1, x0:x1], mask[y0:y1, x0:x1]
        S = self.size
        small = cv2.resize(crop, (S, S), interpolation=cv2.INTER_AREA)
        msmall = cv2.resize(mcrop, (S, S), interpolation=cv2.INTER_AREA) > 0  # any hole -> hole
        x = small.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        m = msmall.astype(np.float32)[None, None]
        out = self._infer(x, m)[0].transpose(1, 2, 0)
        big = cv2.resize(out, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC)
        big = np.clip(big * 255.0 + 0.5, 0, 255).astype(np.uint8)
        res = img.copy()
        hole = mcrop > 0
        res[y0:y1, x0:x1][hole] = big[hole]
        return res


def m_engine(model_path, **extra):
    from app.engine import InpaintSettings, inpaint

    settings = InpaintSettings(method="model", model_path=str(model_path) if model_path else None, **extra)

    def run(img, mask):
        return inpaint(img, mask, settings).image
    return run


# ---------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--per-band", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--methods", default="telea,ns,patchmatch,net,engine")
    ap.add_argument("--model", default=str(REPO / "models" / "default.onnx"))
    ap.add_argument("--ckpt", default=None, help="evaluate a training checkpoint as 'net' (torch)")
    ap.add_argument("--size", type=int, default=None, help="net input size (with --ckpt)")
    ap.add_argument("--grid", default=str(REPO / "bench" / "out" / "grid.png"), help="'' = no grid")
    ap.add_argument("--grid-rows", type=int, default=8)
    ap.add_argument("--json", default=None, help="also write the table as JSON here")
    args = ap.parse_args(argv)

    methods = {}
    for name in [m.strip() for m in args.methods.split(",") if m.strip()]:
        try:
            if name == "telea":
                methods[name] = m_telea
            elif name == "ns":
                methods[name] = m_ns
            elif name == "patchmatch":
                methods[name] = m_patchmatch()
            elif name == "net":
                methods[name] = RawNet(Path(args.model), Path(args.ckpt) if args.ckpt else None, args.size)
            elif name == "engine":
                methods[name] = m_engine(args.model)
            elif name == "engine-nocra":  # the engine's regions and paste, without CRA detail
                methods[name] = m_engine(args.model, cra=False)
            elif name.startswith("engine@"):  # engine@0.5: the engine at another Texture setting
                methods[name] = m_engine(args.model, texture=float(name.partition("@")[2]))
            else:
                raise SystemExit(f"unknown method {name}")
        except (ImportError, OSError, ValueError) as exc:
            print(f"# skipping {name}: {exc}")

    cases = make_cases(Path(args.data), args.per_band, args.seed)
    rows: dict = {}
    grid_rows = []
    grid_every = max(1, len(cases) // max(1, args.grid_rows))
    for ci, (band, ph, mk) in enumerate(cases):
        img, mask = load_case(ph, mk)
        masked = img.copy()
        masked[mask > 0] = 255
        row_imgs = [masked]
        for name, fn in methods.items():
            t = time.perf_counter()
            res = fn(img, mask)
            dt = time.perf_counter() - t
            keep = mask == 0
            if not np.array_equal(res[keep], img[keep]):  # score only the fill
                res = np.where(keep[..., None], img, res)
            r = rows.setdefault(band, {}).setdefault(name, {"psnr": [], "ssim": [], "l1": [], "sharp": [], "sec": []})
            r["psnr"].append(psnr(res, img))
            r["ssim"].append(ssim(res, img))
            r["l1"].append(hole_l1(res, img, mask))
            r["sharp"].append(sharpness(res, img, mask))
            r["sec"].append(dt)
            row_imgs.append(res)
        row_imgs.append(img)
        if args.grid and ci % grid_every == 0 and len(grid_rows) < args.grid_rows:
            grid_rows.append(row_imgs)
        print(f"\r{ci + 1}/{len(cases)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    table = {}
    hdr = f"{'band':<18}{'method':<14}{'PSNR':>8}{'SSIM':>8}{'L1hole':>9}{'sharp':>8}{'s/img':>9}"
    print(hdr)
    print("-" * len(hdr))
    for band, per in rows.items():
        for name, r in per.items():
            t = {"psnr": float(np.mean(r["psnr"])), "ssim": float(np.mean(r["ssim"])),
                 "l1_hole": float(np.mean(r["l1"])), "sharpness": float(np.median(r["sharp"])),
                 "sec": float(np.mean(r["sec"])), "n": len(r["psnr"])}
            table.setdefault(band, {})[name] = t
            print(f"{band:<18}{name:<14}{t['psnr']:8.2f}{t['ssim']:8.4f}{t['l1_hole']:9.2f}"
                  f"{t['sharpness']:8.2f}{t['sec']:9.3f}")
    # overall speed ratio against PatchMatch
    secs = {n: np.mean([np.mean(rows[b][n]["sec"]) for b in rows]) for n in methods}
    if "patchmatch" in secs:
        for n in methods:
            if n != "patchmatch":
                print(f"speed {n}: {secs['patchmatch'] / max(secs[n], 1e-9):.1f}x faster than patchmatch")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(table, indent=2))
    if args.grid and grid_rows:
        write_grid(Path(args.grid), grid_rows, ["input"] + list(methods) + ["original"])
        print(f"grid: {args.grid}")
    return table


def write_grid(path: Path, rows, labels, cell=200):
    out_rows = []
    header = np.full((24, cell * len(labels), 3), 255, np.uint8)
    for i, lab in enumerate(labels):
        cv2.putText(header, lab, (i * cell + 6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    out_rows.append(header)
    for imgs in rows:
        h, w = imgs[0].shape[:2]
        s = cell / max(h, w)
        cells = []
        for im in imgs:
            r = cv2.resize(im, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA)
            c = np.full((cell, cell, 3), 255, np.uint8)
            c[:r.shape[0], :r.shape[1]] = r
            cells.append(c)
        out_rows.append(np.concatenate(cells, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(out_rows, 0), cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
