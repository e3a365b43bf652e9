"""Brush latency and undo memory on a 24 MP photo.

Per brush segment (stamp inside the bounding box + synchronous repaint of the dirty
rectangle) against a reference measured in the same run: the same stamp followed by a
repaint of the whole canvas. Both at "fit" zoom and at 100 %. Targets: median <= 4 ms,
p99 <= 16 ms, >= 10x faster than the full repaint.

Then 200 strokes of undo history on the same photo: the bytes the undo stack holds
(the patches' arrays, and what tracemalloc sees allocated) against 500 MB.

    QT_QPA_PLATFORM=offscreen python bench/paint.py [--segments 300] [--strokes 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PySide6.QtWidgets import QApplication

from app.canvas.document import Document
from app.canvas.gestures import BrushGesture
from app.canvas.session import EditSession
from app.canvas.widget import CanvasWidget

W, H = 6000, 4000  # 24 MP


def make_photo() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    photo = np.empty((H, W, 3), np.uint8)
    photo[..., 0] = (xx // 7) % 256
    photo[..., 1] = (yy // 5) % 256
    photo[..., 2] = ((xx + yy) // 11) % 256
    return photo


def walk(rng: np.random.Generator, n: int, start: tuple[float, float], step: float, box) -> list[tuple[float, float]]:
    x0, y0, x1, y1 = box
    pts = [start]
    angle = rng.uniform(0, 2 * np.pi)
    for _ in range(n):
        angle += rng.normal(0, 0.35)
        x = min(max(pts[-1][0] + step * np.cos(angle), x0), x1)
        y = min(max(pts[-1][1] + step * np.sin(angle), y0), y1)
        pts.append((x, y))
    return pts


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def time_segments(canvas: CanvasWidget, session: EditSession, points, radius: float, full: bool) -> list[float]:
    layer = session.document.layers[0]
    gesture = BrushGesture(layer.mask, radius)
    gesture.press(points[0])
    times = []
    for p in points[1:]:
        t0 = time.perf_counter()
        rect = gesture.move(p)
        if full:
            canvas.repaint()
        elif rect is not None:
            x, y, w, h = canvas.view.view_rect_of(rect, pad=2)
            canvas.repaint(x, y, w, h)
        times.append((time.perf_counter() - t0) * 1000.0)
    gesture.release()
    return times


def latency(app: QApplication, segments: int) -> bool:
    photo = make_photo()
    doc = Document(photo=photo)
    doc.layers.append(doc.new_layer("Mask 1"))
    session = EditSession(doc)
    canvas = CanvasWidget(session)
    canvas.resize(1600, 1000)
    canvas.show()
    app.processEvents()
    rng = np.random.default_rng(7)
    ok = True
    for label, setup, step in (("fit", canvas.fit, 40.0), ("100 %", canvas.actual_size, 8.0)):
        setup()
        canvas.repaint()  # build cached levels outside the timing
        x0, y0 = canvas.view.to_image(0, 0)
        x1, y1 = canvas.view.to_image(canvas.width(), canvas.height())
        box = (max(x0, 0), max(y0, 0), min(x1, W), min(y1, H))
        start = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        radius = 30.0 if label == "100 %" else 60.0
        points = walk(rng, segments, start, step, box)
        partial = time_segments(canvas, session, points, radius, full=False)
        reference = time_segments(canvas, session, points[: max(segments // 4, 20)], radius, full=True)
        med, p99 = statistics.median(partial), percentile(partial, 99)
        ref_med = statistics.median(reference)
        ratio = ref_med / med
        good = med <= 4.0 and p99 <= 16.0 and ratio >= 10.0
        ok &= good
        print(f"zoom {label:>5} ({canvas.view.zoom:.3f}), brush radius {radius:.0f} px, step {step:.0f} px:")
        print(f"  dirty-rect segment: median {med:.2f} ms, p99 {p99:.2f} ms  (targets 4 / 16 ms)")
        print(f"  full-repaint reference: median {ref_med:.2f} ms, p99 {percentile(reference, 99):.2f} ms")
        print(f"  speed-up {ratio:.1f}x (target >= 10x)  {'OK' if good else 'MISSED'}")
    canvas.close()
    return ok


def undo_memory(strokes: int) -> bool:
    photo = np.zeros((H, W, 3), np.uint8)
    doc = Document(photo=photo)
    doc.layers.append(doc.new_layer("Mask 1"))
    session = EditSession(doc)
    layer = doc.layers[0]
    rng = np.random.default_rng(11)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    patch_bytes = 0
    t0 = time.perf_counter()
    for i in range(strokes):
        radius = float(rng.uniform(10, 120))
        n = int(rng.integers(20, 120))
        start = (float(rng.uniform(0, W)), float(rng.uniform(0, H)))
        pts = walk(rng, n, start, float(rng.uniform(10, 60)), (0, 0, W, H))
        gesture = BrushGesture(layer.mask, radius, hardness=0.7, erase=(i % 5 == 4))
        gesture.press(pts[0])
        for p in pts[1:]:
            gesture.move(p)
        _rect, patch = gesture.release()
        if patch:
            patch_bytes += patch.nbytes
        session.commit_mask_edit(layer.uid, patch, "stroke")
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    elapsed = time.perf_counter() - t0
    painted = float((layer.mask > 0).mean() * 100)
    print(f"undo history: {session.undo_stack.count()} strokes on {W}x{H} ({painted:.0f} % of the mask painted), "
          f"{elapsed:.1f} s to paint")
    print(f"  patch arrays {patch_bytes / 1e6:.1f} MB; all allocations still held (tracemalloc) {held / 1e6:.1f} MB "
          f"(target < 500 MB); one full-layer copy per stroke would be {strokes * W * H / 1e6:.0f} MB")
    # undo everything and redo it: the history is complete
    before = layer.mask.copy()
    for _ in range(session.undo_stack.count()):
        session.undo_stack.undo()
    cleared = not layer.mask.any()
    for _ in range(session.undo_stack.count()):
        session.undo_stack.redo()
    restored = np.array_equal(layer.mask, before)
    print(f"  undo all -> empty mask: {cleared}; redo all -> same mask bit for bit: {restored}")
    return held < 500e6 and cleared and restored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=300)
    parser.add_argument("--strokes", type=int, default=200)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    ok = latency(app, args.segments)
    ok &= undo_memory(args.strokes)
    print("ALL TARGETS MET" if ok else "SOME TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
