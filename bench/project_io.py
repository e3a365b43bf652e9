"""Save and open time and file size of a big project, and the PNG level choice behind them.

    python bench/project_io.py [--photo PHOTO] [--megapixels 24] [--layers 8] [--repeat 1]

The photo defaults to a synthetic 24 MP "photo" (smooth shapes, edges and sensor grain:
zlib finds about as little to squeeze in it as in a real photo); pass --photo to use a real
one, resized to the target size. Masks are brush strokes (thick polylines), as painted.

Prints, for the photo and for one mask layer, encode time and size at several zlib levels
against level 6 (Pillow's default) measured in the same run, then a full save and open of
the project with the levels app/io/project.py uses, against the same save at level 6.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.canvas.document import Document, LayerKind
from app.io import project


def synthetic_photo(w: int, h: int, seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(h // 64, 2), max(w // 64, 2), 3), dtype=np.uint8)
    base = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    for _ in range(40):  # hard-edged shapes, like objects
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(h // 40, h // 6))
        cv2.circle(base, (x, y), r, tuple(int(v) for v in rng.integers(-60, 60, 3)), -1)
    grain = rng.normal(0, 3.0, (h, w, 3)).astype(np.int16)
    return np.clip(base + grain, 0, 255).astype(np.uint8)


def brush_mask(w: int, h: int, seed: int) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        pts = np.cumsum(rng.integers(-w // 20, w // 20, (12, 2)), axis=0) + [rng.integers(0, w), rng.integers(0, h)]
        cv2.polylines(mask, [pts.astype(np.int32)], False, 255, int(rng.integers(h // 100, h // 25)))
    return mask


def make_doc(photo: np.ndarray, layers: int) -> Document:
    doc = Document(photo=photo)
    h, w = photo.shape[:2]
    for i in range(layers):
        layer = doc.new_layer(f"mask {i + 1}", LayerKind.PROTECT if i == layers - 1 else LayerKind.FILL, brush_mask(w, h, i + 1))
        doc.layers.append(layer)
    return doc


def timed(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def png_levels(label: str, img: Image.Image, levels, repeat: int) -> None:
    ref_t, ref = timed(lambda: project._encode_png(img, 6), repeat)
    print(f"{label}: level 6 (reference) {ref_t:.2f} s, {len(ref) / 1e6:.1f} MB")
    for level in levels:
        t, data = timed(lambda level=level: project._encode_png(img, level), repeat)
        print(f"  level {level}: {t:.2f} s ({t / ref_t:.2f}x time), {len(data) / 1e6:.2f} MB ({len(data) / len(ref):.2f}x size)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", help="a photo to use instead of the synthetic one (resized)")
    ap.add_argument("--megapixels", type=float, default=24.0)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--skip-levels", action="store_true", help="only the full save/open")
    args = ap.parse_args()

    w = round((args.megapixels * 1e6 * 3 / 2) ** 0.5)
    h = round(w * 2 / 3)
    if args.photo:
        from app.io.images import read_image

        photo = np.asarray(Image.fromarray(read_image(args.photo).rgb).resize((w, h), Image.LANCZOS))
        source = "given photo"
    else:
        photo = synthetic_photo(w, h)
        source = "synthetic photo"
    doc = make_doc(photo, args.layers)
    cover = np.mean([np.count_nonzero(layer.mask) / layer.mask.size for layer in doc.layers])
    print(f"{w}x{h} ({w * h / 1e6:.1f} MP, {source}), {args.layers} mask layers, {cover:.1%} painted on average")

    if not args.skip_levels:
        png_levels("photo PNG", Image.fromarray(photo, "RGB"), (0, 1, 3), args.repeat)
        layer = doc.layers[0]
        rgba = np.empty(layer.mask.shape + (4,), np.uint8)
        rgba[:, :, :3] = layer.color
        rgba[:, :, 3] = layer.mask
        rgba_img = Image.fromarray(rgba, "RGBA")
        ref_t, ref = timed(lambda: project._encode_png(rgba_img, 6), args.repeat)
        print(f"mask layer as RGBA (colour + alpha), level 6 (reference): {ref_t:.2f} s, {len(ref) / 1e3:.0f} kB")
        for level in (1, 6, 9):
            t, data = timed(lambda level=level: project._mask_png(layer, level), args.repeat)
            print(
                f"  indexed + tRNS (what we write), level {level}: {t:.2f} s ({t / ref_t:.2f}x time), "
                f"{len(data) / 1e3:.0f} kB ({len(data) / len(ref):.2f}x size)"
            )
        t, _ = timed(lambda: project._composite(doc), args.repeat)
        print(f"merged image composite of {len(doc.layers)} layers: {t:.2f} s")

    snap_t, _ = timed(lambda: project.snapshot(doc), max(args.repeat, 3))
    print(f"snapshot before a background save (the only part on the GUI thread): {snap_t * 1000:.0f} ms")

    with tempfile.TemporaryDirectory() as folder:
        target = os.path.join(folder, "big.ora")
        ref_target = os.path.join(folder, "ref.ora")
        stages: list[tuple[str, float]] = []
        ref_save, _ = timed(lambda: project.save_project(doc, ref_target, photo_level=6, mask_level=6), args.repeat)
        save_t, _ = timed(
            lambda: project.save_project(doc, target, progress=lambda s, f: stages.append((s, time.perf_counter()))),
            args.repeat,
        )
        size, ref_size = os.path.getsize(target), os.path.getsize(ref_target)
        open_t, loaded = timed(lambda: project.load_project(target), args.repeat)
        ref_open, _ = timed(lambda: project.load_project(ref_target), args.repeat)
        same = np.array_equal(loaded.photo, doc.photo) and all(
            np.array_equal(a.mask, b.mask) for a, b in zip(loaded.layers, doc.layers)
        )
    print(
        f"save: {save_t:.2f} s with levels photo={project.PHOTO_LEVEL} mask={project.MASK_LEVEL} "
        f"vs {ref_save:.2f} s at level 6 ({save_t / ref_save:.2f}x time)"
    )
    print(f"file: {size / 1e6:.1f} MB vs {ref_size / 1e6:.1f} MB at level 6 ({size / ref_size:.2f}x size)")
    print(f"open: {open_t:.2f} s (level-6 file: {ref_open:.2f} s, {open_t / ref_open:.2f}x)")
    print(f"round trip identical: {same}")
    if len(stages) > 1:
        spans = [(a[0], b[1] - a[1]) for a, b in itertools.pairwise(stages)]
        print("save stages: " + ", ".join(f"{name} {dt:.2f}s" for name, dt in spans if dt >= 0.05))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
