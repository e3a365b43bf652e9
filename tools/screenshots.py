"""Make the README screenshots of the editor from the bundled sample photo (offscreen grab()).

    python tools/screenshots.py [--out docs/img] [--method auto]

docs/img/editor-paint.png    painting a mask with the brush (outline cursor visible)
docs/img/editor-run.png      a run in progress (progress bar naming the stage)
docs/img/editor-compare.png  the before/after divider over the result
docs/img/restore-detect.png  synthetic damage on the sample, proposed by the default detector
docs/img/restore-repair.png  a faded, noisy, tinted copy of the sample with repairs previewed

    python tools/screenshots.py --only restore      # just the two restore shots
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QEvent, QPointF, QSettings, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.canvas.document import Document
from app.io.images import read_image, read_mask
from app.ui.main_window import MainWindow
from app.ui.run_panel import METHOD_CHOICES

SAMPLE = ROOT / "resources" / "sample.png"
SAMPLE_MASK = ROOT / "resources" / "sample_mask.png"


def mouse(widget, kind: str, pos: tuple[float, float], pressed: bool) -> None:
    types = {"press": QEvent.Type.MouseButtonPress, "move": QEvent.Type.MouseMove,
             "release": QEvent.Type.MouseButtonRelease}
    left = Qt.MouseButton.LeftButton
    button = left if kind != "move" else Qt.MouseButton.NoButton
    buttons = left if pressed else Qt.MouseButton.NoButton
    p = QPointF(*pos)
    QApplication.sendEvent(widget, QMouseEvent(types[kind], p, widget.mapToGlobal(p), button, buttons,
                                               Qt.KeyboardModifier.NoModifier))


def stroke(win: MainWindow, points: list[tuple[float, float]], release: bool = True) -> None:
    view = win.canvas.view
    pts = [view.to_view(x, y) for x, y in points]
    mouse(win.canvas, "press", pts[0], True)
    for p in pts[1:]:
        mouse(win.canvas, "move", p, True)
    if release:
        mouse(win.canvas, "release", pts[-1], False)


def save(win: MainWindow, app: QApplication, path: Path) -> None:
    app.processEvents()
    win.repaint()
    win.grab().save(str(path))
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def wait_for(app: QApplication, done, seconds: float = 120.0) -> bool:
    end = time.monotonic() + seconds
    while not done() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    return bool(done())


def restore_shots(app: QApplication, settings: QSettings, out: Path) -> int:
    """The Restore tab: damage proposed on a damaged sample, then repairs of a faded one."""
    from app.restore.synthetic import BENCH_DAMAGE, add_damage

    win = MainWindow(settings=settings)
    clean = read_image(SAMPLE).rgb
    damaged = add_damage(clean, np.random.default_rng(7), BENCH_DAMAGE)
    win.set_document(Document(photo=damaged.image, source_path="damaged-sample.png"))
    win.resize(1400, 900)
    win.show()
    app.processEvents()
    win.canvas.fit()
    panel = win.restore.panel
    win.docks["Restore"].raise_()
    proposal = {}
    panel.proposal_ready.connect(lambda mask: proposal.update(mask=mask))
    wait_for(app, lambda: panel.analysis() is not None and not panel.analyser.busy())
    panel.detect_button.click()
    if not wait_for(app, lambda: "mask" in proposal):
        print("no damage proposal came", file=sys.stderr)
        return 1
    save(win, app, out / "restore-detect.png")

    # an old print: lifted blacks, low contrast, a yellow-brown tint and grain
    rng = np.random.default_rng(3)
    faded = (70 + 0.55 * clean.astype(np.float32)) * np.array([1.08, 0.97, 0.80]) + rng.normal(0, 6, clean.shape)
    win.set_document(Document(photo=np.clip(faded, 0, 255).astype(np.uint8), source_path="faded-sample.png"))
    app.processEvents()
    win.canvas.fit()
    for box in (panel.denoise_box, panel.fade_box, panel.balance_box):
        box.setChecked(True)
    result = lambda: win.session.document.result
    if not wait_for(app, lambda: result() is not None and "repair" in result().method):
        print("no repair preview came", file=sys.stderr)
        return 1
    save(win, app, out / "restore-repair.png")
    win.runner.shutdown()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="Make the editor screenshots for the README.")
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"))
    parser.add_argument("--method", default="auto", help="engine method for the run (auto, model, telea, ns)")
    parser.add_argument("--only", choices=("editor", "restore"), help="make only these shots")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    app = QApplication.instance() or QApplication([])
    settings_file = out / ".screenshots-settings.ini"
    settings = QSettings(str(settings_file), QSettings.Format.IniFormat)
    try:
        if args.only != "restore" and editor_shots(app, settings, out, args.method):
            return 1
        if args.only != "editor" and restore_shots(app, settings, out):
            return 1
    finally:
        if settings_file.exists():
            settings_file.unlink()
    return 0


def editor_shots(app: QApplication, settings: QSettings, out: Path, method: str) -> int:
    """Painting, a run in progress and the before/after compare on the sample photo."""
    win = MainWindow(settings=settings)
    loaded = read_image(SAMPLE)
    doc = Document(photo=loaded.rgb, meta=loaded.meta, source_path=str(SAMPLE))
    doc.layers.append(doc.new_layer("Shuttle"))
    win.set_document(doc)
    win.resize(1280, 800)
    win.show()
    app.processEvents()
    win.canvas.fit()

    # 1. painting: a few brush strokes over the shuttle, the last one still under way
    win.canvas.set_brush(radius=16, hardness=0.9)
    stroke(win, [(420, 8), (424, 60), (428, 130), (430, 200), (428, 270)])
    stroke(win, [(395, 40), (392, 120), (385, 200), (378, 262)])
    stroke(win, [(450, 40), (455, 120), (462, 200), (460, 260)], release=False)
    save(win, app, out / "editor-paint.png")
    mouse(win.canvas, "release", win.canvas.view.to_view(460, 260), False)

    # 2. a run: complete the mask from the demo mask (so the shot is reproducible), then run
    shuttle = read_mask(SAMPLE_MASK, size=doc.size)
    win.session.replace_layer_mask(doc.layers[0].uid, shuttle | doc.layers[0].mask, "Complete mask")
    protect = win.session.add_layer("Flag", kind="protect")
    protect.mask[:200, :60] = 255
    win.session.layer_pixels_changed.emit(protect.uid, None)
    win.session.set_active(doc.layers[0].uid)
    win.runner.method = method
    win.run_panel.method.setCurrentIndex([key for key, _text in METHOD_CHOICES].index(method))
    shot = {"taken": False}

    def on_progress(stage: str, fraction: float) -> None:
        if not shot["taken"] and 0.2 <= fraction <= 0.9:
            shot["taken"] = True
            save(win, app, out / "editor-run.png")

    win.runner.progress.connect(on_progress)
    done = {"ok": None}
    win.runner.finished.connect(lambda _o: done.update(ok=True))
    win.runner.failed.connect(lambda msg: done.update(ok=False, msg=msg))
    win.runner.cancelled.connect(lambda: done.update(ok=False, msg="cancelled"))
    win.actions.run.trigger()
    wait_for(app, lambda: done["ok"] is not None, seconds=600.0)
    if not done["ok"]:
        print(f"the run failed: {done.get('msg')}", file=sys.stderr)
        return 1
    if not shot["taken"]:
        print("note: the run finished before a mid-run progress report; editor-run.png not written", file=sys.stderr)

    # 3. compare: divider across the shuttle, mouse away from the canvas
    QApplication.sendEvent(win.canvas, QEvent(QEvent.Type.Leave))
    win.canvas.set_divider(395)
    save(win, app, out / "editor-compare.png")
    win.runner.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
