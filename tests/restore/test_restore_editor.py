"""The restore dock inside the editor: proposal -> "Detected damage" layer (undoable),
fill through the editor's run, repair previews in the compare slider, applied and undone."""

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from app.canvas import tools
from app.canvas.document import Document, LayerKind
from app.canvas.patch import Rect
from app.restore.detect import detect_damage
from app.restore.repair import RepairSteps, apply_repairs
from app.restore.synthetic import add_damage
from app.ui.main_window import MainWindow
from app.ui.restore_controller import LAYER_NAME
from tests.restore.conftest import smooth_photo


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    clean = smooth_photo()
    damaged = add_damage(clean, np.random.default_rng(4)).image
    doc = Document(photo=damaged)
    doc.layers.append(doc.new_layer("Mask 1"))
    win.set_document(doc)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.restore.panel.shutdown()
    win.runner.shutdown()
    win.files.tasks.wait(5000)


def detect(win, qtbot):
    with qtbot.waitSignal(win.restore.panel.proposal_ready, timeout=20000):
        win.restore.panel.detect_button.click()


def tick_and_preview(panel, qtbot, box):
    """Tick a repair box and wait for its preview."""
    with qtbot.waitSignal(panel.repair_preview, timeout=20000):
        box.setChecked(True)


def test_proposal_becomes_an_editable_undoable_layer(window, qtbot):
    win, doc = window, window.current_document()
    photo = doc.photo.copy()
    assert win.restore.damage_layer() is None  # opening a photo proposes nothing by itself
    detect(win, qtbot)
    layer = win.restore.damage_layer()
    assert layer is not None and layer.kind == LayerKind.FILL
    assert np.array_equal(layer.mask, detect_damage(photo, ("scratches", "dust"), 0.5))
    assert win.session.active_layer() is layer
    first = layer.mask.copy()
    with qtbot.waitSignal(win.restore.panel.proposal_ready, timeout=20000):
        win.restore.panel.sensitivity_slider.setValue(90)  # live from now on
    assert np.array_equal(layer.mask, detect_damage(photo, ("scratches", "dust"), 0.9))
    assert [lay.name for lay in doc.layers].count(LAYER_NAME) == 1
    label = win.restore.panel.status_label
    assert label.text() == f"Detected damage: {100 * (layer.mask > 0).mean():.2f} % of the photo"
    win.session.undo_stack.undo()
    assert np.array_equal(layer.mask, first)
    # the label follows the layer back, not the last proposal
    qtbot.waitUntil(lambda: label.text() == f"Detected damage: {100 * (first > 0).mean():.2f} % of the photo")
    win.session.edit_mask(layer.uid, tools.clear, "Trim")  # a trim with the brush is counted too
    qtbot.waitUntil(lambda: label.text() == "Detected damage: 0.00 % of the photo")
    win.session.undo_stack.undo()
    win.session.undo_stack.undo()
    assert win.restore.damage_layer() is None
    qtbot.waitUntil(lambda: "Detected damage" not in label.text())


def test_a_slider_drag_is_one_undo_step_and_a_trim_is_kept_apart(window, qtbot):
    win, doc = window, window.current_document()
    photo, panel, stack = doc.photo.copy(), window.restore.panel, window.session.undo_stack
    slider = panel.sensitivity_slider
    detect(win, qtbot)
    layer = win.restore.damage_layer()
    first, steps = layer.mask.copy(), stack.count()
    slider.setSliderDown(True)  # what a mouse drag does: live proposals while the handle moves
    for value in (60, 75, 90):
        with qtbot.waitSignal(panel.proposal_ready, timeout=20000):
            slider.setValue(value)
    slider.setSliderDown(False)
    assert np.array_equal(layer.mask, detect_damage(photo, ("scratches", "dust"), 0.9))
    assert not np.array_equal(layer.mask, first)
    assert stack.count() == steps + 1
    win.session.edit_mask(layer.uid, tools.clear, "Trim")  # the user's own edit
    trimmed = layer.mask.copy()
    with qtbot.waitSignal(panel.proposal_ready, timeout=20000):
        slider.setValue(20)  # a click or a key: a new action, not merged into the drag or the trim
    assert stack.count() == steps + 3
    stack.undo()
    assert np.array_equal(layer.mask, trimmed)
    stack.undo()
    stack.undo()
    assert np.array_equal(layer.mask, first)


