"""ProjectController against an EditSession (no main window): background save/open with
progress, snapshot isolation, cancel, autosave, crash recovery and the close question."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox, QWidget

from app.canvas.document import Document, InpaintOutcome
from app.canvas.session import EditSession
from app.io.autosave import AutosaveStore
from app.io.project import load_project, save_project
from app.ui.project_controller import ProjectController
from tests.io.conftest import make_doc

Buttons = QMessageBox.StandardButton


@pytest.fixture
def env(qtbot, tmp_path):
    window = QWidget()
    qtbot.addWidget(window)
    session = EditSession(make_doc(layers=2))
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    ctl = ProjectController(session, window, settings, autosave_folder=tmp_path / "autosave")
    ctl.opened.connect(session.set_document)  # what the main window does
    yield ctl, session, window, tmp_path
    ctl.shutdown()


def test_save_runs_in_background_with_progress(env, qtbot):
    ctl, session, _, tmp = env
    stages = []
    ctl.progress.connect(lambda stage, f: stages.append((stage, f)))
    session.set_layer_props(session.document.layers[0].uid, name="renamed")
    assert ctl.dirty
    with qtbot.waitSignal(ctl.saved, timeout=30000) as blocker:
        ctl.save_to(str(tmp / "p.ora"))
        assert ctl.busy
    assert blocker.args == [str(tmp / "p.ora")]
    assert not ctl.dirty and not ctl.busy and ctl.project_path == str(tmp / "p.ora")
    assert [s for s, _ in stages][:2] == ["header", "photo"] and stages[-1][1] == 1.0
    assert load_project(tmp / "p.ora").layers[0].name == "renamed"


def test_edits_during_a_save_stay_unsaved(env, qtbot):
    ctl, session, _, tmp = env
    layer = session.document.layers[0]
    before = layer.mask.copy()
    with qtbot.waitSignal(ctl.saved, timeout=30000):
        ctl.save_to(str(tmp / "p.ora"))
        session.replace_layer_mask(layer.uid, 255 - before, "invert")  # while it saves
    assert np.array_equal(load_project(tmp / "p.ora").layers[0].mask, before)  # the snapshot
    assert ctl.dirty  # the inversion is not in the file


def test_open_project_replaces_the_document_clean(env, qtbot):
    ctl, session, _, tmp = env
    other = make_doc(seed=9, layers=3)
    save_project(other, tmp / "o.ora")
    with qtbot.waitSignal(ctl.opened, timeout=30000):
        ctl.open_path(str(tmp / "o.ora"))
    assert np.array_equal(session.document.photo, other.photo) and len(session.document.layers) == 3
    assert ctl.project_path == str(tmp / "o.ora") and not ctl.dirty


def test_bad_project_is_a_message_and_keeps_the_document(env, qtbot):
    ctl, session, window, tmp = env
    doc = session.document
    (tmp / "bad.ora").write_bytes(b"not a zip at all")
    with qtbot.waitSignal(ctl.busy_changed, timeout=30000, check_params_cb=lambda busy: not busy):
        ctl.open_path(str(tmp / "bad.ora"))
    assert session.document is doc
    assert "Cannot open bad.ora" in window.property("last_message")
    assert "not a readable OpenRaster project" in window.property("last_message")


def test_cancel_keeps_the_previous_file(env, qtbot):
    ctl, session, _, tmp = env
    path = tmp / "p.ora"
    save_project(make_doc(seed=3), path)
    before = path.read_bytes()
    rng = np.random.default_rng(0)
    big = Document(photo=rng.integers(0, 256, (1200, 1600, 3), dtype=np.uint8))
    big.layers.append(big.new_layer("m"))
    session.set_document(big)
    notices = []
    ctl.notice.connect(notices.append)
    ctl.progress.connect(lambda stage, f: ctl.cancel() if stage == "header" else None)
    with qtbot.waitSignal(ctl.busy_changed, timeout=60000, check_params_cb=lambda busy: not busy):
        ctl.save_to(str(path))
    assert path.read_bytes() == before
    assert any("cancelled" in n for n in notices)
    assert ctl.project_path is None  # the cancelled save did not become the project's file


def test_autosave_only_when_changed(env, qtbot):
    ctl, session, _, _tmp = env
    ctl.set_autosave_minutes(2)
    ctl.start()
    assert ctl.timer.isActive() and ctl.timer.interval() == 120_000
    session.set_layer_props(session.document.layers[0].uid, visible=False)
    with qtbot.waitSignal(ctl.autosaved, timeout=30000) as blocker:
        ctl.autosave_now()
    assert load_project(blocker.args[0]).layers[0].visible is False
    with qtbot.assertNotEmitted(ctl.autosaved, wait=300):
        ctl.autosave_now()  # nothing changed since
    ctl.set_autosave_minutes(0)
    assert not ctl.timer.isActive()


def test_recover_after_a_crash(env, qtbot):
    ctl, session, _, tmp = env
    crashed = AutosaveStore(tmp / "autosave")
    crashed.start()
    work = make_doc(seed=11, layers=4)
    crashed.write(work, "wedding.tif", str(tmp / "wedding.ora"))
    crashed._lock.close()  # the process died: the OS drops its lock, the files stay
    found = ctl.start()
    assert [r.title for r in found] == ["wedding.tif"]
    with qtbot.waitSignal(ctl.opened, timeout=30000):
        box = ctl.offer_recovery(found)
        assert box is not None and "wedding.tif" in box.text()
        box.button(Buttons.Yes).click()
    assert np.array_equal(session.document.layers[3].mask, work.layers[3].mask)
    assert ctl.dirty and ctl.project_path == str(tmp / "wedding.ora")
    assert crashed.path.exists()  # kept until our own autosave holds the work
    with qtbot.waitSignal(ctl.autosaved, timeout=30000):
        ctl.autosave_now()
    assert not crashed.path.exists()
    assert ctl.store.recoverable() == []


def test_a_damaged_autosave_is_named_after_its_photo(env, qtbot):
    """The autosave's own file name is internal (a session id): the message names the photo."""
    ctl, _, window, tmp = env
    crashed = AutosaveStore(tmp / "autosave")
    crashed.start()
    crashed.write(make_doc(seed=3), "wedding.tif")
    crashed._lock.close()
    crashed.path.write_bytes(crashed.path.read_bytes()[:300])  # cut short by the crash
    found = ctl.start()
    ctl.recover(found[0])
    qtbot.waitUntil(lambda: not ctl.busy, timeout=30000)
    message = window.property("last_message")
    assert message.startswith("Cannot recover wedding.tif: The autosave of wedding.tif is not a readable")
    assert crashed.path.name not in message


