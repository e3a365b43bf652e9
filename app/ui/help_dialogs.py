"""The Help menu: a quick guide (the workflow, the mouse, every shortcut of the menus) and an
About box (versions, the bundled models and the licence of the data they were trained on).

The shortcut table is built from the live actions, so it cannot drift from the menus."""

from __future__ import annotations

import html
import importlib
import json
import platform

import numpy as np
from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMessageBox, QTextBrowser, QVBoxLayout, QWidget

from app import __version__ as app_version
from app.engine.backends import npu_toolkit_installed
from app.engine.model_spec import DEFAULT_MODEL, sidecar_path
from app.restore.learned import DEFAULT_MODEL as DEFAULT_DETECTOR
from app.restore.learned import WIDE_MODEL as WIDE_DETECTOR

GUIDE = """
<h3>Remove something from a photo</h3>
<ol>
<li><b>Open</b> a photo (Ctrl+O, or drop it on the window).</li>
<li>Paint over what should go with the <b>Brush</b> (B); <b>Rectangle</b> (R), <b>Ellipse</b> (O)
and <b>Lasso</b> (L) fill shapes. <b>Erase</b> (E, or hold Alt for one stroke) takes mask away; [ and ] change the
brush size. Cover the object's shadow and a few pixels around it.</li>
<li><b>Run</b> (Ctrl+Enter). The fill runs in the background; Esc cancels it.</li>
<li>Drag the <b>divider</b> on the photo to compare before and after (\\ swaps the sides).</li>
<li><b>Apply</b> keeps the result (undoable); <b>Discard</b> drops it. Then <b>Export</b>
(Ctrl+Shift+E): pixels outside the mask stay exactly as they were, EXIF and colour profile
are kept.</li>
</ol>
<p>A <b>Protect</b> layer marks what must never be copied into the fill (a face, a sign).
Several fill layers can be shown, hidden and run together. <b>Save Project</b> keeps the photo
with its layers to work on later; the editor also saves a recovery copy as you work.
Page Down and Page Up open the next and previous photo of the folder.</p>
<h3>Repair an old photo</h3>
<p>On the <b>Restore</b> tab press <b>Detect damage</b>: scratches and dust are proposed as
the "Detected damage" layer. Move the sensitivity slider until the proposal fits, trim it with
the brush and eraser (after the last slider move: a move proposes afresh), then <b>Fill detected
damage</b> and Apply. Denoise, fade repair, colour balance and sharpen are toggles previewed
with the divider; <b>Apply repairs</b> keeps them.</p>
<h3>Mouse</h3>
<p>Wheel: zoom about the cursor. Space + drag or the middle button: pan.
Alt while painting: erase (or paint, in Erase mode).</p>
"""


def shortcut_rows(actions: list[QAction]) -> list[tuple[str, str]]:
    """(command, keys) for every action that has a shortcut, in menu order, without the
    mnemonic '&' and the '…' of the menu text."""
    rows = []
    for action in actions:
        keys = []
        for key in action.shortcuts():
            text = key.toString(QKeySequence.SequenceFormat.NativeText)
            # the Undo, Redo and Help keys and F13-F35 of the platform's bindings: few keyboards have them
            rare = text in ("Undo", "Redo", "Help") or (text[:1] == "F" and text[1:].isdigit() and int(text[1:]) > 12)
            if text and text not in keys and not rare:
                keys.append(text)
        if keys:
            # Undo and Redo name the step they would undo ("Undo Paint stroke"): their own name is set apart
            name = action.property("guide_name") or action.text()
            rows.append((name.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…"), ", ".join(keys)))
    return rows


def guide_html(actions: list[QAction]) -> str:
    table = "".join(f"<tr><td>{html.escape(name)}</td><td>&nbsp;&nbsp;<b>{html.escape(keys)}</b></td></tr>"
                    for name, keys in shortcut_rows(actions))
    return f"{GUIDE}<h3>Keyboard shortcuts</h3><table>{table}</table>"


def show_guide(parent: QWidget, actions: list[QAction]) -> QDialog:
    shown = parent.findChild(QDialog, "guide_dialog")
    if shown is not None and shown.isVisible():  # one guide, brought to the front
        shown.raise_()
        shown.activateWindow()
        return shown
    dialog = QDialog(parent)
    dialog.setObjectName("guide_dialog")
    dialog.setWindowTitle("Inpaint Studio – Quick Guide")
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    text = QTextBrowser()
    text.setHtml(guide_html(actions))
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.close)
    layout = QVBoxLayout(dialog)
    layout.addWidget(text)
    layout.addWidget(buttons)
    dialog.resize(560, 640)
    dialog.show()  # not modal: the guide can stay open beside the photo
    return dialog


def _module_version(name: str) -> str:
    """The version of the module that runs (whichever package installed it: -gpu, -headless)."""
    try:
        return str(importlib.import_module(name).__version__)
    except ImportError:
        return "not installed"


def _model_line(title: str, model) -> str:
    try:
        sidecar = json.loads(sidecar_path(model).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"<li>{title}: not found ({html.escape(model.name)})</li>"
    steps = sidecar.get("steps_trained")
    trained = f", {steps:,} training steps" if isinstance(steps, int) else ""
    return f"<li>{title}: {html.escape(str(sidecar.get('name', model.stem)))}{trained}</li>"


def about_html() -> str:
    acl = "installed" if npu_toolkit_installed() else "not installed (the CPU runs the models)"
    return (
        f"<h3>Inpaint Studio {app_version}</h3>"
        "<p>Removes objects from photos and repairs old photos, offline.</p>"
        "<ul>"
        + _model_line("Fill model", DEFAULT_MODEL)
        + _model_line("Damage detector", DEFAULT_DETECTOR)
        + _model_line("Damage detector for wider damage (joined with it)", WIDE_DETECTOR)
        + "</ul>"
        "<p>The bundled models were trained by this project on research-only photo collections "
        "(BSDS500, Urban100, Sun-Hays80, NVIDIA irregular masks); the weights hold no image of "
        "them. Check those terms before using the models commercially (models/MODEL_CARD.md).</p>"
        f"<p>Python {platform.python_version()}, Qt for Python {pyside_version}, "
        f"onnxruntime {_module_version('onnxruntime')}, OpenCV {_module_version('cv2')}, "
        f"NumPy {np.__version__}. Ascend NPU toolkit (pyacl): {acl}.</p>"
    )


def show_about(parent: QWidget) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Information, "About Inpaint Studio", about_html(),
                      QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("about_box")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    box.open()
    return box