def test_the_controls_follow_undo_and_redo_of_a_proposal(window, qtbot):
    win, panel, stack = window, window.restore.panel, window.session.undo_stack
    slider = panel.sensitivity_slider
    detect(win, qtbot)  # at the default 0.50
    layer = win.restore.damage_layer()
    with qtbot.waitSignal(panel.proposal_ready, timeout=20000):
        slider.setValue(85)
    proposed = []
    panel.proposal_ready.connect(proposed.append)
    stack.undo()
    qtbot.waitUntil(lambda: slider.value() == 50)
    assert panel.sensitivity_label.text() == "0.50"
    stack.redo()
    qtbot.waitUntil(lambda: slider.value() == 85)
    win.session.edit_mask(layer.uid, tools.clear, "Trim")  # no proposal of any sensitivity any more
    stack.undo()  # back to the 0.85 proposal
    stack.undo()
    qtbot.waitUntil(lambda: slider.value() == 50)
    win.session.edit_mask(layer.uid, tools.clear, "Trim")
    qtbot.wait(200)
    assert slider.value() == 50  # a trimmed layer leaves the slider where it was
    qtbot.wait(300)  # longer than the proposal debounce: moving the slider back proposed nothing
    assert proposed == [] and stack.undoText() == "Trim"

    panel.proposal_ready.disconnect(proposed.append)
    with qtbot.waitSignal(panel.proposal_ready, timeout=20000):
        panel.scratches_box.setChecked(False)  # dust alone
    stack.undo()  # the trim of the both-kinds proposal comes back: with the controls it was made at
    qtbot.waitUntil(panel.scratches_box.isChecked)
    assert slider.value() == 50
    stack.undo()  # the 0.50 proposal of both kinds
    qtbot.waitUntil(panel.scratches_box.isChecked)
    assert panel.kinds() == ("scratches", "dust") and slider.value() == 50
    stack.redo()
    stack.redo()
    qtbot.waitUntil(lambda: not panel.scratches_box.isChecked())
    assert panel.kinds() == ("dust",)


def test_fill_runs_the_engine_and_apply_is_undoable(window, qtbot):
    win, doc = window, window.current_document()
    photo = doc.photo.copy()
    detect(win, qtbot)
    mask = win.restore.damage_layer().mask.copy()
    with qtbot.waitSignal(win.runner.finished, timeout=60000):
        win.restore.panel.fill_button.click()
    # the Run panel's settings: the model with its texture (Telea left smooth bands across grain)
    assert doc.result is not None and doc.result.method.startswith("model")
    assert doc.result.restricted and doc.result.settings is None
    assert np.array_equal(doc.result.image[mask == 0], photo[mask == 0])
    win.actions.apply_result.trigger()
    assert not np.array_equal(doc.photo, photo)
    win.session.undo_stack.undo()
    assert np.array_equal(doc.photo, photo)


def test_fill_fills_the_damage_layer_alone_and_a_hidden_one_not_at_all(window, qtbot):
    """The user's own fill layer ("Mask 1": an object to remove) is not smeared with the
    thin-damage fill: it keeps its paint for Run; a hidden damage layer is not filled, and
    the user is told why."""
    win, doc = window, window.current_document()
    photo = doc.photo.copy()
    own = doc.layers[0]
    win.session.edit_mask(own.uid, lambda m: tools.fill_rect(m, Rect(10, 10, 20, 20)), "Paint")
    detect(win, qtbot)
    damage = win.restore.damage_layer()
    with qtbot.waitSignal(win.runner.finished, timeout=60000):
        win.restore.panel.fill_button.click()
    result = doc.result
    outside = damage.mask == 0
    assert np.array_equal(result.image[outside], photo[outside])  # Mask 1's square untouched
    assert result.layers == (damage.uid,) and not win.session.result_is_stale()
    win.actions.apply_result.trigger()
    assert doc.result is None and own.mask[10:30, 10:30].all()  # its paint kept for Run
    assert not damage.mask.any()
    win.session.undo_stack.undo()  # the result is back, pending: discarded
    win.session.discard_result()
    win.session.set_layer_props(damage.uid, visible=False)
    msgs = []
    win.restore.notice.connect(msgs.append)
    assert not win.restore.fill()
    assert "hidden" in msgs[-1] and doc.result is None