def test_declined_recovery_is_removed(env, qtbot):
    ctl, _, _, tmp = env
    crashed = AutosaveStore(tmp / "autosave")
    crashed.start()
    crashed.write(make_doc(), "x")
    crashed._lock.close()
    found = ctl.start()
    box = ctl.offer_recovery(found)
    box.button(Buttons.Discard).click()
    assert not crashed.path.exists() and ctl.store.recoverable() == []


def open_question(window) -> QMessageBox:
    boxes = [b for b in window.findChildren(QMessageBox, "unsaved_box") if b.isVisible()]
    assert len(boxes) == 1
    return boxes[0]


def test_close_asks_only_with_unsaved_changes(env, qtbot):
    ctl, session, window, _tmp = env
    closed = []
    assert ctl.confirm_close(lambda: closed.append(1))  # nothing changed: close at once
    session.set_layer_props(session.document.layers[0].uid, opacity=0.9)
    assert not ctl.confirm_close(lambda: closed.append(1))  # asks, without blocking
    open_question(window).button(Buttons.Cancel).click()
    assert closed == [] and ctl.dirty
    assert not ctl.confirm_close(lambda: closed.append(1))
    open_question(window).button(Buttons.Discard).click()
    assert closed == [1]


def test_close_with_save_closes_after_the_save(env, qtbot):
    ctl, session, window, tmp = env
    ctl.project_path = str(tmp / "p.ora")
    session.set_layer_props(session.document.layers[0].uid, opacity=0.9)
    closed = []
    assert not ctl.confirm_close(lambda: closed.append(True))
    with qtbot.waitSignal(ctl.saved, timeout=30000):
        open_question(window).button(Buttons.Save).click()
    assert closed == [True] and not ctl.dirty
    assert load_project(tmp / "p.ora").layers[0].opacity == 0.9


