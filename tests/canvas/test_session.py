"""Every layer operation through the session, each undoable; Apply of a result."""

import numpy as np

from app.canvas import tools
from app.canvas.document import Document, InpaintOutcome, LayerKind
from app.canvas.session import EditSession


def make_session():
    photo = np.random.default_rng(3).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    return EditSession(Document(photo=photo))


def names(session):
    return [layer.name for layer in session.document.layers]


def test_add_rename_reorder_delete_with_undo(qtbot):
    s = make_session()
    a = s.add_layer()
    b = s.add_layer(kind=LayerKind.PROTECT)
    c = s.add_layer("Wires")
    assert names(s) == ["Mask 1", "Protect 1", "Wires"] and s.active_uid == c.uid
    assert b.kind == LayerKind.PROTECT and a.color != b.color
    s.set_layer_props(a.uid, name="Tourists")
    s.move_layer(c.uid, 0)
    assert names(s) == ["Wires", "Tourists", "Protect 1"]
    s.delete_layer(a.uid)
    assert names(s) == ["Wires", "Protect 1"]
    s.undo_stack.undo()
    assert names(s) == ["Wires", "Tourists", "Protect 1"]
    assert s.document.layers[1] is a  # the same layer object with its mask comes back
    s.undo_stack.undo()
    s.undo_stack.undo()
    assert names(s) == ["Mask 1", "Protect 1", "Wires"]
    for _ in range(3):
        s.undo_stack.undo()
    assert names(s) == [] and s.active_layer() is None
    for _ in range(6):
        s.undo_stack.redo()
    assert names(s) == ["Wires", "Protect 1"]


def test_visibility_lock_kind_colour_opacity_and_signals(qtbot):
    s = make_session()
    layer = s.add_layer()
    changed = []
    s.layers_changed.connect(lambda: changed.append(1))
    s.set_layer_props(layer.uid, visible=False)
    s.set_layer_props(layer.uid, locked=True)
    s.set_layer_props(layer.uid, kind="protect")
    s.set_layer_props(layer.uid, color=(1, 2, 3))
    for opacity in (0.4, 0.3, 0.2):  # a slider drag: one undo step
        s.set_layer_props(layer.uid, opacity=opacity)
    assert (layer.visible, layer.locked, layer.kind, layer.color, layer.opacity) == (False, True, LayerKind.PROTECT, (1, 2, 3), 0.2)
    assert len(changed) == 7
    assert s.undo_stack.count() == 1 + 5
    s.undo_stack.undo()
    assert layer.opacity == 0.5
    for _ in range(4):
        s.undo_stack.undo()
    assert (layer.visible, layer.locked, layer.kind) == (True, False, LayerKind.FILL)


def test_one_shot_mask_tools_are_undoable(qtbot):
    s = make_session()
    layer = s.add_layer()
    layer.mask[20:30, 20:40] = 255
    start = layer.mask.copy()
    assert s.edit_mask(layer.uid, lambda m: tools.grow(m, 2), "Grow")
    grown = layer.mask.copy()
    assert grown.sum() > start.sum()
    assert s.edit_mask(layer.uid, tools.invert, "Invert")
    assert s.edit_mask(layer.uid, tools.clear, "Clear")
    assert not s.edit_mask(layer.uid, tools.clear, "Clear")  # nothing to clear: no undo step
    assert not layer.mask.any()
    s.undo_stack.undo()
    assert np.array_equal(layer.mask, 255 - grown)
    s.undo_stack.undo()
    s.undo_stack.undo()
    assert np.array_equal(layer.mask, start)


def test_combined_masks_use_visible_layers_by_kind(qtbot):
    s = make_session()
    a, b, p = s.add_layer(), s.add_layer(), s.add_layer(kind=LayerKind.PROTECT)
    a.mask[0:5] = 255
    b.mask[10:15] = 255
    p.mask[20:25] = 255
    s.set_layer_props(b.uid, visible=False)
    fill = s.document.combined_mask(LayerKind.FILL)
    assert fill[0:5].all() and not fill[5:].any()
    assert s.document.combined_mask(LayerKind.PROTECT)[20:25].all()