def test_repair_preview_in_compare_then_apply_and_undo(window, qtbot):
    win, doc = window, window.current_document()
    photo = doc.photo.copy()
    panel = win.restore.panel
    tick_and_preview(panel, qtbot, panel.fade_box)
    steps = RepairSteps(fade=True)
    assert doc.result is not None and doc.result.method.startswith("repair")
    assert win.canvas.comparing()
    assert np.array_equal(doc.result.image, apply_repairs(photo, steps))
    panel.apply_button.click()
    assert np.array_equal(doc.photo, apply_repairs(photo, steps)) and doc.result is None
    win.session.undo_stack.undo()
    assert np.array_equal(doc.photo, photo)


def test_the_documents_restore_choices_follow_the_panel_through_undo(window, qtbot):
    """The project keeps what the panel shows: an undo of Apply repairs brings back the preview's
    strengths, and the document's choices with them."""
    win, doc = window, window.current_document()
    panel = win.restore.panel
    panel.sharpen_amount.setValue(1.2)
    tick_and_preview(panel, qtbot, panel.sharpen_box)
    panel.apply_button.click()
    panel.sharpen_amount.setValue(2.0)
    assert doc.restore.sharpen_amount == 2.0
    win.session.undo_stack.undo()  # the preview with 1.2 is back on screen, and so are its controls
    assert panel.sharpen_amount.value() == 1.2 and doc.restore.sharpen_amount == 1.2


def test_turning_repairs_off_returns_to_the_fill_result(window, qtbot):
    win, doc = window, window.current_document()
    detect(win, qtbot)
    with qtbot.waitSignal(win.runner.finished, timeout=60000):
        win.restore.panel.fill_button.click()
    fill = doc.result
    panel = win.restore.panel
    tick_and_preview(panel, qtbot, panel.sharpen_box)
    assert doc.result is not fill and "repair: sharpen" in doc.result.method
    assert np.array_equal(doc.result.mask, fill.mask)  # applying also clears the filled damage
    assert np.array_equal(doc.result.image, apply_repairs(fill.image, RepairSteps(sharpen=True)))
    with qtbot.waitSignal(panel.repair_preview, timeout=20000):
        panel.sharpen_box.setChecked(False)
    assert doc.result is fill


def test_fill_before_any_detection_detects_then_fills(window, qtbot):
    """Fill detected damage pressed first did nothing but a passing status message: it now
    detects, and fills what it found."""
    win, doc = window, window.current_document()
    photo = doc.photo.copy()
    with qtbot.waitSignal(win.runner.finished, timeout=60000):
        win.restore.panel.fill_button.click()
    layer = win.restore.damage_layer()
    assert layer is not None and np.array_equal(layer.mask, detect_damage(photo, ("scratches", "dust"), 0.5))
    assert doc.result is not None and doc.result.method.startswith("model")
    assert np.array_equal(doc.result.image[layer.mask == 0], photo[layer.mask == 0])


def test_fill_of_an_emptied_layer_says_so(window, qtbot):
    win = window
    detect(win, qtbot)
    win.session.edit_mask(win.restore.damage_layer().uid, tools.clear, "Trim")  # the user erased it all
    msgs = []
    win.restore.notice.connect(msgs.append)
    assert not win.restore.fill()
    assert "empty" in msgs[-1] and win.current_document().result is None


def test_apply_pressed_before_the_latest_preview_is_ready_applies_that_preview(window, qtbot):
    # tick Sharpen, then Fade and Apply within a moment: the preview on screen is still the
    # sharpen-only one; Apply must give what the boxes say, not that older preview
    win, doc = window, window.current_document()
    photo = doc.photo.copy()
    panel = win.restore.panel
    tick_and_preview(panel, qtbot, panel.sharpen_box)
    panel.fade_box.setChecked(True)  # its preview is only scheduled
    assert panel.preview_pending() and "fade" not in doc.result.method
    panel.apply_button.click()
    assert "fade" not in doc.result.method  # nothing applied yet
    qtbot.waitUntil(lambda: doc.result is None, timeout=20000)
    assert np.array_equal(doc.photo, apply_repairs(photo, RepairSteps(fade=True, sharpen=True)))
    win.session.undo_stack.undo()  # one undo step, as for an Apply after a finished preview
    assert np.array_equal(doc.photo, photo)


def test_changing_the_steps_after_apply_cancels_the_waiting_apply(window, qtbot):
    win, doc = window, window.current_document()
    photo = doc.photo.copy()
    panel = win.restore.panel
    msgs = []
    win.restore.notice.connect(msgs.append)
    panel.sharpen_box.setChecked(True)
    panel.apply_button.click()
    panel.sharpen_box.setChecked(False)
    panel.fade_box.setChecked(True)
    with qtbot.waitSignal(panel.repair_preview, timeout=20000):
        pass
    qtbot.waitUntil(lambda: not panel.preview_pending(), timeout=20000)
    qtbot.wait(100)
    assert np.array_equal(doc.photo, photo)  # nothing applied behind the user's back
    assert any("press Apply repairs again" in m for m in msgs)


