"""The layers panel: the mask layers (top layer first), their visibility and names, and the
active layer's kind, lock, colour and opacity. Every change goes through the session, so it
is undoable; the panel redraws from the session's signals."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QColorDialog,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.canvas.document import LayerKind, MaskLayer
from app.canvas.session import EditSession
from app.ui.actions import Actions

UID_ROLE = Qt.ItemDataRole.UserRole


def layer_icon(layer: MaskLayer, size: int = 20) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(QColor(*layer.color))
    p.setPen(QColor(20, 20, 20))
    p.drawRoundedRect(1, 1, size - 2, size - 2, 3, 3)
    p.setPen(QColor(255, 255, 255))
    font = p.font()
    font.setBold(True)
    font.setPixelSize(size - 8)
    p.setFont(font)
    p.drawText(pix.rect(), Qt.AlignmentFlag.AlignCenter, "P" if layer.kind == LayerKind.PROTECT else "F")
    if layer.locked:  # a dark corner block marks a locked layer
        p.setBrush(QColor(20, 20, 20))
        p.drawRect(size - 8, size - 8, 7, 7)
    p.end()
    return QIcon(pix)


class _LayerList(QListWidget):
    """Asks for room for about five layers (Qt's default asks for 192 px, which pushed the
    Restore panel's Apply button below a laptop screen); it still grows with the dock."""

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), 112)


class LayersPanel(QWidget):
    def __init__(self, session: EditSession, actions: Actions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.list = _LayerList()
        self.list.setToolTip(
            "Tick to show, double-click to rename, drag to reorder. F = fill layer, P = protect layer, "
            "dark corner = locked"
        )
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.list.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.kind = QComboBox()
        self.kind.addItem("Fill (remove this area)", LayerKind.FILL)
        self.kind.addItem("Protect (never copy from here)", LayerKind.PROTECT)
        self.locked = QCheckBox("Locked")
        self.colour = QPushButton()
        self.colour.setToolTip("Overlay colour")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setToolTip("Overlay opacity")

        buttons = QHBoxLayout()
        for name in ("add_layer", "add_protect_layer", "delete_layer", "layer_up", "layer_down"):
            button = QToolButton()
            button.setDefaultAction(actions[name])
            button.setText({"add_layer": "+ Fill", "add_protect_layer": "+ Protect", "delete_layer": "Delete",
                            "layer_up": "▲", "layer_down": "▼"}[name])
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            buttons.addWidget(button)
        buttons.addStretch(1)
        form = QFormLayout()
        form.addRow("Kind", self.kind)
        form.addRow("", self.locked)
        form.addRow("Colour", self.colour)
        form.addRow("Opacity", self.opacity)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        layout.addLayout(form)

        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemChanged.connect(self._on_item_changed)
        # after the drop has finished: the move rebuilds the list
        self.list.model().rowsMoved.connect(lambda *_: QTimer.singleShot(0, self._follow_dragged_order))
        self.kind.activated.connect(lambda i: self._set(kind=self.kind.itemData(i)))
        self.locked.toggled.connect(lambda on: self._set(locked=on))
        self.colour.clicked.connect(self._pick_colour)
        self.opacity.valueChanged.connect(lambda v: self._set(opacity=v / 100.0))
        session.layers_changed.connect(self.refresh)
        session.document_replaced.connect(self.refresh)
        # only the selection moves: rebuilding the list under the pointer would end a drag
        session.active_layer_changed.connect(self._select_active)
        self.refresh()

    # ---------------------------------------------------------------- view from model
    def refresh(self) -> None:
        doc = self.session.document
        with QSignalBlocker(self.list):
            self.list.clear()
            for layer in reversed(doc.layers):  # top layer first, as in paint programs
                item = QListWidgetItem(layer_icon(layer), layer.name)
                item.setData(UID_ROLE, layer.uid)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if layer.visible else Qt.CheckState.Unchecked)
                kind = "protect" if layer.kind == LayerKind.PROTECT else "fill"
                item.setToolTip(f"{layer.name}: {kind} layer{', locked' if layer.locked else ''}")
                self.list.addItem(item)
                if layer.uid == self.session.active_uid:
                    self.list.setCurrentItem(item)
        self._show_props(self.session.active_layer())

    def _select_active(self, _uid=None) -> None:
        with QSignalBlocker(self.list):
            for row in range(self.list.count()):
                item = self.list.item(row)
                if int(item.data(UID_ROLE)) == self.session.active_uid:
                    self.list.setCurrentItem(item)
        self._show_props(self.session.active_layer())

    def _show_props(self, layer: MaskLayer | None) -> None:
        for w in (self.kind, self.locked, self.colour, self.opacity):
            w.setEnabled(layer is not None)
        if layer is None:
            self.colour.setStyleSheet("")  # not the colour of a layer that is gone
            return
        with QSignalBlocker(self.kind), QSignalBlocker(self.locked), QSignalBlocker(self.opacity):
            self.kind.setCurrentIndex(0 if layer.kind == LayerKind.FILL else 1)
            self.locked.setChecked(layer.locked)
            self.opacity.setValue(round(layer.opacity * 100))
        r, g, b = layer.color
        self.colour.setStyleSheet(f"background-color: rgb({r},{g},{b}); min-width: 48px;")

    # ---------------------------------------------------------------- model from view
    def _on_current(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if item is not None:
            self.session.set_active(int(item.data(UID_ROLE)))

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        uid = int(item.data(UID_ROLE))
        layer = self.session.document.layer_by_uid(uid)
        visible = item.checkState() == Qt.CheckState.Checked
        name = item.text().strip()
        if visible != layer.visible:
            self.session.set_layer_props(uid, visible=visible)
        elif name and name != layer.name:
            self.session.set_layer_props(uid, name=name)
        else:
            self.refresh()  # an empty name: put the old one back

    def _follow_dragged_order(self) -> None:
        """A layer was dragged in the list: make the document's order follow (undoable)."""
        doc = self.session.document
        shown = [int(self.list.item(r).data(UID_ROLE)) for r in range(self.list.count())]
        moved = self._dragged(shown, [layer.uid for layer in reversed(doc.layers)])
        if moved is None:
            self.refresh()  # not a single move: show the document's order again
            return
        self.session.move_layer(moved, len(shown) - 1 - shown.index(moved))  # the list shows the top first

    @staticmethod
    def _dragged(shown: list[int], order: list[int]) -> int | None:
        """The layer whose move alone turns `order` into `shown` (None if there is none)."""
        if shown == order:
            return None
        for uid in order:
            rest = [u for u in order if u != uid]
            if rest == [u for u in shown if u != uid]:
                return uid
        return None

    def _set(self, **props) -> None:
        layer = self.session.active_layer()
        if layer is not None:
            self.session.set_layer_props(layer.uid, **props)

    def _pick_colour(self) -> None:
        layer = self.session.active_layer()
        if layer is None:
            return
        colour = QColorDialog.getColor(QColor(*layer.color), self, "Overlay colour")
        if colour.isValid():
            self._set(color=(colour.red(), colour.green(), colour.blue()))

    def rename_active(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.list.editItem(item)
