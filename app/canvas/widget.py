"""The canvas: draws the photo, the mask overlays and the before/after divider; turns mouse
input into gestures (app/canvas/gestures.py) and view changes.

It keeps QImages over the document's arrays (app/canvas/images.py), so a brush segment
costs a stamp inside its bounding box plus a repaint of that rectangle only.
Zoom: wheel (about the cursor), fit, 100 %. Pan: space-drag or middle button.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRect, QRectF, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import (
    QColor,
    QCursor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPolygonF,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from app.canvas.compare import CompareState
from app.canvas.document import LayerKind, MaskLayer
from app.canvas.gestures import BrushGesture, EllipseGesture, LassoGesture, RectGesture, Tool
from app.canvas.images import MaskOverlays, PhotoImages, colour_table
from app.canvas.patch import Rect
from app.canvas.session import EditSession
from app.canvas.tools import RIM_REACH, clear_filled
from app.canvas.view import ViewTransform

BACKGROUND = QColor(48, 48, 52)
DIVIDER_GRAB_PX = 8
MIN_BRUSH, MAX_BRUSH = 1.0, 2000.0
DEFAULT_BRUSH_SHARE = 0.02  # radius / the photo's short side: 40 px across on a 1000 px photo


def _brush_radius(radius: float) -> float:
    return min(max(float(radius), MIN_BRUSH), MAX_BRUSH)


def _ran_area(document, run_mask: np.ndarray, only: tuple[int, ...] | None = None) -> tuple[QImage, Rect] | None:
    """The run's area with the faint rims of the strokes it came from (which the thresholded
    run mask leaves out; found as Apply clears them): an Indexed8 QImage whose alpha is 255
    there (it owns its pixels), over its box in the photo. Worked within the run's box grown by
    a rim's reach, not over a 50 MP photo, on the GUI thread as the result arrives. `only`: the
    layers of a run of chosen layers (the others' paint is not the run's)."""
    h, w = run_mask.shape
    ran_box = Rect.of_mask(run_mask)
    if ran_box is None:
        return None
    box = Rect.from_corners(ran_box.x - RIM_REACH, ran_box.y - RIM_REACH, ran_box.x1 + RIM_REACH,
                            ran_box.y1 + RIM_REACH).clipped(w, h)
    painted = document.combined_mask(LayerKind.FILL, raw=True, region=box.slices, only=only)  # the paint at the run
    ran = run_mask[box.slices] > 0
    area = np.where((painted > 0) & (clear_filled(painted, ran) == 0) | ran, np.uint8(255), np.uint8(0))
    image = QImage(area.data, box.w, box.h, box.w, QImage.Format.Format_Indexed8)
    image.setColorTable(colour_table((0, 0, 0)))
    return image.copy(), box


#: a run mask larger than this has its area (`_ran_area`) worked off the GUI thread: half a
#: second on a 36 MP photo as a whole-photo fill result arrives; the masks painted since the run
#: show over the result a moment later
AREA_IN_BACKGROUND_PIXELS = 4_000_000


class _AreaRelay(QObject):
    done = Signal(int, object)  # job number, _ran_area's value


class _AreaJob(QRunnable):
    def __init__(self, job: int, work, relay: _AreaRelay) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._job, self._work, self._relay = job, work, relay

    def run(self) -> None:
        try:
            value = self._work()
        except Exception as exc:  # noqa: BLE001 - handed to the GUI thread, which works it out there
            value = exc
        self._relay.done.emit(self._job, value)


class CanvasWidget(QWidget):
    cursor_moved = Signal(object)  # (x, y) image pixel under the mouse, or None when off the photo
    zoom_changed = Signal(float)
    brush_changed = Signal(float, float)  # radius (image px), hardness 0..1
    message = Signal(str)  # short status-bar notes ("layer is locked")

    def __init__(self, session: EditSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.view = ViewTransform()
        self.compare = CompareState()
        self.tool = Tool.BRUSH
        self.erase = False
        # the brush keeps its size relative to the photo's short side (so it looks the same when
        # fitted): 40 px across is a fine tip on a phone snapshot and a speck on a 50 MP scan
        self._brush_share = DEFAULT_BRUSH_SHARE
        self.brush_radius = _brush_radius(DEFAULT_BRUSH_SHARE * min(session.document.size))
        self.hardness = 1.0
        self.show_masks = True
        self._photo = PhotoImages(session.document.photo)
        self._result: PhotoImages | None = None
        self._ran_area: tuple[QImage, Rect] | None = None  # the pending result's run area (_ran_area)
        self._area_job = 0  # counts results: an area worked in the background for an older one is dropped
        self._area_relay = _AreaRelay(self)
        self._area_relay.done.connect(self._on_area)
        self._area_pool = QThreadPool(self)
        self._area_pool.setMaxThreadCount(1)
        self._overlays = MaskOverlays()
        self._gesture: BrushGesture | RectGesture | LassoGesture | None = None
        self._gesture_uid = 0
        self._pan_from: QPointF | None = None
        self._space = False
        self._dragging_divider = False
        self._mouse: QPointF | None = None
        self._fit_mode = True
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(200, 150)
        session.document_replaced.connect(self._on_document_replaced)
        session.layer_pixels_changed.connect(self._on_layer_pixels)
        session.layers_changed.connect(self.update)
        session.photo_changed.connect(self._on_photo_changed)
        session.result_changed.connect(self._on_result_changed)
        self._update_cursor()

    # ---------------------------------------------------------------- public API
    def fit(self) -> None:
        w, h = self.session.document.size
        self.view.fit(self.width(), self.height(), w, h)
        self.view.ox, self.view.oy = round(self.view.ox), round(self.view.oy)
        self._fit_mode = True
        self._view_changed()

    def actual_size(self) -> None:
        """100 %: one photo pixel per screen pixel, centred on the view centre."""
        self.view.set_zoom(1.0, self.width() / 2, self.height() / 2)
        self.view.ox, self.view.oy = round(self.view.ox), round(self.view.oy)
        self._fit_mode = False
        self._view_changed()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        anchor = anchor or QPointF(self.width() / 2, self.height() / 2)
        self.view.set_zoom(self.view.zoom * factor, anchor.x(), anchor.y())
        self._fit_mode = False
        self._view_changed()

    def set_tool(self, tool: Tool) -> None:
        self.tool = Tool(tool)
        self._update_cursor()

    def set_erase(self, erase: bool) -> None:
        self.erase = bool(erase)

    def set_brush(self, radius: float | None = None, hardness: float | None = None) -> None:
        if radius is not None:
            self.brush_radius = _brush_radius(radius)
            if min(self.session.document.size) >= 64:  # a brush sized on an icon would swamp the next photo
                self._brush_share = self.brush_radius / min(self.session.document.size)
        if hardness is not None:
            self.hardness = min(max(float(hardness), 0.0), 1.0)
        self.brush_changed.emit(self.brush_radius, self.hardness)
        self._update_cursor()

    def bigger_brush(self) -> None:
        self.set_brush(radius=max(self.brush_radius * 1.25, self.brush_radius + 1))

    def smaller_brush(self) -> None:
        self.set_brush(radius=min(self.brush_radius / 1.25, self.brush_radius - 1))

    def set_show_masks(self, show: bool) -> None:
        self.show_masks = bool(show)
        self.update()

    def flip_compare(self) -> None:
        if self.comparing():
            self.compare.flip()
            self.update()

    def set_divider(self, image_x: float) -> None:
        self.compare.move_to(image_x, self.session.document.size[0])
        self.update()

    def comparing(self) -> bool:
        return self._result is not None and self.compare.enabled

    def repaint_image_rect(self, rect: Rect | None) -> None:
        """Schedule a repaint of the widget area covering an image rectangle (None = all)."""
        if rect is None:
            self.update()
            return
        x, y, w, h = self.view.view_rect_of(rect, pad=2)
        self.update(QRect(x, y, w, h))

    # ---------------------------------------------------------------- session events
    def _on_document_replaced(self) -> None:
        share = self._brush_share  # kept as the user chose it, not as clamped on a tiny photo
        self.set_brush(radius=share * min(self.session.document.size))
        self._brush_share = share
        self._gesture = None
        self._overlays.clear()
        self._photo = PhotoImages(self.session.document.photo)
        self._on_result_changed()
        self.fit()

    def _on_layer_pixels(self, uid: int, rect: object) -> None:
        self._overlays.prune({layer.uid for layer in self.session.document.layers})
        if self.show_masks:
            self.repaint_image_rect(rect if isinstance(rect, Rect) else None)

    def _on_photo_changed(self, rect: object) -> None:
        if self._photo.rgb is not self.session.document.photo:
            self._photo = PhotoImages(self.session.document.photo)
        self._photo.invalidate()
        self.repaint_image_rect(rect if isinstance(rect, Rect) else None)

    def _on_result_changed(self) -> None:
        result = self.session.document.result
        had = self._result is not None
        self._result = PhotoImages(result.image) if result is not None else None
        # the run's mask, to leave out of the masks drawn over the result (only what was painted since)
        run_mask = result.mask if result is not None else None
        only = result.layers if result is not None and result.restricted else None
        self._area_job += 1
        self._ran_area = None  # until it is known, nothing is drawn over the result
        if run_mask is not None and run_mask.size <= AREA_IN_BACKGROUND_PIXELS:
            self._ran_area = _ran_area(self.session.document, run_mask, only)
        elif run_mask is not None:
            document = self.session.document
            self._area_pool.clear()  # areas of older results still queued: never worked
            self._area_pool.start(_AreaJob(self._area_job, lambda: _ran_area(document, run_mask, only),
                                           self._area_relay))
        if self._result is not None and not had:
            self.compare.reset(self.session.document.size[0])
        self.update()

    def _on_area(self, job: int, area) -> None:
        result = self.session.document.result
        if job != self._area_job or self._result is None or result is None:
            return
        if isinstance(area, Exception):  # not left without an area (strokes since would not show): here
            area = _ran_area(self.session.document, result.mask, result.layers if result.restricted else None)
        self._ran_area = area
        self.update()

    def wait_for_area(self, msecs: int = -1) -> bool:
        """Block until a run area worked in the background is done (tests, shutdown)."""
        return self._area_pool.waitForDone(msecs)

    def shutdown(self) -> None:
        """The window closes: no queued area is worked, the one running is waited for."""
        self._area_job += 1
        self._area_pool.clear()
        self._area_pool.waitForDone()

    # ---------------------------------------------------------------- painting
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        area = event.rect()
        painter.fillRect(area, BACKGROUND)
        doc = self.session.document
        src = self.view.image_rect_of(area.x(), area.y(), area.width(), area.height(), *doc.size)
        if src is not None:
            if self.comparing():
                self._paint_compare(painter, src)
            else:
                self._paint_image(painter, self._photo, src)
                self._paint_masks(painter, src)
        self._paint_decorations(painter)
        painter.end()

    def _target(self, src: Rect) -> QRectF:
        x0, y0 = self.view.to_view(src.x, src.y)
        return QRectF(x0, y0, src.w * self.view.zoom, src.h * self.view.zoom)

    def _paint_image(self, painter: QPainter, images: PhotoImages, src: Rect) -> None:
        image, factor = images.for_zoom(self.view.zoom)
        smooth = self.view.zoom < 1.0
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        source = QRectF(src.x / factor, src.y / factor, src.w / factor, src.h / factor)
        painter.drawImage(self._target(src), image, source)

    def _paint_masks(self, painter: QPainter, src: Rect, kind: LayerKind | None = None) -> None:
        if not self.show_masks:
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        target = self._target(src)
        source = QRectF(src.x, src.y, src.w, src.h)
        for layer in self.session.document.layers:
            if layer.visible and layer.opacity > 0 and kind in (None, layer.kind):
                painter.setOpacity(layer.opacity)
                painter.drawImage(target, self._overlays.image(layer), source)
        painter.setOpacity(1.0)

    def _paint_compare(self, painter: QPainter, src: Rect) -> None:
        """Original (with masks) on one side of the divider, result on the other."""
        split = round(self.compare.divider_x)
        left = Rect.from_corners(src.x, src.y, min(src.x1, split), src.y1) if src.x < split else None
        right = Rect.from_corners(max(src.x, split), src.y, src.x1, src.y1) if src.x1 > split else None
        before, after = (left, right) if self.compare.after_on_right() else (right, left)
        if before is not None and before.area:
            self._paint_image(painter, self._photo, before)
            self._paint_masks(painter, before)
        if after is not None and after.area and self._result is not None:
            self._paint_image(painter, self._result, after)
            self._paint_new_masks(painter, after)

    def _paint_new_masks(self, painter: QPainter, src: Rect) -> None:
        """Over the result, the masks painted since its run (the run's own area left out, so the
        fill stays visible): a stroke on that side of the divider is not drawn unseen."""
        if not self.show_masks or self._ran_area is None:
            return  # a repair preview has no run mask: its damage layer would hide the repair
        target = self._target(src)
        box = target.toAlignedRect()
        layer_image = QImage(box.size(), QImage.Format.Format_ARGB32_Premultiplied)
        layer_image.fill(0)
        off = QPainter(layer_image)
        off.translate(-box.x(), -box.y())
        self._paint_masks(off, src, LayerKind.FILL)  # not protect layers: they are no fill to come
        area_image, area_box = self._ran_area
        x0, y0, x1, y1 = max(src.x, area_box.x), max(src.y, area_box.y), min(src.x1, area_box.x1), min(src.y1, area_box.y1)
        if x0 < x1 and y0 < y1:  # the run's area reaches into what is repainted: cut it out
            overlap = Rect.from_corners(x0, y0, x1, y1)
            off.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationOut)
            off.drawImage(self._target(overlap), area_image,
                          QRectF(overlap.x - area_box.x, overlap.y - area_box.y, overlap.w, overlap.h))
        off.end()
        painter.drawImage(box.topLeft(), layer_image)

    def _paint_decorations(self, painter: QPainter) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if self.comparing():
            self._paint_divider(painter)
        gesture = self._gesture
        if isinstance(gesture, RectGesture) and gesture.preview_rect() is not None:
            box = self._target(gesture.preview_rect())
            draw = QPainter.drawEllipse if isinstance(gesture, EllipseGesture) else QPainter.drawRect
            self._outline(painter, lambda p: draw(p, box))
        elif isinstance(gesture, LassoGesture) and len(gesture.points) > 1:
            poly = QPolygonF([QPointF(*self.view.to_view(x, y)) for x, y in gesture.points])
            self._outline(painter, lambda p: p.drawPolyline(poly))
        if self._mouse is not None and self.tool == Tool.BRUSH and self._pan_from is None and not self._space:
            radius = max(self.brush_radius * self.view.zoom, 2.0)
            centre = self._mouse
            self._outline(painter, lambda p: p.drawEllipse(centre, radius, radius))

    def _paint_divider(self, painter: QPainter) -> None:
        x, _ = self.view.to_view(self.compare.divider_x, 0)
        _, top = self.view.to_view(0, 0)
        _, bottom = self.view.to_view(0, self.session.document.size[1])
        painter.setPen(QPen(QColor(0, 0, 0, 160), 3))
        painter.drawLine(QPointF(x, top), QPointF(x, bottom))
        painter.setPen(QPen(QColor(255, 255, 255), 1))
        painter.drawLine(QPointF(x, top), QPointF(x, bottom))
        mid = (max(top, 0) + min(bottom, self.height())) / 2
        painter.setBrush(QColor(255, 255, 255))
        painter.setPen(QPen(QColor(0, 0, 0, 160), 1))
        painter.drawEllipse(QPointF(x, mid), 9, 9)
        painter.setPen(QPen(QColor(40, 40, 40), 1.5))
        painter.drawLine(QPointF(x - 4, mid - 4), QPointF(x - 4, mid + 4))
        painter.drawLine(QPointF(x + 4, mid - 4), QPointF(x + 4, mid + 4))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        font = painter.font()
        font.setBold(True)
        painter.setFont(font)
        left, right = ("Before", "After") if self.compare.after_on_right() else ("After", "Before")
        for text, at_left in ((left, True), (right, False)):
            width = painter.fontMetrics().horizontalAdvance(text) + 12
            box = QRectF(x - width - 14 if at_left else x + 14, max(top, 0) + 10, width, 22)
            if box.left() < 0 or box.right() > self.width():
                continue  # that side is too narrow to show anything worth a label (no half label)
            painter.fillRect(box, QColor(0, 0, 0, 150))
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    @staticmethod
    def _outline(painter: QPainter, draw) -> None:
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor(0, 0, 0, 200), 3))
        draw(painter)
        painter.setPen(QPen(QColor(255, 255, 255), 1))
        draw(painter)

    # ---------------------------------------------------------------- mouse and keys
    def _image_point(self, pos: QPointF) -> tuple[float, float]:
        return self.view.to_image(pos.x(), pos.y())

    def _near_divider(self, pos: QPointF) -> bool:
        if not self.comparing():
            return False
        x, _ = self.view.to_view(self.compare.divider_x, 0)
        return abs(pos.x() - x) <= DIVIDER_GRAB_PX

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space):
            self._pan_from = pos
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if button != Qt.MouseButton.LeftButton:
            return
        if self._near_divider(pos):
            self._dragging_divider = True
            return
        self._begin_gesture(self._image_point(pos), event.modifiers())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        self._move_cursor(pos)
        if self._pan_from is not None:
            delta = pos - self._pan_from
            self._pan_from = pos
            self.view.pan(delta.x(), delta.y())
            self._fit_mode = False
            self._view_changed()
            return
        if self._dragging_divider:
            self.set_divider(self._image_point(pos)[0])
            return
        if self._gesture is not None:
            self._feed(self._gesture.move(self._image_point(pos)))
        elif self.comparing():
            near = self._near_divider(pos)
            self.setCursor(Qt.CursorShape.SplitHCursor if near else self._tool_cursor())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            self._update_cursor()
            return
        if self._dragging_divider:
            self._dragging_divider = False
            return
        if event.button() == Qt.MouseButton.LeftButton:
            self._end_gesture()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.25**steps, event.position())

    def leaveEvent(self, event) -> None:
        self._move_cursor(None)
        super().leaveEvent(event)

    def resizeEvent(self, event) -> None:
        if self._fit_mode:
            self.fit()
        super().resizeEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self._update_cursor()
        elif key == Qt.Key.Key_BracketLeft:
            self.smaller_brush()
        elif key == Qt.Key.Key_BracketRight:
            self.bigger_brush()
        elif key == Qt.Key.Key_Backslash:
            self.flip_compare()
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self._update_cursor()
        else:
            super().keyReleaseEvent(event)

    # ---------------------------------------------------------------- gestures
    def _target_layer(self) -> MaskLayer | None:
        layer = self.session.active_layer()
        if layer is None:
            if self.session.document.layers:
                self.message.emit("Select a mask layer to paint on.")
                return None
            return self.session.add_layer()
        if layer.locked:
            self.message.emit(f"Layer “{layer.name}” is locked.")
            return None
        if not layer.visible:
            self.message.emit(f"Layer “{layer.name}” is hidden: show it to paint on it.")
            return None
        return layer

    def _begin_gesture(self, pt: tuple[float, float], modifiers) -> None:
        layer = self._target_layer()
        if layer is None:
            return
        erase = self.erase != bool(modifiers & Qt.KeyboardModifier.AltModifier)  # Alt swaps paint/erase
        if self.tool == Tool.BRUSH:
            self._gesture = BrushGesture(layer.mask, self.brush_radius, self.hardness, erase)
        elif self.tool in (Tool.RECT, Tool.ELLIPSE):
            self._gesture = (RectGesture if self.tool == Tool.RECT else EllipseGesture)(layer.mask, erase)
        else:
            self._gesture = LassoGesture(layer.mask, erase)
        self._gesture_uid = layer.uid
        self._feed(self._gesture.press(pt))

    def _feed(self, rect: Rect | None) -> None:
        if rect is None:
            return
        if isinstance(self._gesture, BrushGesture):
            self.session.notify_mask_painted(self._gesture_uid, rect)
        else:
            self.repaint_image_rect(rect)  # preview outline

    def _end_gesture(self) -> None:
        gesture, self._gesture = self._gesture, None
        if gesture is None:
            return
        preview = gesture.bounds() if isinstance(gesture, LassoGesture) else getattr(gesture, "preview_rect", lambda: None)()
        rect, patch = gesture.release()
        try:
            self.session.document.layer_by_uid(self._gesture_uid)
        except KeyError:
            return  # the layer went away mid-gesture (undo of its creation)
        if rect is not None:
            self.session.notify_mask_painted(self._gesture_uid, rect)
        if preview is not None:
            self.repaint_image_rect(preview)
        noun = {BrushGesture: "stroke", RectGesture: "rectangle", EllipseGesture: "ellipse",
                LassoGesture: "lasso"}[type(gesture)]
        verb = "Erase" if gesture.erase else "Paint"
        self.session.commit_mask_edit(self._gesture_uid, patch, f"{verb} {noun}")

    # ---------------------------------------------------------------- helpers
    def _move_cursor(self, pos: QPointF | None) -> None:
        old = self._mouse
        self._mouse = pos
        if self.tool == Tool.BRUSH:
            r = math.ceil(max(self.brush_radius * self.view.zoom, 2.0)) + 3
            for p in (old, pos):
                if p is not None:
                    self.update(QRect(int(p.x()) - r, int(p.y()) - r, 2 * r + 1, 2 * r + 1))
        if pos is None:
            self.cursor_moved.emit(None)
            return
        x, y = self._image_point(pos)
        w, h = self.session.document.size
        self.cursor_moved.emit((math.floor(x), math.floor(y)) if 0 <= x < w and 0 <= y < h else None)

    def _tool_cursor(self) -> QCursor:
        if self._space or self._pan_from is not None:
            return QCursor(Qt.CursorShape.OpenHandCursor)
        if self.tool == Tool.BRUSH:
            return QCursor(Qt.CursorShape.CrossCursor if self.brush_radius * self.view.zoom < 4 else Qt.CursorShape.BlankCursor)
        return QCursor(Qt.CursorShape.CrossCursor)

    def _update_cursor(self) -> None:
        self.setCursor(self._tool_cursor())
        self.update()

    def _view_changed(self) -> None:
        self.zoom_changed.emit(self.view.zoom)
        self._update_cursor()