def test_a_soft_rim_is_not_a_hole(qtbot):
    """A soft eraser leaves a faint rim of the stroke it erased (values 1..127): the run's mask
    counts a pixel as painted above half strength, as a mask file does, so what can hardly be
    seen is not filled."""
    s = make_session()
    layer = s.add_layer()
    tools.stamp_segment(layer.mask, (10, 30), (70, 30), radius=6)  # hard brush: 255
    for _ in range(2):
        tools.stamp_segment(layer.mask, (10, 30), (70, 30), radius=40, hardness=0.0, erase=True)
    assert layer.mask.any() and layer.mask.max() <= 127  # the rim is still in the layer
    assert not s.document.combined_mask(LayerKind.FILL).any()
    # a soft brush: its core above half strength is the hole, its fading edge is not
    layer.mask[:] = 0
    tools.stamp_segment(layer.mask, (40, 30), (40, 30), radius=20, hardness=0.0)
    fill = s.document.combined_mask(LayerKind.FILL)
    assert set(np.unique(fill)) == {0, 255}
    assert np.array_equal(fill > 0, layer.mask > 127) and (layer.mask[fill == 0] > 0).any()
    # Apply clears the filled core and the faint rim that would still show around the fill;
    # faint paint elsewhere (a soft stroke not yet strong enough to fill) stays
    layer.mask[:, 70:] = 0
    layer.mask[55:60, 72:78] = 90
    before = layer.mask.copy()
    fill = s.document.combined_mask(LayerKind.FILL)
    s.set_result(InpaintOutcome(image=s.document.photo.copy(), method="opencv telea", backend="cpu", mask=fill))
    assert s.apply_result()
    assert not layer.mask[:, :70].any() and np.array_equal(layer.mask[:, 70:], before[:, 70:])
    s.undo_stack.undo()
    assert np.array_equal(layer.mask, before)


def test_apply_leaves_a_locked_layer_as_it_is(qtbot):
    """Painting, clearing and inverting are refused on a locked layer; Apply does not clear it
    either, while the unlocked layer the run also used is cleared."""
    s = make_session()
    locked, free = s.add_layer(), s.add_layer()
    locked.mask[10:20, 10:30] = 255
    free.mask[30:40, 10:30] = 255
    s.set_layer_props(locked.uid, locked=True)
    run_mask = s.document.combined_mask(LayerKind.FILL)
    result = s.document.photo.copy()
    result[run_mask > 0] = 7
    s.set_result(InpaintOutcome(image=result, method="opencv telea", backend="cpu", mask=run_mask))
    assert s.apply_result()
    assert locked.mask[10:20, 10:30].all() and not free.mask.any()
    assert np.array_equal(s.document.photo, result)


def test_apply_result_is_one_undoable_step(qtbot):
    s = make_session()
    doc = s.document
    layer = s.add_layer()
    layer.mask[10:20, 10:30] = 255
    layer.mask[40:45, 40:45] = 255  # painted during the run: not part of the result
    run_mask = np.zeros_like(layer.mask)
    run_mask[10:20, 10:30] = 255
    photo_before = doc.photo.copy()
    result = doc.photo.copy()
    result[10:20, 10:30] = 7
    outcome = InpaintOutcome(image=result, method="opencv telea", backend="cpu", mask=run_mask)
    s.set_result(outcome)
    assert s.apply_result()
    assert np.array_equal(doc.photo, result) and doc.result is None
    assert not layer.mask[10:20, 10:30].any() and layer.mask[40:45, 40:45].all()
    s.undo_stack.undo()
    assert np.array_equal(doc.photo, photo_before) and doc.result is outcome
    assert layer.mask[10:20, 10:30].all()
    s.undo_stack.redo()
    assert np.array_equal(doc.photo, result)


def test_apply_of_an_engine_result_looks_only_inside_its_mask_box(qtbot):
    """An engine result changes hole pixels only (`confined`): Apply compares just the run
    mask's box, so its cost follows the hole, not the photo (a 48 MP Apply held the window
    for seconds). A repair changes everything: Apply takes all of it."""
    s = make_session()
    doc = s.document
    layer = s.add_layer()
    layer.mask[10:20, 10:30] = 255
    run_mask = layer.mask.copy()
    result = doc.photo.copy()
    result[10:20, 10:30] = 7
    outside = result.copy()
    outside[50:55, 60:70] = 1  # a stray change outside the mask: never made by the engine
    s.set_result(InpaintOutcome(image=outside, method="model", backend="cpu", mask=run_mask, confined=True))
    assert s.apply_result()
    assert np.array_equal(doc.photo, result)  # the hole was taken, nothing outside its box
    assert not layer.mask.any()
    s.undo_stack.undo()
    repaired = np.clip(doc.photo.astype(int) + 5, 0, 255).astype(np.uint8)  # a tone repair: every pixel
    s.set_result(InpaintOutcome(image=repaired, method="repair: levels", backend="cpu", mask=run_mask))
    assert s.apply_result()
    assert np.array_equal(doc.photo, repaired)


