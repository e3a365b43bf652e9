"""launch_editor: no argument opens the bundled sample; a bad path is a message, not a crash."""

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.ui.launch import SAMPLE_PHOTO, launch_editor
from app.ui.main_window import MainWindow


def run_and_inspect(qapp, argv):
    seen = {}

    def check():
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if not windows or windows[-1].files.tasks.busy() or not (windows[-1].current_document().source_path
                                                                 or windows[-1].property("last_message")):
            QTimer.singleShot(50, check)
            return
        win = windows[-1]
        seen["doc"] = win.current_document()
        seen["message"] = win.property("last_message")
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
    assert seen["rc"] == 0
    assert seen["doc"].source_path == str(SAMPLE_PHOTO) and seen["doc"].size == (512, 512)


def test_missing_photo_is_a_message(qapp, tmp_path):
    seen = run_and_inspect(qapp, [str(tmp_path / "nope.jpg")])
    assert seen["rc"] == 0
    assert "nope.jpg" in seen["message"]