def test_normal_exit_cleans_the_autosave(env, qtbot):
    ctl, session, _, tmp = env
    ctl.start()
    session.set_layer_props(session.document.layers[0].uid, locked=True)
    with qtbot.waitSignal(ctl.autosaved, timeout=30000):
        ctl.autosave_now()
    assert any((tmp / "autosave").glob("*.ora"))
    ctl.shutdown()
    assert list((tmp / "autosave").iterdir()) == []


def test_undoing_back_to_the_saved_state_is_clean(env, qtbot):
    """The unsaved mark follows the saved state, not a count of changes: a stroke undone, a
    result discarded or a setting changed back leave the project as saved."""
    ctl, session, _, tmp = env
    session.discard_result()
    with qtbot.waitSignal(ctl.saved, timeout=30000):
        ctl.save_to(str(tmp / "p.ora"))
    marks = []
    ctl.dirty_changed.connect(marks.append)
    layer = session.document.layers[0]
    session.replace_layer_mask(layer.uid, 255 - layer.mask, "invert")
    assert ctl.dirty
    session.undo_stack.undo()
    assert not ctl.dirty and marks == [True, False]
    session.undo_stack.redo()
    assert ctl.dirty
    session.undo_stack.undo()
    session.set_layer_props(layer.uid, name="other")  # a new edit where the undone one was
    session.undo_stack.undo()
    assert not ctl.dirty
    result = session.document.photo.copy()
    session.set_result(InpaintOutcome(result, "opencv telea", "cpu"))
    assert ctl.dirty
    session.discard_result()
    assert not ctl.dirty
    settings = session.document.settings
    session.set_settings(settings.with_(method="ns"))
    assert ctl.dirty
    session.set_settings(settings)
    assert not ctl.dirty


def test_an_edit_undone_and_replaced_during_a_save_stays_unsaved(env, qtbot):
    """Saved at history point N; meanwhile undo + another edit make a different point N: the
    file does not hold it, so the document stays unsaved (and undoing further cannot look clean)."""
    ctl, session, _, tmp = env
    layer = session.document.layers[0]
    session.set_layer_props(layer.uid, name="a")
    with qtbot.waitSignal(ctl.saved, timeout=30000):
        ctl.save_to(str(tmp / "p.ora"))
        session.undo_stack.undo()
        session.set_layer_props(layer.uid, name="b")
    assert load_project(tmp / "p.ora").layers[0].name == "a"
    assert ctl.dirty
    session.undo_stack.undo()
    assert ctl.dirty


def test_a_merged_edit_during_a_save_stays_unsaved(env, qtbot):
    """A stroke or slider drag that merges into the step being saved keeps the history's index
    and top step; the file does not hold it, so the document must stay unsaved."""
    ctl, session, _, tmp = env
    layer = session.document.layers[0]
    first = np.zeros_like(layer.mask)
    first[:4] = 255
    session.replace_layer_mask(layer.uid, first, "paint", merge_key=7)
    with qtbot.waitSignal(ctl.saved, timeout=30000):
        ctl.save_to(str(tmp / "p.ora"))
        session.replace_layer_mask(layer.uid, 255 - first, "paint", merge_key=7)  # merges
        assert session.undo_stack.count() == 1
    assert np.array_equal(load_project(tmp / "p.ora").layers[0].mask, first)
    assert ctl.dirty


def test_a_save_finishing_after_another_photo_opened_leaves_the_new_one_alone(env, qtbot):
    """Save, then open another document while it writes: the finished save must not name the
    new document after the old project (a later Ctrl+S would overwrite it) nor mark it saved."""
    ctl, session, _, tmp = env
    session.set_layer_props(session.document.layers[0].uid, name="old work")
    titled = []
    ctl.saved.connect(titled.append)  # the window titles itself with the saved project's name
    with qtbot.waitSignal(ctl.busy_changed, timeout=30000, check_params_cb=lambda busy: not busy):
        ctl.save_to(str(tmp / "old.ora"))
        session.set_document(Document(photo=np.zeros((20, 30, 3), np.uint8)))
    assert load_project(tmp / "old.ora").layers[0].name == "old work"
    assert ctl.project_path is None and titled == [] and not ctl.dirty  # the new photo as it was opened
    session.add_layer()
    assert ctl.dirty
