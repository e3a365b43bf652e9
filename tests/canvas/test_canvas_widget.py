"""The canvas widget driven by synthetic mouse events; render snapshot."""

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from app.canvas.document import Document, InpaintOutcome, LayerKind
from app.canvas.gestures import Tool
from app.canvas.patch import Rect
from app.canvas.session import EditSession
from app.canvas.widget import MIN_BRUSH, CanvasWidget
from tests.canvas.helpers import drag
from tests.canvas.test_tools import capsule_pixels


def make_canvas(qtbot, w=160, h=120, view=(200, 160)):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    doc = Document(photo=photo)
    doc.layers.append(doc.new_layer("Mask 1"))
    session = EditSession(doc)
    canvas = CanvasWidget(session)
    qtbot.addWidget(canvas)
    canvas.resize(*view)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.actual_size()  # 1:1, whole photo centred
    return session, canvas


def to_view(canvas, x, y):
    return canvas.view.to_view(x, y)


def test_stroke_paints_exactly_the_expected_pixels_and_undo_redo_bit_for_bit(qtbot):
    session, canvas = make_canvas(qtbot)
    canvas.set_brush(radius=4.2, hardness=1.0)
    layer = session.document.layers[0]
    pts = [(20.25, 30.5), (70.75, 35.25), (90.5, 100.5)]
    drag(canvas, [to_view(canvas, *p) for p in pts])
    assert np.array_equal(layer.mask == 255, capsule_pixels(layer.mask.shape, pts, 4.2))
    assert set(np.unique(layer.mask)) == {0, 255}
    painted = layer.mask.copy()
    assert session.undo_stack.count() == 1
    session.undo_stack.undo()
    assert not layer.mask.any()
    session.undo_stack.redo()
    assert np.array_equal(layer.mask, painted)


def test_eraser_and_alt_swap(qtbot):
    session, canvas = make_canvas(qtbot)
    layer = session.document.layers[0]
    layer.mask[:] = 255
    canvas.set_brush(radius=3)
    canvas.set_erase(True)
    drag(canvas, [to_view(canvas, 50.5, 50.5), to_view(canvas, 60.5, 50.5)])
    assert layer.mask[50, 55] == 0 and layer.mask[40, 55] == 255
    # Alt turns the eraser back into a brush for one stroke
    drag(canvas, [to_view(canvas, 50.5, 50.5), to_view(canvas, 60.5, 50.5)], modifiers=Qt.KeyboardModifier.AltModifier)
    assert (layer.mask == 255).all()
    assert session.undo_stack.count() == 2


def test_rectangle_and_lasso_tools(qtbot):
    session, canvas = make_canvas(qtbot)
    layer = session.document.layers[0]
    canvas.set_tool(Tool.RECT)
    drag(canvas, [to_view(canvas, 10, 20), to_view(canvas, 25, 22), to_view(canvas, 40, 30)])
    expected = np.zeros_like(layer.mask)
    expected[20:30, 10:40] = 255
    assert np.array_equal(layer.mask, expected)
    canvas.set_tool(Tool.LASSO)
    canvas.set_erase(True)
    drag(canvas, [to_view(canvas, *p) for p in [(0, 0), (30, 0), (30, 25), (0, 25), (0, 0)]])
    expected[20:25, 10:30] = 0
    expected[25, 10:30] = 0  # the closing edge at y=25 passes through pixel centres... keep exact below
    assert layer.mask[24, 15] == 0 and layer.mask[26, 15] == 255 and layer.mask[22, 35] == 255
    assert session.undo_stack.count() == 2
    session.undo_stack.undo()
    session.undo_stack.undo()
    assert not layer.mask.any()


def test_ellipse_tool_fills_the_ellipse_inscribed_in_the_drag_box(qtbot):
    session, canvas = make_canvas(qtbot)
    layer = session.document.layers[0]
    canvas.set_tool(Tool.ELLIPSE)
    drag(canvas, [to_view(canvas, 20, 30), to_view(canvas, 50, 40), to_view(canvas, 80, 70)])
    yy, xx = np.mgrid[0:120, 0:160] + 0.5
    expected = np.where(((xx - 50) / 30) ** 2 + ((yy - 50) / 20) ** 2 <= 1, 255, 0).astype(np.uint8)
    assert np.array_equal(layer.mask, expected)
    assert layer.mask[50, 21] == 255 and layer.mask[31, 21] == 0  # the box's corner stays unpainted
    assert session.undo_stack.undoText() == "Paint ellipse"
    canvas.set_erase(True)  # erasing takes an ellipse out
    drag(canvas, [to_view(canvas, 40, 40), to_view(canvas, 60, 60)])
    assert layer.mask[50, 50] == 0 and layer.mask[50, 35] == 255
    session.undo_stack.undo()
    session.undo_stack.undo()
    assert not layer.mask.any()