def test_protect_layers_are_blue_and_fill_layers_never_are(qtbot):
    """A "Detected damage" fill layer came out blue like the protect layers."""
    from app.canvas.document import PROTECT_COLOUR

    s = make_session()
    fills = [s.add_layer() for _ in range(6)]
    protects = [s.add_layer(kind=LayerKind.PROTECT) for _ in range(2)]
    assert all(layer.color == PROTECT_COLOUR for layer in protects)
    assert all(layer.color != PROTECT_COLOUR for layer in fills)
    assert len({layer.color for layer in fills[:5]}) == 5  # neighbours differ


def test_switching_kind_takes_the_kinds_colour_unless_the_user_chose_one(qtbot):
    from app.canvas.document import FILL_COLOURS, PROTECT_COLOUR

    s = make_session()
    layer = s.add_layer(kind=LayerKind.PROTECT)
    s.set_layer_props(layer.uid, kind=LayerKind.FILL)
    assert layer.color in FILL_COLOURS
    s.set_layer_props(layer.uid, kind=LayerKind.PROTECT)
    assert layer.color == PROTECT_COLOUR
    s.undo_stack.undo()
    assert layer.kind == LayerKind.FILL and layer.color in FILL_COLOURS  # one undo step: kind and colour
    s.set_layer_props(layer.uid, color=(10, 20, 30))
    s.set_layer_props(layer.uid, kind=LayerKind.PROTECT)
    assert layer.color == (10, 20, 30)  # a colour the user picked stays


def test_the_undo_patch_of_a_big_result_is_worked_out_as_it_arrives_and_never_goes_stale(qtbot, monkeypatch):
    """On a big photo the patch Apply needs is computed in the background when the result comes
    (Apply then costs no diff of 36 MP on the GUI thread); if the photo changed meanwhile it is
    computed anew, never used against the wrong pixels."""
    from app.canvas import session as session_module

    monkeypatch.setattr(session_module, "PATCH_IN_BACKGROUND_PIXELS", 1000)  # this 4,800 px photo is "big"
    s = make_session()
    original = s.document.photo.copy()
    worked = []
    real = session_module._photo_patch
    monkeypatch.setattr(session_module, "_photo_patch", lambda o, p: worked.append(o) or real(o, p))
    repaired = np.clip(original.astype(int) + 9, 0, 255).astype(np.uint8)
    first = InpaintOutcome(image=repaired, method="repair", backend="cpu")
    s.set_result(first)
    s._patch_worker.submit(lambda: None).result()  # the background job has run
    assert worked == [first]
    s.apply_result()
    assert worked == [first]  # Apply used it: no second diff
    assert np.array_equal(s.document.photo, repaired)
    s.undo_stack.undo()  # the result comes back pending, over the original photo
    assert np.array_equal(s.document.photo, original) and s.document.result is first
    s._patch_worker.submit(lambda: None).result()
    # the photo changes after the patch was worked out (another result applied): it is stale
    other = InpaintOutcome(image=np.zeros_like(original), method="repair", backend="cpu")
    job = s._photo_patch_job
    s.set_result(other)
    s.apply_result()
    s._document.result = first  # back to the first result without a new background job
    s._photo_patch_job = job
    s.apply_result()
    assert np.array_equal(s.document.photo, repaired)  # diffed against the zeros, not the original
    s.undo_stack.undo()
    assert not s.document.photo.any()
    s.undo_stack.undo()
    assert np.array_equal(s.document.photo, original)


def test_results_in_a_row_never_queue_their_patches_and_a_new_document_drops_them(qtbot, monkeypatch):
    """Each new result cancels the patch of the one before if it has not started, so Apply never
    waits behind a queue of stale diffs; a document replaced drops its job (and starts one for a
    project's own pending result)."""
    import time

    from app.canvas import session as session_module

    monkeypatch.setattr(session_module, "PATCH_IN_BACKGROUND_PIXELS", 1000)
    worked = []
    real = session_module._photo_patch

    def slow(outcome, photo):
        time.sleep(0.2)
        worked.append(outcome)
        return real(outcome, photo)

    monkeypatch.setattr(session_module, "_photo_patch", slow)
    s = make_session()
    results = [InpaintOutcome(image=np.full_like(s.document.photo, v), method="repair", backend="cpu")
               for v in range(6)]
    for outcome in results:
        s.set_result(outcome)
    s.apply_result()
    assert len(worked) <= 3 and worked[-1] is results[-1]  # the first (running), maybe one more, the last
    assert (s.document.photo == 5).all()  # the last result, applied
    pending = InpaintOutcome(image=np.full_like(s.document.photo, 7), method="repair", backend="cpu")
    doc = Document(photo=s.document.photo.copy(), result=pending)
    s.set_document(doc)
    job = s._photo_patch_job
    assert job is not None and job[0] is pending
    s.apply_result()
    assert worked[-1] is pending and (s.document.photo == 7).all()
