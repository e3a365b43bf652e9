"""The editor window end to end: runs through the real engine worker, cancel, errors,
open/recent/drop, export with metadata, layer panel operations."""


import time

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent

from app.canvas import tools
from app.canvas.document import Document, InpaintOutcome, LayerKind
from app.canvas.patch import Rect
from app.engine.settings import InpaintSettings
from app.ui.main_window import MainWindow
from tests.canvas.helpers import drag


def small_photo(w=96, h=80):
    yy, xx = np.mgrid[0:h, 0:w]
    photo = np.stack([xx * 2 % 256, yy * 3 % 256, (xx + yy) % 256], axis=2).astype(np.uint8)
    return photo


@pytest.fixture
def window(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    doc = Document(photo=small_photo())
    doc.layers.append(doc.new_layer("Mask 1"))
    win.set_document(doc)
    win.resize(900, 600)
    win.show()
    qtbot.waitExposed(win)
    win.canvas.actual_size()
    yield win
    win.runner.shutdown()
    win.files.tasks.wait(5000)


def paint(win, points, radius=5):
    win.canvas.set_brush(radius=radius, hardness=1.0)
    drag(win.canvas, [win.canvas.view.to_view(*p) for p in points])


def run_to_result(win, qtbot):
    """Press Run and wait for the result (the runner's method is set by the caller)."""
    with qtbot.waitSignal(win.runner.finished, timeout=60000):
        win.actions.run.trigger()


@pytest.mark.parametrize("source", ["memory", "file"])
def test_full_run_compare_apply_undo_and_run_again(window, qtbot, tmp_path, source):
    win = window
    if source == "file":  # decoded by Pillow (the photo a user opens), not built by the test
        Image.fromarray(small_photo()).save(tmp_path / "photo.png")
        with qtbot.waitSignal(win.document_changed, timeout=10000):
            win.files.open_path(str(tmp_path / "photo.png"))
        win.canvas.actual_size()
    doc = win.current_document()
    original = doc.photo.copy()
    paint(win, [(30, 30), (60, 40)])
    mask = doc.layers[0].mask.copy()
    assert mask.any()
    win.runner.method = "telea"
    stages, shown = [], []
    win.runner.progress.connect(lambda stage, f: stages.append(stage))
    # the status bar shows the run too (the Run panel may be behind the Restore tab)
    win.runner.progress.connect(lambda stage, f: shown.append((win.status.run_bar.isVisible(),
                                                                win.status.run_bar.format())))
    with qtbot.waitSignal(win.runner.finished, timeout=60000):
        win.actions.run.trigger()
        assert not win.actions.run.isEnabled() and win.actions.cancel_run.isEnabled()
    assert doc.result is not None and win.canvas.comparing()
    assert shown and all(visible for visible, _ in shown) and any(f.startswith("Preparing") for _, f in shown)
    assert not win.status.run_bar.isVisible()  # gone when the run ends
    assert any(s.startswith("Preparing") for s in stages)
    assert "telea" in win.status.engine_label.text()
    assert win.run_panel.progress.value() == 1000
    result = doc.result.image
    assert np.array_equal(result[mask == 0], original[mask == 0])  # outside the mask: bit-identical
    assert not np.array_equal(result[mask > 0], original[mask > 0])
    # the slider shows the result right of the divider
    win.canvas.set_divider(0)
    shot = win.canvas.grab().toImage()
    x, y = (int(v) for v in win.canvas.view.to_view(45, 35))
    c = shot.pixelColor(x, y)
    assert (c.red(), c.green(), c.blue()) == tuple(int(v) for v in result[35, 45])
    # Apply: the result is the photo, the used mask is cleared; undo restores both
    win.actions.apply_result.trigger()
    assert np.array_equal(doc.photo, result) and doc.result is None and not doc.layers[0].mask.any()
    assert not win.canvas.comparing()
    assert win.run_panel.progress.format() == "Idle"  # not still asking to Apply
    win.session.undo_stack.undo()
    assert np.array_equal(doc.photo, original) and doc.result is not None
    assert win.run_panel.progress.format().startswith("Done")
    assert np.array_equal(doc.layers[0].mask, mask)
    win.session.undo_stack.redo()
    # iterative removal: paint on the new photo and run again
    paint(win, [(70, 60), (80, 65)])
    run_to_result(win, qtbot)
    second = doc.result.image
    assert np.array_equal(second[doc.layers[0].mask == 0], result[doc.layers[0].mask == 0])


def test_an_edit_that_fails_is_a_message_not_a_crash(window, qtbot):
    # an exception inside QUndoCommand.redo used to take PySide (and the unsaved work) down
    win = window
    doc = win.current_document()
    paint(win, [(30, 30), (60, 40)])
    win.runner.method = "telea"
    run_to_result(win, qtbot)
    doc.photo.flags.writeable = False  # the way the photo from a file once was
    original = doc.photo.copy()
    win.actions.apply_result.trigger()
    qtbot.waitUntil(lambda: "could not be redone" in str(win.property("last_message")), timeout=5000)
    assert "Apply result" in win.property("last_message") and "read-only" in win.property("last_message")
    assert np.array_equal(doc.photo, original)


def test_run_with_empty_mask_says_so(window):
    window.actions.run.trigger()
    assert not window.runner.running
    assert "empty" in window.status.currentMessage()
    # only a soft eraser's leftover rim: not a hole, and the message says why nothing runs
    window.current_document().layers[0].mask[10:20, 10:20] = 60
    window.actions.run.trigger()
    assert not window.runner.running
    assert "Only faint paint" in window.status.currentMessage() and "half strength" in window.status.currentMessage()


def test_another_photo_clears_the_previous_photos_message(window):
    window.actions.run.trigger()
    assert window.status.currentMessage()
    window.set_document(Document(photo=small_photo(40, 30)))
    assert window.status.currentMessage() == ""


def test_another_photo_starts_in_paint_mode(window):
    window.actions.erase_mode.trigger()
    assert window.canvas.erase
    window.set_document(Document(photo=small_photo(40, 30)))
    assert not window.canvas.erase and not window.actions.erase_mode.isChecked()


def test_cancel_leaves_the_document_unchanged(window, qtbot):
    win = window
    doc = win.current_document()
    paint(win, [(20, 20), (70, 60)], radius=8)
    photo, mask = doc.photo.copy(), doc.layers[0].mask.copy()
    win.runner.method = "telea"
    # cancel as soon as the engine reports its first stage: it polls between stages
    win.runner.progress.connect(lambda stage, f: win.actions.cancel_run.trigger() if win.runner.running else None)
    with qtbot.waitSignal(win.runner.cancelled, timeout=60000):
        win.actions.run.trigger()
    assert doc.result is None and not win.canvas.comparing()
    assert np.array_equal(doc.photo, photo) and np.array_equal(doc.layers[0].mask, mask)
    assert win.actions.run.isEnabled() and not win.actions.cancel_run.isEnabled()
    assert win.run_panel.progress.format() == "Cancelled"


def test_cancel_after_the_engine_finished_still_leaves_the_document_unchanged(window, qtbot):
    # Cancel pressed while the result is on its way to the GUI thread: dropped, not applied
    win = window
    doc = win.current_document()
    paint(win, [(20, 20), (70, 60)], radius=8)
    photo = doc.photo.copy()
    win.runner.method = "telea"
    finished = []
    win.runner.finished.connect(finished.append)
    with qtbot.waitSignal(win.runner.cancelled, timeout=60000):
        win.actions.run.trigger()
        time.sleep(1.0)  # no events processed: the worker is (almost surely) done, its result queued
        win.actions.cancel_run.trigger()
    qtbot.wait(100)
    assert finished == [] and doc.result is None and np.array_equal(doc.photo, photo)
    assert win.actions.run.isEnabled() and win.run_panel.progress.format() == "Cancelled"


def test_engine_error_is_a_message_and_changes_nothing(window, qtbot, tmp_path):
    win = window
    doc = win.current_document()
    doc.settings = InpaintSettings(method="model", model_path=str(tmp_path / "missing.onnx"), backend="cpu")
    paint(win, [(20, 20), (40, 30)])
    photo, mask = doc.photo.copy(), doc.layers[0].mask.copy()
    win.runner.method = "model"
    with qtbot.waitSignal(win.runner.failed, timeout=60000) as blocker:
        win.actions.run.trigger()
    assert "missing.onnx" in blocker.args[0]
    assert "missing.onnx" in win.property("last_message")
    assert doc.result is None and np.array_equal(doc.photo, photo) and np.array_equal(doc.layers[0].mask, mask)
    assert win.actions.run.isEnabled()
    assert "failed" in win.status.currentMessage()
    # the next run, a good one, takes the failure's message down (it stayed under "Done")
    win.runner.method = "telea"
    doc.settings = InpaintSettings()
    with qtbot.waitSignal(win.runner.finished, timeout=60000):
        win.actions.run.trigger()
    assert "failed" not in win.status.currentMessage()


def test_canvas_stays_usable_during_a_run(window, qtbot):
    win = window
    doc = win.current_document()
    paint(win, [(20, 20), (30, 20)])
    win.runner.method = "telea"
    with qtbot.waitSignal(win.runner.finished, timeout=60000):
        win.actions.run.trigger()
        paint(win, [(80, 70), (85, 70)])  # while the job runs
    assert doc.layers[0].mask[70, 82] == 255
    assert np.array_equal(doc.result.image[70, 82], doc.photo[70, 82])  # the job used the snapshot


def test_a_run_started_from_the_method_box_leaves_the_keys_to_the_photo(window, qtbot):
    """The Method box, disabled for the run while it had the focus, handed it to the tool bar's
    size box, which swallowed E, [ and ] until the photo was clicked (QA)."""
    win = window
    paint(win, [(20, 20), (30, 20)])
    win.activateWindow()
    win.run_panel.method.setFocus()
    qtbot.waitUntil(lambda: win.run_panel.method.hasFocus(), timeout=5000)
    win.runner.method = "telea"
    with qtbot.waitSignal(win.runner.finished, timeout=60000):
        win.actions.run.trigger()
    assert win.canvas.hasFocus()
    qtbot.keyClick(win.canvas, Qt.Key.Key_E)
    assert win.actions.erase_mode.isChecked()


def test_a_project_beside_the_photo_opened_is_mentioned(window, qtbot, tmp_path):
    """Save Project suggests scan.ora beside scan.png: opening the photo again (Page Up) showed it
    without its layers and no word of the project (QA)."""
    photo = tmp_path / "scan.png"
    Image.fromarray(small_photo(40, 30)).save(photo)
    with qtbot.waitSignal(window.document_changed, timeout=10000):
        window.files.open_path(str(photo))
    assert "scan.ora" not in window.status.currentMessage()
    (tmp_path / "scan.ora").write_bytes(b"a project")
    with qtbot.waitSignal(window.document_changed, timeout=10000):
        window.files.open_path(str(photo))
    assert "the project scan.ora beside it" in window.status.currentMessage()


def write_photo(path, fmt="JPEG"):
    img = Image.fromarray(small_photo(120, 90))
    exif = Image.Exif()
    exif[0x010E] = "test description"
    from PIL import ImageCms
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img.save(path, fmt, exif=exif.tobytes(), icc_profile=icc)
    return icc


def test_open_recent_drop_and_bad_file(window, qtbot, tmp_path):
    win = window
    good = tmp_path / "holiday.jpg"
    write_photo(good)
    with qtbot.waitSignal(win.document_changed, timeout=10000):
        win.files.open_path(str(good))
    assert win.current_document().size == (120, 90) and win.current_document().layers[0].name == "Mask 1"
    assert win.files.recent_files()[0].endswith("holiday.jpg")
    assert "120 × 90" in win.status.size_label.text()
    # drop a file on the window
    other = tmp_path / "other.png"
    Image.fromarray(small_photo(50, 40)).save(other)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(other))])
    # (offscreen Qt does not route synthetic drops through notify(): feed the window's drop filter)
    enter = QDragEnterEvent(QPointF(50, 50).toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier)
    assert win._drop.eventFilter(win, enter) and enter.isAccepted()
    with qtbot.waitSignal(win.document_changed, timeout=10000):
        drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                          Qt.KeyboardModifier.NoModifier)
        assert win._drop.eventFilter(win, drop)
    assert win.current_document().size == (50, 40)
    assert [p.rsplit("/", 1)[-1] for p in win.files.recent_files()[:2]] == ["other.png", "holiday.jpg"]
    # a damaged file: a message, the open document stays
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    win.files.open_path(str(bad))
    qtbot.waitUntil(lambda: not win.files.tasks.busy(), timeout=10000)
    assert "broken.jpg" in win.property("last_message")
    assert win.current_document().size == (50, 40)


