"""Projects in the editor window: File menu actions and shortcuts, save/open with progress
in the status bar, the close question, and recovery at start (offscreen)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMessageBox, QProgressBar

from app.engine.settings import InpaintSettings
from app.io.autosave import AutosaveStore
from app.io.project import load_project, save_project
from app.ui.main_window import MainWindow
from app.ui.project_controller import start_session
from tests.io.conftest import make_doc

Buttons = QMessageBox.StandardButton


@pytest.fixture
def window(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings)
    win.projects.store = AutosaveStore(tmp_path / "autosave")  # never the user's own folder
    qtbot.addWidget(win)
    win.set_document(make_doc(w=96, h=64, layers=2, result=False))
    win.resize(900, 600)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.projects.shutdown()
    win.runner.shutdown()
    win.files.tasks.wait(5000)


def test_file_menu_has_project_actions_with_shortcuts(window):
    a = window.actions
    assert a["save_project"].shortcut() == QKeySequence("Ctrl+S")
    assert a["save_project_as"].shortcut() == QKeySequence("Ctrl+Shift+S")
    assert a["open_project"].shortcut() == QKeySequence("Ctrl+Shift+O")
    names = [x.objectName() for x in window.menus["file"].actions()]
    assert names.index("open_project") < names.index("save_project") < names.index("export")


def test_save_shortcut_saves_in_background_with_progress(window, qtbot, tmp_path):
    win, ctl = window, window.projects
    ctl.project_path = str(tmp_path / "w.ora")
    layer = win.current_document().layers[0]
    win.session.set_layer_props(layer.uid, name="wires")
    assert win.isWindowModified() and "[*]" in win.windowTitle()  # Qt shows the mark at the placeholder
    bar = win.status.findChild(QProgressBar, "project_progress")
    shown = []
    ctl.busy_changed.connect(lambda busy: shown.append(bar.isVisible()))
    with qtbot.waitSignal(ctl.saved, timeout=30000):
        win.actions["save_project"].trigger()
    assert shown == [True, False] and not bar.isVisible()
    assert load_project(tmp_path / "w.ora").layers[0].name == "wires"
    assert win.windowTitle().startswith("w.ora") and not win.isWindowModified()


def test_open_project_shows_its_layers(window, qtbot, tmp_path):
    other = make_doc(seed=4, w=80, h=60, layers=3)
    save_project(other, tmp_path / "o.ora")
    with qtbot.waitSignal(window.projects.opened, timeout=30000):
        window.projects.open_path(str(tmp_path / "o.ora"))
    doc = window.current_document()
    assert doc.size == (80, 60) and [x.name for x in doc.layers] == [x.name for x in other.layers]
    assert window.layers_panel.findChildren(object)  # the panel rebuilt without error
    assert "o.ora" in window.windowTitle()
    shot = window.grab()
    shot.save(str(tmp_path / "project-open.png"))
    assert not shot.isNull()


def open_question(win) -> QMessageBox:
    boxes = [b for b in win.findChildren(QMessageBox, "unsaved_box") if b.isVisible()]
    assert len(boxes) == 1
    return boxes[0]


def test_close_with_unsaved_changes_asks(window, qtbot):
    win = window
    win.session.set_layer_props(win.current_document().layers[0].uid, visible=False)
    win.close()
    assert win.isVisible()  # asking
    open_question(win).button(Buttons.Cancel).click()
    assert win.isVisible()  # cancelled: still open, nothing lost
    win.close()
    open_question(win).button(Buttons.Discard).click()
    assert not win.isVisible()


def test_opening_a_photo_with_unsaved_changes_asks_first(window, qtbot, tmp_path):
    from PIL import Image

    win = window
    photo = tmp_path / "next.png"
    Image.new("RGB", (40, 30), (10, 200, 30)).save(photo)
    win.session.set_layer_props(win.current_document().layers[0].uid, name="careful work")
    win.files.open_path(str(photo))
    open_question(win).button(Buttons.Cancel).click()
    qtbot.wait(50)
    assert win.current_document().layers[0].name == "careful work"  # nothing replaced
    with qtbot.waitSignal(win.files.document_loaded, timeout=30000):
        win.files.open_path(str(photo))
        open_question(win).button(Buttons.Discard).click()
    assert win.current_document().size == (40, 30)


def test_page_down_walks_through_the_photos_of_the_folder(window, qtbot, tmp_path):
    """Next/Previous Photo in Folder: in the file manager's order (scan2 before scan10), photos
    only, asking about unsaved work first, and saying so at either end."""
    from PIL import Image

    win = window
    for i, name in enumerate(("scan10.png", "scan2.jpg", "Scan3.TIF", "notes.txt", "album.ora")):
        (tmp_path / name).write_bytes(b"not a photo") if name.endswith((".txt", ".ora")) else \
            Image.new("RGB", (30 + i, 20), (i * 40, 90, 20)).save(tmp_path / name)
    assert win.actions.next_photo.shortcut() == QKeySequence("PgDown")
    messages = []
    win.files.notice.connect(messages.append)
    win.actions.next_photo.trigger()  # the test document was not opened from a folder
    assert "Open a photo from a folder first" in messages[-1]
    with qtbot.waitSignal(win.files.document_loaded, timeout=30000):
        win.files.open_path(str(tmp_path / "scan2.jpg"))
    seen = []
    for _ in range(2):
        with qtbot.waitSignal(win.files.document_loaded, timeout=30000):
            win.actions.next_photo.trigger()
        seen.append(win.current_document().source_path.rsplit("/", 1)[-1])
    assert seen == ["Scan3.TIF", "scan10.png"]
    win.actions.next_photo.trigger()
    assert messages[-1] == f"Last photo in {tmp_path.name}." and seen[-1] in win.current_document().source_path
    # unsaved work: asked first, and Cancel stays on the photo
    win.session.set_layer_props(win.current_document().layers[0].uid, name="careful work")
    win.actions.previous_photo.trigger()
    open_question(win).button(Buttons.Cancel).click()
    assert win.current_document().layers[0].name == "careful work"
    with qtbot.waitSignal(win.files.document_loaded, timeout=30000):
        win.actions.previous_photo.trigger()
        open_question(win).button(Buttons.Discard).click()
    assert win.current_document().source_path.endswith("Scan3.TIF")


def test_page_down_reaches_every_photo_steps_over_a_broken_one_and_leaves_spin_boxes_alone(window, qtbot,
                                                                                         tmp_path):
    from PIL import Image
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QPushButton

    from app.ui.file_controller import sibling_photo
    from app.ui.help_dialogs import shortcut_rows

    win = window
    for name in ("scan1.png", "scan01.png", "Photo.png", "photo.png"):
        Image.new("RGB", (20, 10), (50, 60, 70)).save(tmp_path / name)
    (tmp_path / "scan02.png").write_bytes(b"damaged")
    walk, here = [], tmp_path / "Photo.png"
    while here is not None:
        walk.append(here.name)
        here = sibling_photo(here, 1)
    assert walk == ["Photo.png", "photo.png", "scan01.png", "scan1.png", "scan02.png"]  # all five, in order
    with qtbot.waitSignal(win.files.document_loaded, timeout=30000):
        win.files.open_path(str(tmp_path / "scan1.png"))
    win.actions.next_photo.trigger()  # scan02.png is damaged: a message, and the next step goes past it
    qtbot.waitUntil(lambda: win.files._sibling_tried is not None, timeout=30000)
    assert win.current_document().source_path.endswith("scan1.png")
    win.actions.next_photo.trigger()
    assert "Last photo" in win.status.currentMessage()
    with qtbot.waitSignal(win.files.document_loaded, timeout=30000):
        win.actions.previous_photo.trigger()  # from the damaged one back: scan1's neighbour, scan1
    assert win.current_document().source_path.endswith("scan1.png")
    # Page Up in the brush size box steps the box, not the photo
    box = win.brush_options.size
    box.setFocus()
    before = box.value()
    qtbot.keyClick(box, Qt.Key.Key_PageUp)
    qtbot.wait(100)
    assert box.value() > before and win.current_document().source_path.endswith("scan1.png")
    for box in win.findChildren(QMessageBox):  # the damaged photo's message
        box.close()
    win.activateWindow()
    win.canvas.setFocus()
    qtbot.waitUntil(win.canvas.hasFocus)
    with qtbot.waitSignal(win.files.document_loaded, timeout=30000):  # on the canvas it steps the photo
        qtbot.keyClick(win.canvas, Qt.Key.Key_PageUp)
    assert win.current_document().source_path.endswith("scan01.png")
    assert dict(shortcut_rows(win._menu_actions()))["Next Photo in Folder"] == "PgDown"
    # from a button of a side panel (no use for the key) Page Down steps the photo too
    button = win.layers_panel.findChild(QPushButton)
    button.setFocus()
    qtbot.waitUntil(button.hasFocus)
    with qtbot.waitSignal(win.files.document_loaded, timeout=30000):
        qtbot.keyClick(button, Qt.Key.Key_PageDown)
    assert win.current_document().source_path.endswith("scan1.png")
    # a project stands where its photo does: after scan1.ora comes scan02, not its own scan1.png
    assert sibling_photo(tmp_path / "scan1.ora", 1) == tmp_path / "scan02.png"
    assert sibling_photo(tmp_path / "scan1.ora", -1) == tmp_path / "scan01.png"


def test_close_with_save_writes_then_closes(window, qtbot, tmp_path):
    win = window
    win.projects.project_path = str(tmp_path / "c.ora")
    win.session.set_layer_props(win.current_document().layers[1].uid, opacity=0.25)
    win.close()
    open_question(win).button(Buttons.Save).click()
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=30000)
    assert load_project(tmp_path / "c.ora").layers[1].opacity == 0.25


def test_recovery_offered_at_start(window, qtbot, tmp_path):
    crashed = AutosaveStore(tmp_path / "autosave")
    crashed.start()
    work = make_doc(seed=8, w=70, h=50, layers=2)
    crashed.write(work, "attic scan.png")
    crashed._lock.close()  # as if the process had died
    with qtbot.waitSignal(window.projects.opened, timeout=30000):
        box = start_session(window.projects)
        assert box is not None and "attic scan.png" in box.text()
        box.button(Buttons.Yes).click()
    doc = window.current_document()
    assert doc.size == (70, 50) and np.array_equal(doc.layers[1].mask, work.layers[1].mask)
    assert window.projects.dirty  # recovered work is not saved yet


def test_recovered_work_is_saved_beside_its_photo_never_into_the_autosave_folder(window, qtbot, tmp_path):
    """A recovered photo's work kept the autosave's own path: Save suggested the program's folder
    and an internal name, and saving there was followed by removing the autosave: the file just
    saved was gone."""
    crashed = AutosaveStore(tmp_path / "autosave")
    crashed.start()
    work = make_doc(seed=8, w=70, h=50, layers=2)
    work.source_path = str(tmp_path / "photos" / "attic scan.jpg")
    crashed.write(work, "attic scan.jpg")
    crashed._lock.close()  # as if the process had died
    with qtbot.waitSignal(window.projects.opened, timeout=30000):
        start_session(window.projects).button(Buttons.Yes).click()
    assert window.current_document().source_path == work.source_path
    assert window.windowTitle().startswith("attic scan.jpg")
    inside = tmp_path / "autosave" / "mine.ora"
    window.projects.save_to(str(inside))
    qtbot.wait(100)
    assert not inside.exists() and "autosaves" in window.property("last_message")
    assert window.projects.dirty  # nothing was saved: the question on close still comes


def test_dropped_ora_opens_as_a_project(window, qtbot, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    other = make_doc(seed=6, w=40, h=30, layers=2)
    save_project(other, tmp_path / "dropped.ora")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "dropped.ora"))])
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.projects.opened, timeout=30000):
        assert window._drop.eventFilter(window, drop)
    assert window.current_document().size == (40, 30) and len(window.current_document().layers) == 2
    assert window.projects.project_path == str(tmp_path / "dropped.ora")


def test_projects_join_open_recent_and_reopen_from_it(window, qtbot, tmp_path):
    from PySide6.QtWidgets import QMenu

    win = window
    saved = tmp_path / "saved.ora"
    win.projects.project_path = str(saved)
    with qtbot.waitSignal(win.projects.saved, timeout=30000):
        win.actions["save_project"].trigger()
    other = make_doc(seed=8, w=50, h=40, layers=3)
    save_project(other, tmp_path / "other.ora")
    with qtbot.waitSignal(win.projects.opened, timeout=30000):
        win.projects.open_path(str(tmp_path / "other.ora"))
    recent = win.files.recent_files()
    assert recent[:2] == [str((tmp_path / "other.ora").resolve()), str(saved.resolve())]
    # the menu entry opens the saved project again, as a project (its layers come back)
    menu = QMenu()
    win.files.fill_recent_menu(menu)
    entry = next(a for a in menu.actions() if a.text() == "saved.ora")
    with qtbot.waitSignal(win.projects.opened, timeout=30000):
        entry.trigger()
    assert win.projects.project_path == str(saved) and win.current_document().size == (96, 64)
    assert len(win.current_document().layers) == 2


def test_opening_a_project_over_unsaved_changes_asks_first(window, qtbot, tmp_path):
    win = window
    save_project(make_doc(seed=9, w=40, h=30, layers=1), tmp_path / "next.ora")
    win.session.set_layer_props(win.current_document().layers[0].uid, name="careful work")
    win.files.open_path(str(tmp_path / "next.ora"))  # as from Open Recent or a drop
    open_question(win).button(Buttons.Cancel).click()
    qtbot.wait(50)
    assert win.current_document().layers[0].name == "careful work"
    with qtbot.waitSignal(win.projects.opened, timeout=30000):
        win.files.open_path(str(tmp_path / "next.ora"))
        open_question(win).button(Buttons.Discard).click()
    assert win.current_document().size == (40, 30)


def test_the_run_panels_method_and_texture_travel_with_the_project(window, qtbot, tmp_path):
    """A project keeps the Run panel's method and texture: they are the document's settings,
    shown when the project opens and written when it is saved."""
    win, panel = window, window.run_panel
    other = make_doc(seed=4, w=80, h=60, layers=2)
    other.settings = other.settings.with_(method="ns", texture=0.3)
    save_project(other, tmp_path / "o.ora")
    with qtbot.waitSignal(win.projects.opened, timeout=30000):
        win.projects.open_path(str(tmp_path / "o.ora"))
    assert panel.method.currentData() == "ns" and panel.texture.value() == 30
    assert panel.texture_label.text() == "30 %" and not win.isWindowModified()
    panel.method.setCurrentIndex(panel.method.findData("telea"))
    panel.texture.setValue(75)
    assert win.isWindowModified()
    with qtbot.waitSignal(win.projects.saved, timeout=30000):
        win.projects.save_to(str(tmp_path / "o.ora"))
    back = load_project(tmp_path / "o.ora").settings
    assert (back.method, back.texture) == ("telea", 0.75)
    assert back.coarse_size == other.settings.coarse_size  # the rest of the settings as they were
    # a photo opened next keeps the panel's choices (they are not reset per photo)
    from PIL import Image
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "next.png")
    with qtbot.waitSignal(win.document_changed, timeout=10000):
        win.files.open_path(str(tmp_path / "next.png"))
    assert win.current_document().settings.method == "telea" and panel.method.currentData() == "telea"
    assert panel.texture.value() == 75
    assert win.current_document().settings.coarse_size == InpaintSettings().coarse_size  # only the panel's two


def test_the_run_panel_shows_the_opened_documents_own_result(window, qtbot, tmp_path):
    """A project with a pending result opens ready to compare ("Done", with how it was made);
    one without shows no notes of the document before."""
    win, panel = window, window.run_panel
    with_result = make_doc(seed=5, w=80, h=60, layers=2, result=True)
    save_project(with_result, tmp_path / "pending.ora")
    save_project(make_doc(seed=6, w=80, h=60, layers=2, result=False), tmp_path / "plain.ora")
    with qtbot.waitSignal(win.projects.opened, timeout=30000):
        win.projects.open_path(str(tmp_path / "pending.ora"))
    assert panel.progress.format().startswith("Done") and "opencv telea" in panel.info.text()
    with qtbot.waitSignal(win.projects.opened, timeout=30000):
        win.projects.open_path(str(tmp_path / "plain.ora"))
    assert panel.progress.format() == "Idle" and panel.info.text() == ""
    assert win.status.engine_label.text() == "engine: not run yet"


def test_a_project_with_the_strongest_texture_shows_it(window, qtbot, tmp_path):
    """Projects and --texture allow 0..2: the slider shows 200 %, not a clipped 150 %."""
    doc = make_doc(seed=4, w=80, h=60, layers=2)
    doc.settings = doc.settings.with_(texture=2.0)
    save_project(doc, tmp_path / "t.ora")
    with qtbot.waitSignal(window.projects.opened, timeout=30000):
        window.projects.open_path(str(tmp_path / "t.ora"))
    assert window.run_panel.texture.value() == 200 and window.run_panel.texture_label.text() == "200 %"
    assert window.runner.texture == 2.0


def test_a_recent_file_on_a_missing_drive_is_kept(window, tmp_path):
    """Only a file whose folder is there but which is gone is dropped: an unplugged drive's
    photos stay in the list for when it is back."""
    files = window.files
    on_drive = str(tmp_path / "unplugged" / "scan.tif")
    deleted = str(tmp_path / "deleted.png")
    files.settings.setValue("recent_files", [on_drive, deleted])
    files.forget_if_gone(on_drive)
    files.forget_if_gone(deleted)
    assert files.recent_files() == [on_drive]


def test_the_autosave_shows_no_progress_bar_or_cancel(window, qtbot, tmp_path):
    """The autosave is quiet: no bar (it showed the last open's stage at 0 %) and no Cancel
    that would not cancel it; a save the user starts shows both."""
    win, ctl = window, window.projects
    bar = win.status.findChild(QProgressBar, "project_progress")
    shown = []
    ctl.busy_changed.connect(lambda busy: shown.append((busy, bar.isVisible())))
    win.session.set_layer_props(win.current_document().layers[0].uid, name="changed")
    ctl.store.start()
    with qtbot.waitSignal(ctl.autosaved, timeout=30000):
        ctl.autosave_now()
    assert shown == [(True, False), (False, False)]
    shown.clear()
    with qtbot.waitSignal(ctl.saved, timeout=30000):
        ctl.save_to(str(tmp_path / "s.ora"))
    assert shown == [(True, True), (False, False)]


def test_the_restore_panels_choices_travel_with_the_project(window, qtbot, tmp_path):
    """A project keeps the Restore panel's detector, kinds, sensitivity and repair strengths: an
    album scan reopened next week comes back as it was worked. Not the ticks (they promise a
    preview of the photo on screen)."""
    from app.restore.choices import RestoreChoices

    win, panel = window, window.restore.panel
    other = make_doc(seed=4, w=80, h=60, layers=2)
    other.restore = RestoreChoices(kinds=("dust",), detector="hand", sensitivity=0.8, denoise_strength=7.5,
                                   clip_limit=3.0, balance_strength=0.5, sharpen_amount=1.2)
    save_project(other, tmp_path / "o.ora")
    with qtbot.waitSignal(win.projects.opened, timeout=30000):
        win.projects.open_path(str(tmp_path / "o.ora"))
    assert panel.choices() == other.restore and not win.isWindowModified()
    assert panel.detector_combo.currentData() == "hand" and not panel.scratches_box.isChecked()
    assert panel.sensitivity_label.text() == "0.80"
    steps = panel.repair_steps()
    assert (steps.denoise_strength, steps.clip_limit, steps.sharpen_amount) == (7.5, 3.0, 1.2) and not steps.any
    panel.sensitivity_slider.setValue(35)
    panel.sharpen_amount.setValue(2.0)
    assert win.isWindowModified()  # unsaved work, though not an undo step
    with qtbot.waitSignal(win.projects.saved, timeout=30000):
        win.projects.save_to(str(tmp_path / "o.ora"))
    assert not win.isWindowModified()
    back = load_project(tmp_path / "o.ora").restore
    assert (back.sensitivity, back.sharpen_amount, back.detector, back.kinds) == (0.35, 2.0, "hand", ("dust",))
    # a photo opened next keeps the panel's choices, as the Run panel's
    from PIL import Image
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "next.png")
    with qtbot.waitSignal(win.document_changed, timeout=10000):
        win.files.open_path(str(tmp_path / "next.png"))
    assert win.current_document().restore == back and panel.choices() == back


def test_restore_choices_of_a_plain_photo_are_no_unsaved_work(window, qtbot, tmp_path):
    """On a photo that is no project the Restore panel's choices are preferences carried to the
    next photo: moving the slider must not make Page Down or closing ask to save a project."""
    from PIL import Image

    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "scan.png")
    with qtbot.waitSignal(window.document_changed, timeout=10000):
        window.files.open_path(str(tmp_path / "scan.png"))
    window.restore.panel.sensitivity_slider.setValue(70)
    assert window.current_document().restore.sensitivity == 0.7 and not window.isWindowModified()
    window.run_panel.texture.setValue(40)  # the engine settings still count, as before
    assert window.isWindowModified()
