"""Start the editor: `inpaint-studio [PHOTO]` (no PHOTO opens the bundled sample photo)."""

from __future__ import annotations

import sys
from pathlib import Path

SAMPLE_PHOTO = Path(__file__).resolve().parents[2] / "resources" / "sample.png"


def launch_editor(argv: list[str]) -> int:
    from PySide6.QtWidgets import QApplication

    from app.ui.main_window import MainWindow, blank_document

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "inpaint-studio"])
    app.setApplicationName("Inpaint Studio")
    app.setOrganizationName("InpaintStudio")
    window = MainWindow()
    window.set_document(blank_document())
    window.show()
    from app.ui.project_controller import start_session  # autosave on; offer recovery after a crash

    recovery = start_session(window.projects)
    photo = argv[0] if argv else None
    if photo is not None and photo.lower().endswith(".ora"):
        window.projects.open_path(photo)
    elif photo is not None:
        window.files.open_path(photo)
    elif SAMPLE_PHOTO.exists() and recovery is None:
        window.files.open_path(str(SAMPLE_PHOTO), remember=False)
    return int(app.exec())