def test_after_apply_the_boxes_are_clear_and_a_second_apply_changes_nothing(window, qtbot):
    win, doc = window, window.current_document()
    photo = doc.photo.copy()
    panel = win.restore.panel
    tick_and_preview(panel, qtbot, panel.sharpen_box)
    panel.apply_button.click()
    once = apply_repairs(photo, RepairSteps(sharpen=True))
    assert np.array_equal(doc.photo, once) and not panel.sharpen_box.isChecked()
    panel.apply_button.click()  # a double click: the repairs are not run a second time
    qtbot.wait(200)
    assert not panel.preview_pending() and np.array_equal(doc.photo, once)


def test_undoing_apply_repairs_brings_back_the_preview_with_its_boxes(window, qtbot):
    """Undo of Apply repairs puts the preview back on screen: the boxes say which steps made
    it, and Apply repairs applies it again at once (no second computation, no unseen steps)."""
    win, doc = window, window.current_document()
    photo = doc.photo.copy()
    panel = win.restore.panel
    with qtbot.waitSignal(panel.repair_preview, timeout=20000):
        panel.sharpen_amount.setValue(2.5)
        panel.sharpen_box.setChecked(True)
    steps = RepairSteps(sharpen=True, sharpen_amount=2.5)
    panel.apply_button.click()
    assert not panel.sharpen_box.isChecked()
    win.session.undo_stack.undo()
    assert np.array_equal(doc.photo, photo) and "repair: sharpen" in doc.result.method
    assert panel.sharpen_box.isChecked() and panel.sharpen_amount.value() == 2.5
    assert not panel.fade_box.isChecked() and not panel.preview_pending()
    panel.apply_button.click()
    assert np.array_equal(doc.photo, apply_repairs(photo, steps)) and doc.result is None


def test_a_slider_move_after_a_trim_says_it_replaced_the_trim(window, qtbot):
    win = window
    detect(win, qtbot)
    msgs = []
    win.restore.notice.connect(msgs.append)
    with qtbot.waitSignal(win.restore.panel.proposal_ready, timeout=20000):
        win.restore.panel.sensitivity_slider.setValue(60)  # no trim yet: a plain update
    assert "replaced your hand edits" not in " ".join(msgs)
    layer = win.restore.damage_layer()
    win.session.edit_mask(layer.uid, lambda m: tools.clear(m), "Trim")  # the user's brush work
    trimmed = layer.mask.copy()
    with qtbot.waitSignal(win.restore.panel.proposal_ready, timeout=20000):
        win.restore.panel.sensitivity_slider.setValue(70)
    assert "replaced your hand edits" in msgs[-1] and "Ctrl+Z" in msgs[-1]
    win.session.undo_stack.undo()
    assert np.array_equal(layer.mask, trimmed)  # and Ctrl+Z does bring them back
    # with the slider where the trimmed proposal was made, not where the replaced one was
    qtbot.waitUntil(lambda: win.restore.panel.sensitivity_slider.value() == 60, timeout=2000)


def test_detect_after_an_apply_is_a_plain_proposal_not_a_replaced_trim(window, qtbot):
    """Apply clears the filled damage from the layer; that is no hand trim to warn about."""
    win = window
    detect(win, qtbot)
    with qtbot.waitSignal(win.runner.finished, timeout=60000):
        win.restore.panel.fill_button.click()
    win.actions.apply_result.trigger()
    msgs = []
    win.restore.notice.connect(msgs.append)
    detect(win, qtbot)
    assert msgs and "Detected damage:" in msgs[-1] and not any("replaced your hand edits" in m for m in msgs)


def test_fill_waits_only_for_the_detection_it_started(window, qtbot):
    """Fill before Detect arms a fill of that detection's proposal; a newer detection (or one
    that never came) must not start a fill nobody asked for."""
    win, doc = window, window.current_document()
    panel = win.restore.panel
    assert win.restore.fill()
    with qtbot.waitSignal(panel.proposal_ready, timeout=20000):
        panel.detect()  # pressed again at once: a newer gesture
    qtbot.wait(200)
    assert not win.runner.running and doc.result is None
    assert win.restore.damage_layer() is not None


