"""Engine benchmark: our hole-aware CRA pipeline against a reference of the seed's.

A generated 24 MP photo with a ~3 % object mask is filled by
  ours:      regions at native resolution, rows(hole) x cols(valid) aggregation;
  reference: seed 000 / HiFill: resize to a 3072 square, coarse stage at 512, full
             1024x1024 by 1024x27648 attention product in 9 chunks, resize back,
             linear mask blend.
Both use the same coarse stage. Each runs in a fresh process so peak memory is its own.
Prints time, aggregation multiply-adds and peak extra memory of both, and the ratios.
Targets: end to end >= 3x faster, >= 5x fewer multiply-adds, peak memory <= 1/2.

    python bench/engine.py [--method telea|model] [--megapixels 24]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.engine import InpaintSettings, inpaint  # noqa: E402
from app.engine import cra  # noqa: E402
from app.engine.backends.onnx import OnnxBackend  # noqa: E402
from app.engine.pipeline import resolve_coarse  # noqa: E402


def make_photo(megapixels: float, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A photo-like picture (smooth sky-to-ground light, textured ground, shapes, grain)
    and an object mask of about 3 % of its area."""
    rng = np.random.default_rng(seed)
    w = int(round((megapixels * 1e6 * 1.5) ** 0.5))
    h = int(round(w / 1.5))
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    img = np.empty((h, w, 3), np.float32)
    for c, (top, bottom) in enumerate(((90, 120), (140, 110), (200, 70))):
        img[:, :, c] = top + (bottom - top) * y + 15 * np.sin(6 * x + c)
    small = rng.normal(0, 1, (h // 16, w // 16)).astype(np.float32)
    texture = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * 12
    img += (texture * (y > 0.45))[:, :, None]
    for _ in range(40):
        cx, cy, r = int(rng.integers(0, w)), int(rng.integers(h // 2, h)), int(rng.integers(20, 200))
        colour = tuple(float(v) for v in rng.integers(40, 220, 3))
        cv2.circle(img, (cx, cy), r, colour, -1, cv2.LINE_AA)
    img += rng.normal(0, 4, (h, w, 1)).astype(np.float32)
    photo = np.clip(img, 0, 255).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    area = 0.03 * h * w
    a = int((area / np.pi * 1.4) ** 0.5)
    b = int(area / np.pi / a)
    cv2.ellipse(mask, (int(w * 0.62), int(h * 0.55)), (a, b), 20, 0, 360, 255, -1)
    return photo, mask


class CountingBackend(OnnxBackend):
    """The CPU backend (it runs the model for --method model), its matmul counting multiply-adds."""

    def __init__(self) -> None:
        super().__init__()
        self.macs = 0

    def matmul(self, a, b):
        self.macs += a.shape[0] * a.shape[1] * b.shape[1]
        return super().matmul(a, b)


def run_ours(photo, mask, settings):
    backend = CountingBackend()
    stage, backend, _, _ = resolve_coarse(settings, backend)
    out = inpaint(photo, mask, settings, backend=backend)
    return out.image, backend.macs


def run_seed_reference(photo, mask, settings):
    """Seed 000's pre/post-processing, with the coarse stage shared with ours."""
    counter = CountingBackend()
    stage, _, _, _ = resolve_coarse(settings, counter)
    # the seed's 512 px generator in a 3072 square; a fixed-size model keeps the same 6x
    size, multiple, grid = (stage.size if stage.fixed_size else 512), 6, 32
    big = size * multiple
    h, w = photo.shape[:2]
    raw_mask = (mask > 0).astype(np.float32)
    large_img = cv2.resize(photo.astype(np.float32), (big, big), interpolation=cv2.INTER_LINEAR)
    large_valid = 1.0 - cv2.resize(raw_mask, (big, big), interpolation=cv2.INTER_NEAREST)
    small_img = large_img.reshape(size, multiple, size, multiple, 3).mean(axis=(1, 3))  # resize_ave
    small_hole = cv2.resize(raw_mask, (size, size), interpolation=cv2.INTER_NEAREST) > 0.5
    coarse = stage.run(small_img, small_hole)
    inpainted = np.where(small_hole[:, :, None], coarse.image, small_img)
    if coarse.attention is not None:
        attention = coarse.attention
    else:  # the full 1024 x 1024 attention, every patch against every patch
        everything = np.arange(grid * grid)
        attention = cra.compute_attention(inpainted, grid, everything, everything, settings.attention_scale)
    low_base = cv2.resize(inpainted, (big, big), interpolation=cv2.INTER_LINEAR)
    low_large = cv2.resize(small_img, (big, big), interpolation=cv2.INTER_LINEAR)
    residual = (large_img - low_large) * large_valid[:, :, None]
    patches = cra.to_patches(residual, grid)  # 1024 x 27648
    chunk = patches.shape[1] // 9
    pieces = [counter.matmul(attention, np.ascontiguousarray(patches[:, i * chunk:(i + 1) * chunk])) for i in range(9)]
    residual = cra.from_patches(np.hstack(pieces), grid)
    res_large = np.clip(low_base + residual, 0, 255)
    res_raw = cv2.resize(res_large, (w, h), interpolation=cv2.INTER_LINEAR)
    blend = cv2.resize(small_hole.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)[:, :, None]
    out = res_raw * blend + photo.astype(np.float32) * (1 - blend)
    return out.astype(np.uint8), counter.macs


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> bool:
    """Reset VmHWM (Linux >= 4.0) so the peak measured is this run's own."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _child(which: str, data_path: str, settings_json: str, queue) -> None:
    data = np.load(data_path)
    photo, mask = data["photo"], data["mask"]
    settings = InpaintSettings.from_dict(json.loads(settings_json))
    fn = run_ours if which == "ours" else run_seed_reference
    fn(photo[:64, :64].copy(), mask[:64, :64].copy(), settings)  # warm-up: imports, model load
    base = _status_kb("VmRSS")
    if not _reset_peak():  # fall back to the lifetime peak, which may hide a smaller run
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    out, macs = fn(photo, mask, settings)
    seconds = time.perf_counter() - t0
    peak = _status_kb("VmHWM")
    outside = mask == 0
    changed = int(np.count_nonzero(np.any(out != photo, axis=2) & outside))
    queue.put({"seconds": seconds, "macs": macs, "peak_mb": (peak - base) / 1024.0, "changed_outside": changed})


def measure(which: str, data_path: str, settings: InpaintSettings) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(which, data_path, json.dumps(settings.to_dict()), queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="telea", choices=("telea", "ns", "model"))
    parser.add_argument("--megapixels", type=float, default=24.0)
    args = parser.parse_args()
    photo, mask = make_photo(args.megapixels)
    settings = InpaintSettings(method=args.method)
    print(f"photo {photo.shape[1]}x{photo.shape[0]} ({photo.shape[0] * photo.shape[1] / 1e6:.1f} MP), "
          f"mask {100 * np.count_nonzero(mask) / mask.size:.1f} %, coarse stage: {args.method}")
    with tempfile.TemporaryDirectory() as tmp:
        data_path = str(Path(tmp) / "photo.npz")
        np.savez(data_path, photo=photo, mask=mask)
        ours = measure("ours", data_path, settings)
        ref = measure("seed", data_path, settings)
    print(f"{'':28}{'ours':>14}{'seed reference':>16}{'ratio':>10}")
    print(f"{'end to end (s)':28}{ours['seconds']:14.2f}{ref['seconds']:16.2f}{ref['seconds'] / ours['seconds']:9.1f}x")
    print(f"{'aggregation multiply-adds':28}{ours['macs'] / 1e9:13.2f}G{ref['macs'] / 1e9:15.2f}G"
          f"{ref['macs'] / max(ours['macs'], 1):9.1f}x")
    print(f"{'peak extra memory (MB)':28}{ours['peak_mb']:14.0f}{ref['peak_mb']:16.0f}"
          f"{ours['peak_mb'] / max(ref['peak_mb'], 1):9.2f}")
    print(f"{'pixels changed outside mask':28}{ours['changed_outside']:14d}{ref['changed_outside']:16d}")
    ok = (ref["seconds"] / ours["seconds"] >= 3 and ref["macs"] / max(ours["macs"], 1) >= 5
          and ours["peak_mb"] <= 0.5 * ref["peak_mb"])
    print("targets (>= 3x faster, >= 5x fewer multiply-adds, <= 1/2 peak memory):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