def test_locked_or_hidden_layer_is_not_painted(qtbot):
    session, canvas = make_canvas(qtbot)
    layer = session.document.layers[0]
    messages = []
    canvas.message.connect(messages.append)
    session.set_layer_props(layer.uid, locked=True)
    drag(canvas, [to_view(canvas, 50, 50), to_view(canvas, 60, 60)])
    session.set_layer_props(layer.uid, locked=False, visible=False)
    drag(canvas, [to_view(canvas, 50, 50), to_view(canvas, 60, 60)])
    assert not layer.mask.any()
    assert "locked" in messages[0] and "hidden" in messages[1]


def test_brush_size_keys_zoom_and_pan(qtbot):
    session, canvas = make_canvas(qtbot)
    canvas.set_brush(radius=10)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert canvas.brush_radius == pytest.approx(12.5)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_radius == pytest.approx(8.0)
    # zoom about a point keeps that image point under the mouse
    before = canvas.view.to_image(70, 60)
    canvas.zoom_by(2.0, anchor=__import__("PySide6.QtCore").QtCore.QPointF(70, 60))
    assert canvas.view.zoom == pytest.approx(2.0)
    assert canvas.view.to_image(70, 60) == pytest.approx(before)
    # middle-button drag pans without painting
    ox = canvas.view.ox
    drag(canvas, [(100, 80), (130, 80)], button=Qt.MouseButton.MiddleButton)
    assert canvas.view.ox == pytest.approx(ox + 30)
    # space + left drag pans too
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    drag(canvas, [(100, 80), (100, 60)])
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.view.ox == pytest.approx(ox + 30)
    assert not session.document.layers[0].mask.any()
    canvas.fit()
    w, h = session.document.size
    assert canvas.view.zoom == pytest.approx(min((200 - 16) / w, (160 - 16) / h))


def grab_array(canvas) -> np.ndarray:
    img = canvas.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    w, h = img.width(), img.height()
    return np.frombuffer(img.constBits(), np.uint8, img.bytesPerLine() * h).reshape(h, img.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).copy()


def test_render_snapshot_photo_mask_overlay_and_compare(qtbot):
    session, canvas = make_canvas(qtbot)
    doc = session.document
    layer = doc.layers[0]
    layer.color, layer.opacity = (255, 0, 0), 0.5
    layer.mask[40:60, 30:90] = 255
    session.notify_mask_painted(layer.uid, Rect(30, 40, 60, 20))
    canvas.repaint()
    shot = grab_array(canvas)
    ox, oy = int(canvas.view.ox), int(canvas.view.oy)
    h, w = doc.photo.shape[:2]
    view = shot[oy : oy + h, ox : ox + w].astype(int)
    inside = layer.mask == 255
    expected = doc.photo.astype(int)
    expected[inside] = np.round(expected[inside] * 0.5 + np.array([255, 0, 0]) * 0.5)
    assert np.abs(view - expected).max() <= 2
    # outside the photo: the background colour
    assert tuple(shot[1, 1]) == (48, 48, 52)
    # compare: result right of the divider, original (with masks) left
    result = np.full_like(doc.photo, 200)
    session.set_result(InpaintOutcome(image=result, method="test", backend="none"))
    canvas.set_divider(80)
    canvas.repaint()
    view = grab_array(canvas)[oy : oy + h, ox : ox + w].astype(int)
    # (image rows above 35 hold the Before/After labels)
    assert np.abs(view[35:, 92:] - 200).max() == 0  # (the divider and its handle cover x 70..90)
    assert np.abs(view[65:, :70] - doc.photo[65:, :70]).max() <= 2
    assert np.abs(view[40:60, 30:70] - expected[40:60, 30:70]).max() <= 2  # masks shown over the original
    assert np.abs(view[40:60, 90:150] - 200).max() == 0  # no mask over the result side
    qtbot.keyClick(canvas, Qt.Key.Key_Backslash)  # flip: result on the left
    canvas.repaint()
    view = grab_array(canvas)[oy : oy + h, ox : ox + w].astype(int)
    assert np.abs(view[70:, :70] - 200).max() == 0
    assert np.abs(view[70:, 95:] - doc.photo[70:, 95:]).max() <= 2


def test_a_compare_label_without_room_is_not_drawn_half(qtbot):
    """Near an edge of the canvas the label of the narrow side would be cut off: it is left
    out, and the other side's label stays where it belongs."""
    session, canvas = make_canvas(qtbot, w=200, h=150, view=(200, 150))  # the photo fills the canvas
    doc = session.document
    flat = np.full_like(doc.photo, 200)
    session.set_result(InpaintOutcome(image=flat, method="m", backend="b"))
    doc.photo[:] = 200  # both sides the same flat grey: any dark pixel is a label or the divider
    x_view = canvas.width() - 20  # the After side is 20 px wide: too narrow for its label
    canvas.set_divider(canvas.view.to_image(x_view, 0)[0])
    canvas.repaint()
    shot = grab_array(canvas).astype(int)
    assert (canvas.width(), canvas.view.ox, canvas.view.oy) == (200, 0, 0)
    band = shot[10:32]  # where the labels go: 10 px below the photo's top
    dark = band.max(axis=2) < 150
    assert not dark[:, x_view + 3 :].any()  # no (half) After label right of the divider
    assert dark[:, : x_view - 14].any()  # the Before label left of it