def test_recent_menu_tells_same_names_apart_and_forgets_files_that_are_gone(window, qtbot, tmp_path):
    from PySide6.QtWidgets import QMenu

    win = window
    for folder in ("trip", "scans"):
        (tmp_path / folder).mkdir()
        write_photo(tmp_path / folder / "old.jpg")
        with qtbot.waitSignal(win.document_changed, timeout=10000):
            win.files.open_path(str(tmp_path / folder / "old.jpg"))
    menu = QMenu()
    win.files.fill_recent_menu(menu)
    labels = [a.text() for a in menu.actions()][:2]
    assert labels == [f"old.jpg  —  {(tmp_path / 'scans').resolve()}", f"old.jpg  —  {(tmp_path / 'trip').resolve()}"]
    assert menu.toolTipsVisible() and menu.actions()[0].toolTip() == str((tmp_path / "scans" / "old.jpg").resolve())
    # a file deleted since: opening it from the list fails with a message and drops it from the list
    (tmp_path / "trip" / "old.jpg").unlink()
    menu.actions()[1].trigger()
    qtbot.waitUntil(lambda: not win.files.tasks.busy(), timeout=10000)
    assert "old.jpg" in win.property("last_message")
    assert win.files.recent_files() == [str((tmp_path / "scans" / "old.jpg").resolve())]
    win.files.fill_recent_menu(menu)
    assert menu.actions()[0].text() == "old.jpg"  # alone again: the name is enough


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif", ".webp"])
def test_export_keeps_exif_and_icc(window, qtbot, tmp_path, ext):
    win = window
    src = tmp_path / "src.jpg"
    icc = write_photo(src)
    with qtbot.waitSignal(win.document_changed, timeout=10000):
        win.files.open_path(str(src))
    out = tmp_path / f"out{ext}"
    win.files.export_to(str(out), quality=90)
    qtbot.waitUntil(lambda: out.exists() and not win.files.tasks.busy(), timeout=10000)
    with Image.open(out) as img:
        assert img.size == (120, 90)
        assert img.info.get("icc_profile") == icc
        assert img.getexif().get(0x010E) == "test description"


