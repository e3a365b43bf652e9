"""A 16-bit scan is repaired at 16 bits: the steps keep its extra precision (no gaps in the
histogram after a levels stretch), agree with the 8-bit steps, and the editor and the command
line write the repaired 16-bit pixels."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QSettings

from app.canvas.document import Document
from app.cli.main import main
from app.io.images import ImageMeta, deep_pixels, read_image, to_8_bit
from app.restore import repair
from app.restore.pipeline import repair_deep
from app.restore.repair import RepairSteps, apply_repairs
from app.ui.main_window import MainWindow
from tests.restore.conftest import smooth_photo

STEPS = {
    "denoise": RepairSteps(denoise=True, denoise_strength=8.0),
    "fade": RepairSteps(fade=True),
    "balance": RepairSteps(balance=True),
    "sharpen": RepairSteps(sharpen=True),
    "all": RepairSteps(denoise=True, fade=True, balance=True, sharpen=True),
}


SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample.png"


def faded_scan(seed=0) -> np.ndarray:
    """A faded, warm 16-bit scan of a real photo: levels 30 %..70 % of the range, grain finer
    than 8 bits."""
    base = read_image(SAMPLE).rgb[96:216, 128:288].astype(np.float32) / 255.0
    rng = np.random.default_rng(seed)
    faded = (0.3 + 0.4 * base) * np.array([1.0, 0.92, 0.78], np.float32) + rng.normal(0, 0.004, base.shape)
    return np.round(np.clip(faded, 0, 1) * 65535).astype(np.uint16)


@pytest.mark.parametrize("name", sorted(STEPS))
def test_each_step_at_16_bits_agrees_with_the_8_bit_step(name):
    scan = faded_scan()
    out16 = apply_repairs(scan, STEPS[name])
    out8 = apply_repairs(to_8_bit(scan), STEPS[name])
    assert out16.dtype == np.uint16 and out16.shape == scan.shape
    difference = np.abs(to_8_bit(out16).astype(int) - out8.astype(int))
    # the 8-bit path rounds the photo and each step (Lab, each table) to whole levels, and the
    # levels stretch (2.5x here) and CLAHE enlarge those roundings: the 16-bit path is the more
    # exact of the two, so they agree on average (0.25-1.7 levels), not pixel for pixel.
    # OpenCV's own 16-bit CLAHE would be 25 levels away
    assert difference.mean() < 2.0, difference.mean()
    assert not np.array_equal(out16, scan)


def test_a_levels_stretch_of_a_16_bit_scan_leaves_no_gaps():
    """Stretching 40 % of the range to all of it in 8 bits uses every 2.5th level (combing);
    at 16 bits the result still has far more than 256 levels and spans the range."""
    scan = faded_scan()
    out = repair.auto_levels(scan)
    green = out[:, :, 1]
    assert green.min() < 1500 and green.max() > 64000
    assert np.unique(green).size > 4 * 256
    assert np.unique(repair.auto_levels(to_8_bit(scan))[:, :, 1]).size <= 256


@pytest.mark.parametrize("clip", [1.5, 4.0])
def test_clahe_at_16_bits_is_opencvs_clahe_on_8_bit_levels(clip):
    L8 = cv2.cvtColor(read_image(SAMPLE).rgb, cv2.COLOR_RGB2LAB)[:, :, 0]
    reference = cv2.createCLAHE(clip, (8, 8)).apply(L8).astype(int)
    ours = repair.clahe_16(L8.astype(np.uint16) * 257, clip, 8) / 257.0
    assert np.array_equal(np.round(ours), reference)  # 512 x 512: the tiles divide it
    # where they do not, OpenCV pads the photo and interpolates a shade differently
    part = np.ascontiguousarray(L8[:301, :403])
    reference = cv2.createCLAHE(clip, (8, 8)).apply(part).astype(int)
    ours = repair.clahe_16(part.astype(np.uint16) * 257, clip, 8) / 257.0
    assert np.abs(ours - reference).max() < 2 and np.abs(ours - reference).mean() < 0.3


def test_repair_deep_without_a_16_bit_source_is_the_8_bit_repair():
    photo = smooth_photo()
    out, deep = repair_deep(photo, None, STEPS["fade"])
    assert deep is None and np.array_equal(out, apply_repairs(photo, STEPS["fade"]))


def test_repair_deep_returns_the_8_bit_result_and_its_16_bit_source():
    scan = faded_scan()
    photo = to_8_bit(scan)
    photo[10:20, 10:20] = 128  # an earlier 8-bit edit: its pixels enter as 128 x 257
    out, deep = repair_deep(photo, scan, STEPS["fade"])
    assert deep.dtype == np.uint16 and deep.shape == scan.shape and not deep.flags.writeable
    assert np.array_equal(out, to_8_bit(deep))
    assert np.array_equal(deep, apply_repairs(deep_pixels(photo, ImageMeta(deep=scan)), STEPS["fade"]))


def test_repair_deep_keeps_a_gray_scan_gray_and_an_alpha_as_it_was():
    gray = faded_scan()[:, :, 1:2].copy()
    _, deep = repair_deep(to_8_bit(np.repeat(gray, 3, axis=2)), gray, STEPS["all"])
    assert deep.shape == gray.shape
    alpha = np.full(gray.shape, 40000, np.uint16)
    rgba = np.dstack([faded_scan(), alpha])
    _, deep = repair_deep(to_8_bit(rgba[:, :, :3]), rgba, STEPS["fade"])
    assert deep.shape == rgba.shape and np.array_equal(deep[:, :, 3:], alpha)


def test_restore_command_writes_a_16_bit_scan_repaired_at_16_bits(tmp_path):
    scan = faded_scan()
    src, out = tmp_path / "scan.png", tmp_path / "out.png"
    cv2.imwrite(str(src), cv2.cvtColor(scan, cv2.COLOR_RGB2BGR))
    assert main(["restore", str(src), "-o", str(out), "--detect", "none", "--auto-levels"]) == 0
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16
    expected = apply_repairs(scan, RepairSteps(fade=True))  # --auto-levels: levels and CLAHE
    assert np.array_equal(cv2.cvtColor(written, cv2.COLOR_BGR2RGB), expected)


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    yield win
    win.restore.panel.shutdown()
    win.runner.shutdown()
    win.files.tasks.wait(5000)


def test_applied_repairs_become_the_photos_16_bit_source_and_undo_brings_the_old_one(window, qtbot, tmp_path):
    scan = faded_scan()
    path = tmp_path / "scan.png"
    cv2.imwrite(str(path), cv2.cvtColor(scan, cv2.COLOR_RGB2BGR))
    loaded = read_image(path)
    source = loaded.meta.deep
    window.set_document(Document(photo=loaded.rgb, meta=loaded.meta))
    doc, panel = window.current_document(), window.restore.panel
    with qtbot.waitSignal(panel.repair_preview, timeout=20000):
        panel.fade_box.setChecked(True)
    expected = apply_repairs(scan, RepairSteps(fade=True))
    assert np.array_equal(doc.result.deep, expected)
    # exported before it is applied: its 16 bits too (the review found the photo's old ones used)
    image, meta = window.files.export_image()
    assert np.array_equal(deep_pixels(image, meta), expected)
    panel.apply_button.click()
    assert doc.meta.deep is not source and np.array_equal(doc.meta.deep, expected)
    assert np.array_equal(doc.photo, to_8_bit(expected))
    # every pixel keeps its 16 bits in an export or a project
    assert np.array_equal(deep_pixels(doc.photo, doc.meta), expected)
    window.session.undo_stack.undo()
    assert doc.meta.deep is source and np.array_equal(doc.photo, loaded.rgb)
    window.session.undo_stack.redo()
    assert np.array_equal(doc.meta.deep, expected)


def test_repairs_on_a_result_with_its_own_16_bits_start_from_them(qtbot):
    """A 16-bit repair reopened from a project is the base of the next repairs: they work on its
    16-bit pixels, not on the photo's source with the result's 8-bit values scaled up."""
    from app.ui.restore_panel import RestorePanel

    panel = RestorePanel()
    qtbot.addWidget(panel)
    scan = faded_scan()
    base, base_deep = repair_deep(to_8_bit(scan), scan, STEPS["fade"])
    panel.set_photo(to_8_bit(scan), deep=scan)
    panel.set_repair_source(base, base_deep)
    with qtbot.waitSignal(panel.repair_preview, timeout=10000) as sig:
        panel.sharpen_box.setChecked(True)
    assert np.array_equal(sig.args[2], apply_repairs(base_deep, RepairSteps(sharpen=True)))
    panel.show_repairs(RepairSteps(fade=True, keep_tone=True))  # an undo brings a preview back: all its boxes
    assert panel.fade_box.isChecked() and panel.keep_tone_box.isChecked()
    panel.shutdown()
