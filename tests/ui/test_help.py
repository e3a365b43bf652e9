"""The Help menu: the guide's shortcut table comes from the live menus, the About box names
the bundled models and the research-only licence of their training data."""

import json

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDialog, QMessageBox, QTextBrowser

from app.engine.backends import npu_toolkit_installed
from app.engine.model_spec import DEFAULT_MODEL, sidecar_path
from app.ui.actions import ActionSpec
from app.ui.help_dialogs import shortcut_rows
from app.ui.main_window import MainWindow


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    yield win
    win.runner.shutdown()


def test_guide_lists_every_shortcut_of_the_menus_including_added_ones(window, qtbot):
    window.add_action(ActionSpec("extra", "&Frobnicate…", "layer", ("Ctrl+Alt+F",)), lambda: None)
    rows = dict(shortcut_rows(window._menu_actions()))
    assert rows["Frobnicate"] == "Ctrl+Alt+F"  # mnemonic and ellipsis gone
    assert rows["Run"] == "Ctrl+Return, Ctrl+Enter"
    assert rows["Open Project"] == "Ctrl+Shift+O"  # from the project extension's File entries
    assert "Undo" in rows and "Undo" not in rows["Undo"]  # the keyboard's Undo key is left out
    window.session.add_layer("Extra")  # now Undo's menu text is "Undo Add layer": the guide says "Undo"
    assert "Undo" in dict(shortcut_rows(window._menu_actions()))
    assert "Grow Mask" in rows and "Import Mask Image" not in rows  # no shortcut, no row

    window.actions.guide.trigger()
    dialog = window.findChild(QDialog, "guide_dialog")
    assert dialog is not None and dialog.isVisible() and not dialog.isModal()
    window.actions.guide.trigger()  # again: the same guide, not a second one stacked on it
    assert len([d for d in window.findChildren(QDialog, "guide_dialog") if d.isVisible()]) == 1
    text = dialog.findChild(QTextBrowser).toPlainText()
    assert "Frobnicate" in text and "Ctrl+Alt+F" in text and "Fill detected damage" in text


def test_about_names_the_models_and_the_data_licence(window):
    window.actions.about.trigger()
    box = window.findChild(QMessageBox, "about_box")
    assert box is not None
    text = box.text()
    steps = json.loads(sidecar_path(DEFAULT_MODEL).read_text())["steps_trained"]
    assert f"inpaint-studio-default, {steps:,} training steps" in text
    assert "inpaint-studio-damage-detector" in text
    assert "Damage detector for wider damage (joined with it): inpaint-studio-damage-detector" in text
    assert "research-only" in text
    assert ("not installed" in text) != npu_toolkit_installed()
