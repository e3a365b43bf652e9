"""launch_editor: no argument opens the bundled sample; a bad path is a message, not a crash;
a crashed session's autosave is offered for recovery instead of the sample."""

import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app.io.autosave import AutosaveStore
from app.ui.launch import SAMPLE_PHOTO, launch_editor
from app.ui.main_window import MainWindow
from app.ui.project_controller import default_autosave_folder
from tests.io.conftest import make_doc

GIVE_UP_AFTER_S = 120  # a hang guard, not a speed limit: a stuck launch fails instead of blocking the suite


def run_and_inspect(qapp, argv):
    """Start the editor as `inpaint-studio ARGV` would, wait until it has settled (photo open,
    message shown or recovery offered), note what it shows, close it."""
    seen = {}
    deadline = time.monotonic() + GIVE_UP_AFTER_S

    def recovery_box(win):
        return win.findChild(QMessageBox, "recovery_box")

    def check():
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        settled = windows and not windows[-1].files.tasks.busy() and (
            windows[-1].current_document().source_path or windows[-1].property("last_message")
            or recovery_box(windows[-1]) is not None)
        if not settled and time.monotonic() < deadline:
            QTimer.singleShot(50, check)
            return
        seen["settled"] = bool(settled)
        if windows:
            win = windows[-1]
            seen["doc"] = win.current_document()
            seen["message"] = win.property("last_message")
            box = recovery_box(win)
            seen["recovery"] = box.text() if box is not None else None
            if box is not None:
                box.button(QMessageBox.StandardButton.Cancel).click()  # "Later": keep the autosave
            win.close()
            win.deleteLater()
        qapp.exit(0)  # exit() ends exec() at once; quit() would post an event that ends later loops too

    quit_on_close = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)
    try:
        QTimer.singleShot(50, check)
        seen["rc"] = launch_editor(argv)
    finally:
        qapp.setQuitOnLastWindowClosed(quit_on_close)
    return seen


def test_no_argument_opens_the_sample_photo(qapp):
    seen = run_and_inspect(qapp, [])
    assert seen["settled"] and seen["rc"] == 0
    assert seen["doc"].source_path == str(SAMPLE_PHOTO) and seen["doc"].size == (512, 512)
    assert seen["recovery"] is None


def test_missing_photo_is_a_message(qapp, tmp_path):
    seen = run_and_inspect(qapp, [str(tmp_path / "nope.jpg")])
    assert seen["settled"] and seen["rc"] == 0
    assert "nope.jpg" in seen["message"]


def test_crashed_session_is_offered_instead_of_the_sample(qapp):
    qapp.setApplicationName("Inpaint Studio")  # as launch_editor names it: the autosave folder follows the name
    qapp.setOrganizationName("InpaintStudio")
    folder = default_autosave_folder()
    crashed = AutosaveStore(folder)
    crashed.start()
    crashed.write(make_doc(seed=3, w=60, h=40, layers=2), "attic scan.png")
    crashed._lock.close()  # as if the editor had been killed
    try:
        seen = run_and_inspect(qapp, [])
        assert seen["settled"] and seen["rc"] == 0
        assert "attic scan.png" in seen["recovery"]
        assert seen["doc"].source_path is None  # the sample does not replace the offer
        assert [r.title for r in AutosaveStore(folder).recoverable()] == ["attic scan.png"]  # "Later" keeps it
    finally:
        other = AutosaveStore(folder)
        for rec in other.recoverable():
            other.remove(rec)


def test_save_dialogs_start_beside_the_photo_but_never_in_the_programs_folder(tmp_path):
    from app.ui.file_controller import save_suggestion

    assert save_suggestion(str(tmp_path / "holiday.jpg"), "holiday.ora") == str(tmp_path / "holiday.ora")
    for source in (str(SAMPLE_PHOTO), None):  # the bundled sample; a document with no file
        suggestion = save_suggestion(source, "sample.ora")
        assert suggestion.endswith("sample.ora") and not suggestion.startswith(str(SAMPLE_PHOTO.parent))
