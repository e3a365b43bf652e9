"""Every menu/tool-bar action of the editor, declared in one place.

`ACTION_SPECS` lists them (name, text, shortcuts, menu, checkable); `Actions` builds the
QActions and files them by name, so `actions["run"]` or `actions.run` work. MainWindow
connects them; menus are built from the specs in order. Extensions add their own with
`Actions.add(...)` (see MainWindow.add_action) and they appear in the named menu.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup, QKeySequence

Std = QKeySequence.StandardKey


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    menu: str  # "file", "edit", "view", "tools", "layer", "run", "help"
    shortcuts: tuple = ()
    checkable: bool = False
    tip: str = ""
    separator_before: bool = False
    short: str = ""  # tool-bar text, when shorter than the menu text


MENUS = (("file", "&File"), ("edit", "&Edit"), ("view", "&View"), ("tools", "&Tools"), ("layer", "&Layer"),
         ("run", "&Run"), ("help", "&Help"))

ACTION_SPECS = (
    ActionSpec("open", "&Open Photo…", "file", (Std.Open,), tip="Open a photo (PNG, JPEG, TIFF, WebP, BMP)", short="Open"),
    ActionSpec("next_photo", "&Next Photo in Folder", "file", ("PgDown",),
               tip="Open the next photo in this photo's folder (Page Down)"),
    ActionSpec("previous_photo", "Pre&vious Photo in Folder", "file", ("PgUp",),
               tip="Open the previous photo in this photo's folder (Page Up)"),
    ActionSpec("export", "&Export Image…", "file", ("Ctrl+Shift+E",), short="Export",
               tip="Write the result (or the photo) as PNG, JPEG, TIFF or WebP, keeping EXIF and ICC"),
    ActionSpec("quit", "&Quit", "file", (Std.Quit,), separator_before=True),
    ActionSpec("zoom_in", "Zoom &In", "view", (Std.ZoomIn, "Ctrl+=")),
    ActionSpec("zoom_out", "Zoom &Out", "view", (Std.ZoomOut,)),
    ActionSpec("fit", "&Fit to Window", "view", ("Ctrl+0",), short="Fit"),
    ActionSpec("actual_size", "&Actual Size (100 %)", "view", ("Ctrl+1",), short="100%"),
    ActionSpec("show_masks", "Show &Masks", "view", ("H",), checkable=True, short="Masks", separator_before=True,
               tip="Show or hide all mask overlays"),
    ActionSpec("flip_compare", "Flip &Before/After", "view", ("\\",),
               tip="Swap the sides of the before/after divider"),
    ActionSpec("tool_brush", "&Brush", "tools", ("B",), checkable=True, tip="Paint the mask with a round brush (B)"),
    ActionSpec("tool_rect", "&Rectangle", "tools", ("R",), checkable=True, tip="Fill a rectangle (R)", short="Rect"),
    ActionSpec("tool_ellipse", "Elli&pse", "tools", ("O",), checkable=True, tip="Fill an ellipse (O)"),
    ActionSpec("tool_lasso", "&Lasso", "tools", ("L",), checkable=True, tip="Fill a free-hand outline (L)"),
    ActionSpec("erase_mode", "&Erase", "tools", ("E",), checkable=True, separator_before=True,
               tip="Tools remove mask instead of adding it (E; hold Alt to swap for one stroke)"),
    ActionSpec("bigger_brush", "Bigger Brush", "tools", ("]",)),
    ActionSpec("smaller_brush", "Smaller Brush", "tools", ("[",)),
    ActionSpec("add_layer", "&New Fill Layer", "layer", ("Ctrl+Shift+N",), tip="Add a mask layer the engine fills"),
    ActionSpec("add_protect_layer", "New &Protect Layer", "layer", (),
               tip="Add a layer whose area is never copied into the fill"),
    ActionSpec("rename_layer", "&Rename Layer…", "layer", ("F2",)),
    ActionSpec("delete_layer", "&Delete Layer", "layer", ("Ctrl+Shift+Del",)),
    ActionSpec("layer_up", "Move Layer &Up", "layer", ("Ctrl+]",), separator_before=True),
    ActionSpec("layer_down", "Move Layer Do&wn", "layer", ("Ctrl+[",)),
    ActionSpec("clear_layer", "&Clear Mask", "layer", (Std.Delete,), separator_before=True),
    ActionSpec("invert_layer", "&Invert Mask", "layer", ("Ctrl+I",)),
    ActionSpec("grow_layer", "&Grow Mask…", "layer", ("Ctrl+Shift+G",)),
    ActionSpec("shrink_layer", "&Shrink Mask…", "layer", ("Ctrl+Alt+G",)),
    ActionSpec("import_mask", "I&mport Mask Image…", "layer", (), separator_before=True,
               tip="Add a layer from a black/white image (white = fill)"),
    ActionSpec("export_layer", "E&xport Layer as PNG…", "layer", ()),
    ActionSpec("run", "&Run", "run", ("Ctrl+Return", "Ctrl+Enter"),
               tip="Fill the visible fill layers' area (Ctrl+Enter)"),
    ActionSpec("cancel_run", "&Cancel Run", "run", ("Esc",), short="Cancel"),
    ActionSpec("apply_result", "&Apply Result", "run", ("Ctrl+Shift+Return",), short="Apply", separator_before=True,
               tip="Make the result the working photo (undoable)"),
    ActionSpec("discard_result", "&Discard Result", "run", ("Ctrl+Shift+Backspace",), short="Discard"),
    ActionSpec("guide", "&Quick Guide and Shortcuts", "help", (Std.HelpContents,),
               tip="How to remove an object or repair an old photo, and every keyboard shortcut"),
    ActionSpec("about", "&About Inpaint Studio", "help", ()),
)


class Actions:
    def __init__(self, parent: QObject) -> None:
        self._parent = parent
        self._actions: dict[str, QAction] = {}
        self._specs: list[ActionSpec] = []
        for spec in ACTION_SPECS:
            self.add(spec)
        self.tool_group = QActionGroup(parent)
        for name in ("tool_brush", "tool_rect", "tool_ellipse", "tool_lasso"):
            self.tool_group.addAction(self._actions[name])
        self._actions["tool_brush"].setChecked(True)
        self._actions["show_masks"].setChecked(True)

    def add(self, spec: ActionSpec) -> QAction:
        if spec.name in self._actions:
            raise ValueError(f"action {spec.name!r} exists already")
        action = QAction(spec.text, self._parent)
        action.setObjectName(spec.name)
        action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
        action.setCheckable(spec.checkable)
        if spec.short:
            action.setIconText(spec.short)
        if spec.tip:
            action.setToolTip(spec.tip)
            action.setStatusTip(spec.tip)
        self._actions[spec.name] = action
        self._specs.append(spec)
        return action

    def specs(self, menu: str) -> list[ActionSpec]:
        return [s for s in self._specs if s.menu == menu]

    def __getitem__(self, name: str) -> QAction:
        return self._actions[name]

    def __getattr__(self, name: str) -> QAction:
        try:
            return self.__dict__["_actions"][name]
        except KeyError:
            raise AttributeError(name) from None