def test_layer_panel_operations(window, qtbot, tmp_path):
    win = window
    s, panel, doc = win.session, win.layers_panel, win.current_document()
    win.actions.add_layer.trigger()
    win.actions.add_protect_layer.trigger()
    assert [l.name for l in doc.layers] == ["Mask 1", "Mask 2", "Protect 1"]
    assert doc.layers[2].kind == LayerKind.PROTECT
    assert panel.list.item(0).text() == "Protect 1"  # top layer first
    # rename by editing the item, hide by its check box
    item = panel.list.item(1)
    item.setText("Tourists")
    assert doc.layers[1].name == "Tourists"
    item = panel.list.item(1)
    item.setCheckState(Qt.CheckState.Unchecked)
    assert not doc.layers[1].visible
    # lock, opacity and kind of the active layer
    s.set_active(doc.layers[0].uid)
    panel.locked.setChecked(True)
    assert doc.layers[0].locked
    panel.opacity.setValue(30)
    assert doc.layers[0].opacity == pytest.approx(0.3)
    panel.kind.setCurrentIndex(1)
    panel.kind.activated.emit(1)
    assert doc.layers[0].kind == LayerKind.PROTECT
    win.actions.layer_up.trigger()
    assert [l.name for l in doc.layers] == ["Tourists", "Mask 1", "Protect 1"]
    # locked layer: clear is refused
    s.edit_mask(doc.layers[1].uid, lambda m: tools.fill_rect(m, Rect(0, 0, 96, 5)), "setup")
    win.actions.clear_layer.trigger()
    assert doc.layers[1].mask[:5].all()
    panel.locked.setChecked(False)
    win.actions.invert_layer.trigger()
    assert not doc.layers[1].mask[:5].any() and doc.layers[1].mask[5:].all()
    win.layer_ops.grow(-3)
    assert not doc.layers[1].mask[5:8].any() and doc.layers[1].mask[10:70, 10:80].all()
    win.actions.clear_layer.trigger()
    assert not doc.layers[1].mask.any()
    # export and import a layer as PNG
    s.edit_mask(doc.layers[1].uid, lambda m: tools.fill_rect(m, Rect(10, 10, 20, 10)), "setup")
    out = tmp_path / "layer.png"
    win.files.export_layer(str(out))
    qtbot.waitUntil(lambda: out.exists() and not win.files.tasks.busy(), timeout=10000)
    with qtbot.waitSignal(s.layers_changed, timeout=10000):
        win.files.import_mask(str(out))
    assert doc.layers[-1].name == "layer" and np.array_equal(doc.layers[-1].mask, doc.layers[1].mask)
    win.actions.delete_layer.trigger()
    assert "layer" not in [l.name for l in doc.layers]
    # every step above is undoable back to the start
    while s.undo_stack.canUndo():
        s.undo_stack.undo()
    assert [l.name for l in doc.layers] == ["Mask 1"] and not doc.layers[0].locked
    assert doc.layers[0].opacity == 0.5 and doc.layers[0].kind == LayerKind.FILL and not doc.layers[0].mask.any()