def test_discarding_a_repair_preview_clears_its_boxes_and_apply_repairs_then_does_nothing(window, qtbot):
    """A ticked box promises a preview on screen: after Discard there is none, so the boxes
    are cleared and Apply repairs does not apply steps the user no longer sees."""
    win, doc = window, window.current_document()
    photo = doc.photo.copy()
    panel = win.restore.panel
    tick_and_preview(panel, qtbot, panel.balance_box)
    assert doc.result is not None
    win.actions.discard_result.trigger()
    assert doc.result is None and not panel.repair_steps().any
    msgs = []
    win.restore.notice.connect(msgs.append)
    panel.apply_button.click()
    qtbot.wait(300)
    assert doc.result is None and np.array_equal(doc.photo, photo) and "Turn on a repair step" in msgs[-1]


def test_repairs_ticked_before_the_fill_are_previewed_on_the_fill(window, qtbot):
    win, doc = window, window.current_document()
    panel = win.restore.panel
    tick_and_preview(panel, qtbot, panel.sharpen_box)
    detect(win, qtbot)
    msgs = []
    win.restore.notice.connect(msgs.append)
    with qtbot.waitSignal(win.runner.finished, timeout=60000) as finished:
        win.restore.panel.fill_button.click()
    fill = finished.args[0]
    assert any("Adding the repairs ticked (sharpen)" in m for m in msgs)  # QA: the boxes looked ignored
    qtbot.waitUntil(lambda: doc.result is not fill and not panel.preview_pending(), timeout=20000)
    assert panel.sharpen_box.isChecked() and "repair: sharpen" in doc.result.method
    assert np.array_equal(doc.result.image, apply_repairs(fill.image, RepairSteps(sharpen=True)))


def test_repairs_on_a_project_reopened_with_a_repaired_fill_build_on_that_result(window, qtbot, tmp_path):
    """A project saved with a fill and its repairs pending: reopened, a repair ticked builds
    on that pending result (it built on the unfilled photo, and Apply lost the fill)."""
    from app.io.project import load_project, save_project

    win, doc = window, window.current_document()
    panel = win.restore.panel
    detect(win, qtbot)
    with qtbot.waitSignal(win.runner.finished, timeout=60000):
        win.restore.panel.fill_button.click()
    tick_and_preview(panel, qtbot, panel.fade_box)
    pending = doc.result.image.copy()
    save_project(doc, tmp_path / "p.ora")
    win.set_document(load_project(tmp_path / "p.ora"))
    reopened = win.current_document()
    assert np.array_equal(reopened.result.image, pending) and not panel.repair_steps().any
    tick_and_preview(panel, qtbot, panel.sharpen_box)
    assert np.array_equal(reopened.result.image, apply_repairs(pending, RepairSteps(sharpen=True)))
    with qtbot.waitSignal(panel.repair_preview, timeout=20000):
        panel.sharpen_box.setChecked(False)
    assert np.array_equal(reopened.result.image, pending)  # back to the reopened result, fill kept
    tick_and_preview(panel, qtbot, panel.sharpen_box)
    panel.apply_button.click()
    assert np.array_equal(reopened.photo, apply_repairs(pending, RepairSteps(sharpen=True)))


def test_a_photo_one_pixel_high_is_called_too_small_not_missing(window):
    win = window
    win.set_document(Document(photo=np.full((1, 40, 3), 128, np.uint8), source_path="strip.png"))
    assert "too small" in win.restore.panel.status_label.text()
    assert not win.restore.panel.detect_button.isEnabled()


def test_repairs_that_change_nothing_say_so_and_apply_adds_no_step(window, qtbot):
    """Auto denoise on a photo with little noise does nothing: said, and Apply repairs does not
    add an undo step or mark the photo changed."""
    win = window
    win.set_document(Document(photo=smooth_photo(), source_path="clean.png"))
    doc, panel = win.current_document(), win.restore.panel
    msgs = []
    win.restore.notice.connect(msgs.append)
    tick_and_preview(panel, qtbot, panel.denoise_box)  # auto strength
    assert np.array_equal(doc.result.image, doc.photo)
    assert any("auto denoise finds too little noise" in m for m in msgs)
    steps = win.session.undo_stack.count()
    panel.apply_button.click()
    assert win.session.undo_stack.count() == steps and "Nothing applied" in msgs[-1]