def test_divider_drags(qtbot):
    session, canvas = make_canvas(qtbot)
    doc = session.document
    session.set_result(InpaintOutcome(image=doc.photo.copy(), method="m", backend="b"))
    assert canvas.comparing() and canvas.compare.divider_x == 80
    drag(canvas, [to_view(canvas, 80, 60), to_view(canvas, 40, 60)])
    assert canvas.compare.divider_x == pytest.approx(40)
    assert not doc.layers[0].mask.any()  # dragging the divider does not paint


def test_brush_keeps_its_size_relative_to_the_photo_across_documents(qtbot):
    session, canvas = make_canvas(qtbot, w=160, h=120)
    canvas.set_brush(radius=6)  # 5 % of the short side
    session.set_document(Document(photo=np.zeros((1200, 2000, 3), np.uint8)))
    assert canvas.brush_radius == pytest.approx(60)
    session.set_document(Document(photo=np.zeros((8, 8, 3), np.uint8)))
    assert canvas.brush_radius == MIN_BRUSH  # clamped on a tiny photo ...
    session.set_document(Document(photo=np.zeros((400, 300, 3), np.uint8)))
    assert canvas.brush_radius == pytest.approx(15)  # ... without losing the share the user chose
    session.set_document(Document(photo=np.zeros((8, 8, 3), np.uint8)))
    canvas.set_brush(radius=4)  # half of an icon: not a share to carry to a photo
    session.set_document(Document(photo=np.zeros((3000, 4000, 3), np.uint8)))
    assert canvas.brush_radius == pytest.approx(150)


@pytest.mark.parametrize("in_background", [False, True], ids=["small photo", "big photo"])
def test_strokes_painted_since_the_run_show_over_the_result(qtbot, monkeypatch, in_background):
    """Painting on the result's side of the divider drew nothing visible: the masks painted since
    the run show over the result, the run's own area stays the plain result. On a big photo the
    run's area is worked out off the GUI thread and shows when it is done."""
    from app.canvas import widget as widget_module

    if in_background:
        monkeypatch.setattr(widget_module, "AREA_IN_BACKGROUND_PIXELS", 100)
    session, canvas = make_canvas(qtbot)
    doc, layer = session.document, session.document.layers[0]
    layer.color = (255, 0, 0)
    layer.opacity = 0.5
    layer.mask[40:60, 30:150] = 255
    run_mask = layer.mask.copy()
    layer.mask[38:40, 30:150] = 60  # the faint rim of a soft stroke: never part of the run mask
    session.add_layer("Keep", LayerKind.PROTECT, np.pad(np.full((10, 10), 255, np.uint8), ((100, 10), (5, 145))))
    session.set_active(layer.uid)
    session.set_result(InpaintOutcome(image=np.full_like(doc.photo, 200), method="t", backend="b", mask=run_mask))
    if in_background:
        assert canvas.wait_for_area(10000)
        qtbot.waitUntil(lambda: canvas._ran_area is not None)
    layer.mask[80:100, 100:140] = 255  # painted after the run
    session.notify_mask_painted(layer.uid, Rect(100, 80, 40, 20))
    canvas.set_divider(0)  # all of the photo shows the result
    canvas.repaint()
    ox, oy = int(canvas.view.ox), int(canvas.view.oy)
    h, w = doc.photo.shape[:2]
    view = grab_array(canvas)[oy : oy + h, ox : ox + w].astype(int)
    assert np.abs(view[80:100, 100:140] - np.round(np.array([200, 200, 200]) * 0.5 + np.array([255, 0, 0]) * 0.5)).max() <= 2
    assert np.abs(view[42:58, 40:140] - 200).max() == 0  # the run's area: the plain result
    assert np.abs(view[38:40, 40:140] - 200).max() == 0  # with its strokes' faint rim
    assert np.abs(view[100:110, 5:15] - 200).max() == 0  # a protect layer is no fill to come


def test_the_area_of_a_run_of_chosen_layers_leaves_the_other_layers_paint_out(qapp):
    """After Fill detected damage, the faint rim of a Mask 1 stroke touching the damage is not
    the run's: it still shows over the result side (it counted as the run's rim and vanished)."""
    from app.canvas.document import Document
    from app.canvas.widget import _ran_area

    doc = Document(photo=np.zeros((60, 80, 3), np.uint8))
    damage, own = doc.new_layer("Detected damage"), doc.new_layer("Mask 1")
    doc.layers += [damage, own]
    damage.mask[30, 5:75] = 255  # a scratch
    own.mask[20:40, 60:78] = 60  # the faint rim of the user's stroke, touching it
    image, box = _ran_area(doc, damage.mask.copy(), only=(damage.uid,))
    area = np.frombuffer(image.constBits(), np.uint8).reshape(box.h, image.bytesPerLine())[:, : box.w]
    assert area[22 - box.y, 70 - box.x] == 0 and area[30 - box.y, 10 - box.x] == 255
    image, box = _ran_area(doc, damage.mask.copy())  # every visible layer: the old reading
    area = np.frombuffer(image.constBits(), np.uint8).reshape(box.h, image.bytesPerLine())[:, : box.w]
    assert area[22 - box.y, 70 - box.x] == 255