def test_import_mask_scales_only_a_mask_of_the_photos_aspect(window, qtbot, tmp_path):
    """Import Mask Image follows the command line's rule: a mask of another size with the
    photo's aspect ratio is scaled (and the status says so); another aspect ratio would put the
    painted areas in the wrong places, so it is refused with a message and no layer is added."""
    win, s = window, window.session
    w, h = win.current_document().size
    half = np.zeros((h // 2, w // 2), np.uint8)
    half[5:15, 10:30] = 255
    Image.fromarray(half).save(tmp_path / "half.png")
    notices = []
    win.files.notice.connect(notices.append)
    with qtbot.waitSignal(s.layers_changed, timeout=10000):
        win.files.import_mask(str(tmp_path / "half.png"))
    layer = win.current_document().layers[-1]
    assert layer.mask.shape == (h, w) and layer.mask[10:30, 20:60].all() and layer.mask.sum() == 255 * 20 * 40
    assert f"scaled from {w // 2}x{h // 2}" in notices[-1] and "does not look like a mask" not in notices[-1]
    # a photo picked by mistake is imported (undoable) but named as such
    Image.fromarray(win.current_document().photo).save(tmp_path / "holiday.png")
    with qtbot.waitSignal(s.layers_changed, timeout=10000):
        win.files.import_mask(str(tmp_path / "holiday.png"))
    assert "holiday.png does not look like a mask" in notices[-1]
    Image.fromarray(np.full((w, h), 255, np.uint8)).save(tmp_path / "portrait.png")  # turned by 90 degrees
    count = len(win.current_document().layers)
    win.files.import_mask(str(tmp_path / "portrait.png"))
    qtbot.waitUntil(lambda: win.property("last_message") is not None, timeout=10000)
    assert "another aspect ratio" in win.property("last_message")
    assert len(win.current_document().layers) == count


def test_texture_slider_sets_how_grainy_the_fill_is(window, qtbot):
    win = window
    rng = np.random.default_rng(4)
    grainy = np.clip(128 + rng.normal(0, 25, (300, 300, 3)), 0, 255).astype(np.uint8)
    doc = Document(photo=grainy)
    doc.layers.append(doc.new_layer("Mask 1"))
    doc.layers[0].mask[100:200, 100:200] = 255
    win.set_document(doc)
    win.runner.method = "telea"
    spread = {}
    for value in (0, 100):
        win.run_panel.texture.setValue(value)
        assert win.run_panel.texture_label.text() == f"{value} %"
        with qtbot.waitSignal(win.runner.finished, timeout=60000):
            win.actions.run.trigger()
            assert not win.run_panel.texture.isEnabled()  # no change of mind mid-run
        spread[value] = doc.result.image[110:190, 110:190].astype(float).std()
        win.actions.discard_result.trigger()
    assert spread[0] < 5 and spread[100] > 15


def test_dragging_a_layer_in_the_list_reorders_the_document(window, qtbot):
    from PySide6.QtCore import QModelIndex

    win = window
    panel, doc = win.layers_panel, win.current_document()
    win.actions.add_layer.trigger()
    win.actions.add_protect_layer.trigger()
    assert [panel.list.item(r).text() for r in range(3)] == ["Protect 1", "Mask 2", "Mask 1"]
    # what QListWidget's internal-move drop does: move the bottom row above the top one
    assert panel.list.model().moveRow(QModelIndex(), 2, QModelIndex(), 0)
    qtbot.waitUntil(lambda: [l.name for l in doc.layers] == ["Mask 2", "Protect 1", "Mask 1"], timeout=5000)
    assert [panel.list.item(r).text() for r in range(3)] == ["Mask 1", "Protect 1", "Mask 2"]
    win.session.undo_stack.undo()  # one undo step puts it back
    assert [l.name for l in doc.layers] == ["Mask 1", "Mask 2", "Protect 1"]
    assert [panel.list.item(r).text() for r in range(3)] == ["Protect 1", "Mask 2", "Mask 1"]


def test_restore_tab_analyses_the_photo_when_brought_to_the_front(window, qtbot):
    """Behind the Run tab the restore panel does nothing; brought to the front it analyses the
    photo in the background, and proposes nothing until Detect."""
    win = window
    panel = win.restore.panel
    qtbot.wait(100)
    assert panel.analysis() is None and not panel.analyser.busy()
    layers = [l.name for l in win.current_document().layers]
    win.docks["Restore"].raise_()
    qtbot.waitUntil(lambda: panel.analysis() is not None, timeout=20000)
    assert [l.name for l in win.current_document().layers] == layers  # no surprise layer
    with qtbot.waitSignal(panel.proposal_ready, timeout=10000):
        panel.detect_button.click()


def answer_replace_box(button):
    """Click `button` in the "Replace file?" box as soon as it is shown (it runs its own loop)."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    asked = []

    def click():
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.objectName() == "replace_box":
            asked.append(box.text())
            box.button(button).click()
        else:
            QTimer.singleShot(20, click)

    QTimer.singleShot(0, click)
    return asked


@pytest.mark.parametrize("dialog", ["export", "project", "layer"])
def test_a_name_typed_without_extension_asks_before_replacing_the_file(window, qtbot, tmp_path, monkeypatch, dialog):
    # the dialog's own overwrite question saw "victim", not the "victim.png" the program then writes
    from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

    win = window
    ext = {"export": ".png", "project": ".ora", "layer": ".png"}[dialog]
    victim = tmp_path / f"victim{ext}"
    victim.write_bytes(b"the user's other file")
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(tmp_path / "victim"), "PNG (*.png)")))
    monkeypatch.setattr(QInputDialog, "getInt", staticmethod(lambda *a, **k: (90, True)))
    from app.io.autosave import AutosaveStore

    win.projects.store = AutosaveStore(tmp_path / "autosave")  # never the user's own folder
    start = {"export": win.files.export_dialog, "project": win.projects.save_as_dialog,
             "layer": win.files.export_layer_dialog}[dialog]

    asked = answer_replace_box(QMessageBox.StandardButton.Cancel)
    start()
    assert asked and f"victim{ext} already exists" in asked[0]
    qtbot.wait(300)
    assert victim.read_bytes() == b"the user's other file"

    asked = answer_replace_box(QMessageBox.StandardButton.Yes)
    start()
    assert asked
    qtbot.waitUntil(lambda: victim.read_bytes() != b"the user's other file", timeout=10000)


def test_export_suggests_the_photos_own_format(window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    win = window
    src = tmp_path / "scan.png"
    Image.fromarray(small_photo()).save(src)
    with qtbot.waitSignal(win.document_changed, timeout=10000):
        win.files.open_path(str(src))
    offered = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: offered.append(a) or ("", "")))
    win.files.export_dialog()
    assert offered[0][2] == str(tmp_path / "scan-edited.png") and offered[0][4] == "PNG (*.png)"
    # after an export to another folder, the next photo's export is offered there (an album's
    # photos go to one folder)
    edited = tmp_path / "edited"
    edited.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: offered.append(a) or (str(edited / "one.png"), "")))
    win.files.export_dialog()
    qtbot.waitUntil(lambda: not win.files.tasks.busy() and (edited / "one.png").exists(), timeout=10000)
    qtbot.waitUntil(lambda: win.files.settings.value("export/folder") == str(edited), timeout=10000)
    win.files.export_dialog()
    assert offered[-1][2] == str(edited / "scan-edited.png")


def test_the_engine_label_is_of_the_document_on_screen(window, qtbot):
    win = window
    paint(win, [(30, 30), (60, 40)])
    win.runner.method = "telea"
    run_to_result(win, qtbot)
    doc = win.current_document()
    assert "telea" in win.status.engine_label.text()
    win.set_document(Document(photo=small_photo()))  # another photo: the last run says nothing about it
    assert win.status.engine_label.text() == "engine: not run yet"
    win.set_document(doc)  # a document with a pending result (a reopened project) names its engine
    assert "telea" in win.status.engine_label.text()


def test_a_sixteen_bit_photo_says_so_while_it_is_open(window, qtbot, tmp_path):
    """The 16-bit note outlives the status message of opening (gone after a few seconds): the
    size in the status bar carries it while the photo is open, every conversion in its tooltip."""
    import cv2

    deep = (np.random.default_rng(3).integers(0, 65536, (40, 60, 3))).astype(np.uint16)
    assert cv2.imwrite(str(tmp_path / "scan.tif"), deep)
    with qtbot.waitSignal(window.document_changed, timeout=10000):
        window.files.open_path(str(tmp_path / "scan.tif"))
    label = window.status.size_label
    assert label.text() == "60 × 40 px (0.0 MP) · 16-bit" and "16-bit colour" in label.toolTip()
    assert "exports keep 16 bits where unchanged" in label.toolTip()
    # a 16-bit file whose deep pixels cannot be taken over (premultiplied alpha) says it is edited in 8
    import tifffile

    rgba = np.full((40, 60, 4), 32768, np.uint16)
    tifffile.imwrite(tmp_path / "pre.tif", rgba, photometric="rgb", extrasamples=(1,))
    with qtbot.waitSignal(window.document_changed, timeout=10000):
        window.files.open_path(str(tmp_path / "pre.tif"))
    assert label.text() == "60 × 40 px (0.0 MP) · 8 bits of 16" and "exported with 8 bits" in label.toolTip()
    # an 8-bit photo opened next: the mark goes with the photo it belongs to
    assert cv2.imwrite(str(tmp_path / "flat.png"), np.zeros((40, 60, 3), np.uint8))
    with qtbot.waitSignal(window.document_changed, timeout=10000):
        window.files.open_path(str(tmp_path / "flat.png"))
    assert label.text() == "60 × 40 px (0.0 MP)" and label.toolTip() == ""


def test_export_shows_a_busy_bar_until_the_file_is_written(window, qtbot, tmp_path):
    """A big PNG takes many seconds to encode, longer than the status message stays."""
    bar = window.status.busy_bar
    seen = []
    window.files.busy_changed.connect(lambda busy: seen.append((busy, bar.isVisible())))
    window.files.export_to(str(tmp_path / "out.png"))
    qtbot.waitUntil(lambda: not window.files.tasks.busy(), timeout=10000)
    assert seen == [(True, True), (False, False)] and (tmp_path / "out.png").exists()


def test_export_names_and_notices_from_the_third_qa_pass(window, qtbot, tmp_path, monkeypatch):
    """A dotted name that is no image format gets the chosen type's extension; the notice
    says when the export holds a result not yet applied; a layer's name becomes a safe file
    name beside the photo."""
    from PySide6.QtWidgets import QFileDialog

    from app.ui.file_controller import file_stem

    win = window
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(tmp_path / "trip.2024.06"), "PNG (*.png)")))
    notices = []
    win.files.notice.connect(notices.append)
    win.current_document().result = None
    win.files.export_dialog()
    qtbot.waitUntil(lambda: not win.files.tasks.busy(), timeout=10000)
    assert (tmp_path / "trip.2024.06.png").exists() and notices[-1] == "Exported trip.2024.06.png"
    doc = win.current_document()
    win.session.set_result(InpaintOutcome(doc.photo.copy(), "opencv telea", "cpu"))
    win.files.export_to(str(tmp_path / "pending.png"))
    qtbot.waitUntil(lambda: not win.files.tasks.busy(), timeout=10000)
    assert notices[-1] == "Exported pending.png (with the pending result, not applied yet)"
    assert file_stem('Мачта 🚀 a/b\\c:*?"<>|') == "Мачта 🚀 a_b_c_______" and file_stem(" ../ ") == "_"
    assert file_stem("...") == "layer"


def test_undoing_a_deleted_only_layer_makes_it_the_one_to_paint_on(window):
    s = window.session
    for layer in list(window.current_document().layers):
        s.delete_layer(layer.uid)
    assert s.active_uid == 0
    s.undo_stack.undo()
    assert s.active_uid == window.current_document().layers[0].uid


def test_redo_has_ctrl_y_too_and_no_fill_layer_is_said(window):
    from PySide6.QtGui import QKeySequence

    redo = next(a for a in window.menus["edit"].actions() if a.text().replace("&", "").startswith("Redo"))
    assert QKeySequence("Ctrl+Y") in redo.shortcuts()
    # once: where the platform's redo keys have it (Windows; the offscreen platform), a second
    # Ctrl+Y made the shortcut ambiguous and Qt did nothing
    keys = [k.toString() for k in redo.shortcuts()]
    assert len(keys) == len(set(keys))
    s = window.session
    s.set_layer_props(window.current_document().layers[0].uid, kind="protect")
    window.actions.run.trigger()
    assert "no visible Fill layer" in window.status.currentMessage()


def test_quit_stays_last_in_the_file_menu(window):
    """Actions added by the controllers (Restore a Folder of Scans…) go above Quit's separator."""
    entries = window.menus["file"].actions()
    assert entries[-1] is window.actions.quit and entries[-2].isSeparator()
    assert window.actions.restore_folder in entries


def test_the_window_fits_a_laptop_screen_and_clips_no_panel(window, qtbot):
    """The side panels asked for their full height (771 px minimum: more than a 1366x768
    laptop shows); they scroll now, each at least as wide as its contents."""
    assert window.minimumSizeHint().height() <= 600
    window.resize(1000, 560)
    qtbot.waitUntil(lambda: window.height() == 560)
    for title, dock in window.docks.items():
        panel = dock.widget().widget()
        assert dock.widget().width() >= panel.minimumSizeHint().width(), title


def test_the_run_bar_shows_a_cancel_without_a_percentage(window):
    bar = window.status.run_bar
    window.status.show_run("Filling", 0.45)
    assert bar.isVisible() and bar.format() == "Filling %p %" and bar.value() == 45
    window.status.show_run("Cancelling", -1.0)  # how far a cancel is, nobody knows
    assert bar.isVisible() and bar.format() == "Cancelling"  # the text, not a percentage or a mute moving bar
    window.status.end_run(False)
    assert not bar.isVisible()


def test_the_brush_starts_at_a_size_that_fits_the_photo(qtbot, tmp_path):
    """The window starts on a 1x1 placeholder document: the brush's share of the photo must not
    be taken from it (it made a 4000 px brush that painted the whole photo in one click)."""
    win = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.set_document(Document(photo=np.zeros((1000, 1500, 3), np.uint8)))
    assert win.canvas.brush_radius == pytest.approx(20) and win.brush_options.size.value() == 40
    win.runner.shutdown()


def test_apply_after_the_layers_changed_asks_and_clears_the_layers_the_run_filled(window, qtbot):
    """A result is for the layers as they were at the run: hiding one (or painting, undoing)
    before Apply asks whether to apply it as it is or run again; applied, it clears the mask
    of every layer the run filled, a layer hidden since included (else the next run fills the
    same area again)."""
    from PySide6.QtWidgets import QMessageBox

    win, doc = window, window.current_document()
    paint(win, [(30, 30), (40, 35)])
    win.session.add_layer("Mask 2", LayerKind.FILL)
    paint(win, [(70, 55), (80, 60)])
    second = doc.layers[1]
    win.runner.method = "telea"
    run_to_result(win, qtbot)
    result = doc.result.image.copy()
    assert not win.session.result_is_stale()
    win.session.set_layer_props(second.uid, visible=False)
    assert win.session.result_is_stale()
    win.actions.apply_result.trigger()
    box = win.findChild(QMessageBox, "stale_box")
    assert box is not None and box.isVisible() and doc.result is not None  # nothing applied yet
    next(b for b in box.buttons() if b.text() == "Apply as It Is").click()
    assert np.array_equal(doc.photo, result) and doc.result is None
    assert not doc.layers[0].mask.any() and not second.mask.any()  # the hidden one too
    # painting after a run, then Apply: Run Again runs on the layers as they are now
    win.session.undo_stack.undo()
    paint(win, [(60, 20), (65, 25)])
    win.actions.apply_result.trigger()
    box = win.findChild(QMessageBox, "stale_box")
    with qtbot.waitSignal(win.runner.finished, timeout=60000):
        next(b for b in box.buttons() if b.text() == "Run Again").click()
    assert not win.session.result_is_stale()