def test_a_stale_damage_fill_runs_again_as_a_damage_fill_and_survives_a_project(window, qtbot, tmp_path):
    """A damage fill is stale only when the damage layer changed; Run Again repeats the damage
    fill (not a Run of every fill layer, which smeared the user's own removals); a project keeps
    which layers a pending result filled."""
    from PySide6.QtWidgets import QMessageBox

    from app.io.project import load_project, save_project

    win, doc = window, window.current_document()
    photo = doc.photo.copy()
    own = doc.layers[0]
    detect(win, qtbot)
    damage = win.restore.damage_layer()
    with qtbot.waitSignal(win.runner.finished, timeout=60000):
        win.restore.panel.fill_button.click()
    win.session.edit_mask(own.uid, lambda m: tools.fill_rect(m, Rect(10, 10, 20, 20)), "Paint")
    assert not win.session.result_is_stale()  # Mask 1 is not the fill's business
    save_project(doc, tmp_path / "p.ora")
    reopened = load_project(tmp_path / "p.ora")
    win.set_document(reopened)
    assert reopened.result.restricted and len(reopened.result.layers) == 1
    assert not win.session.result_is_stale()
    damage = win.restore.damage_layer()
    own = next(layer for layer in reopened.layers if layer.name == "Mask 1")
    ys, xs = np.nonzero(damage.mask)
    trim = Rect(max(int(xs[0]) - 10, 0), max(int(ys[0]) - 10, 0), 20, 20)
    win.session.edit_mask(damage.uid, lambda m: tools.fill_rect(m, trim, erase=True), "Trim")
    assert win.session.result_is_stale()
    win.actions.apply_result.trigger()
    box = win.findChild(QMessageBox, "stale_box")
    with qtbot.waitSignal(win.runner.finished, timeout=60000):
        next(b for b in box.buttons() if b.text() == "Run Again").click()
    result = reopened.result
    assert result.method.startswith("model") and result.layers == (damage.uid,) and not win.session.result_is_stale()
    assert np.array_equal(result.image[damage.mask == 0], photo[damage.mask == 0])  # Mask 1's square kept
    win.actions.apply_result.trigger()
    assert own.mask[10:30, 10:30].all()


def test_a_run_is_stale_when_a_hidden_fill_layer_is_shown(window, qtbot):
    win, doc = window, window.current_document()
    own = doc.layers[0]
    win.session.edit_mask(own.uid, lambda m: tools.fill_rect(m, Rect(10, 10, 20, 20)), "Paint")
    second = win.session.add_layer("Mask 2", LayerKind.FILL)
    win.session.edit_mask(second.uid, lambda m: tools.fill_rect(m, Rect(60, 60, 20, 20)), "Paint")
    win.session.set_layer_props(second.uid, visible=False)
    win.runner.method = "telea"
    with qtbot.waitSignal(win.runner.finished, timeout=60000):
        win.actions.run.trigger()
    assert not win.session.result_is_stale()
    win.session.set_layer_props(second.uid, visible=True)
    assert win.session.result_is_stale()


def test_apply_repairs_on_a_fill_whose_damage_layer_changed_asks_first(window, qtbot):
    """As the toolbar's Apply: the trimmed damage would be filled anyway."""
    from PySide6.QtWidgets import QMessageBox

    win, doc = window, window.current_document()
    panel = win.restore.panel
    detect(win, qtbot)
    damage = win.restore.damage_layer()
    with qtbot.waitSignal(win.runner.finished, timeout=60000):
        panel.fill_button.click()
    tick_and_preview(panel, qtbot, panel.fade_box)
    photo = doc.photo.copy()
    win.session.edit_mask(damage.uid, tools.clear, "Trim")
    panel.apply_button.click()
    box = win.findChild(QMessageBox, "stale_box")
    assert box is not None and box.isVisible() and np.array_equal(doc.photo, photo)
    box.reject()


def test_detecting_nothing_adds_no_layer_and_no_undo_step(window, qtbot):
    """A clean photo: Detect says so, and leaves no empty layer, undo step or unsaved change."""
    win = window
    clean = Document(photo=np.full((120, 160, 3), 128, np.uint8))
    clean.layers.append(clean.new_layer("Mask 1"))
    win.set_document(clean)
    msgs = []
    win.restore.notice.connect(msgs.append)
    steps = win.session.undo_stack.count()
    detect(win, qtbot)
    assert win.restore.damage_layer() is None and [lay.name for lay in clean.layers] == ["Mask 1"]
    assert win.session.undo_stack.count() == steps and not win.isWindowModified()
    assert "No damage found" in msgs[-1]
