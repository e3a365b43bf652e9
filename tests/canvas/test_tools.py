"""Pure numpy tools: exact pixels, gap filling, undo patches bit for bit."""

import itertools

import numpy as np
import pytest

from app.canvas import tools
from app.canvas.patch import Patch, Rect


def capsule_pixels(shape, points, radius):
    """Independent reference: pixels whose centre lies within radius of the polyline."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    best = np.full(shape, np.inf)
    pts = list(points) if len(points) > 1 else [points[0], points[0]]
    for (ax, ay), (bx, by) in itertools.pairwise(pts):
        dx, dy = bx - ax, by - ay
        l2 = dx * dx + dy * dy
        t = np.zeros(shape) if l2 == 0 else np.clip(((xx - ax) * dx + (yy - ay) * dy) / l2, 0, 1)
        best = np.minimum(best, (xx - ax - t * dx) ** 2 + (yy - ay - t * dy) ** 2)
    return best <= radius * radius


def test_segment_paints_exactly_the_capsule_and_reports_its_box():
    mask = np.zeros((80, 120), np.uint8)
    rect = tools.stamp_segment(mask, (10.3, 20.7), (90.2, 60.1), 6.45)
    expected = capsule_pixels(mask.shape, [(10.3, 20.7), (90.2, 60.1)], 6.45)
    assert np.array_equal(mask == 255, expected)
    assert set(np.unique(mask)) == {0, 255}
    ys, xs = np.nonzero(mask)
    assert rect.x <= xs.min() and rect.x1 > xs.max() and rect.y <= ys.min() and rect.y1 > ys.max()
    assert rect == Rect(3, 14, 95, 54)  # the capsule's box, not the whole mask


def test_far_apart_samples_leave_no_gap():
    mask = np.zeros((50, 300), np.uint8)
    rec = tools.StrokeRecorder(mask)
    rec.segment((5, 25), (5, 25), 2)
    rec.segment((5, 25), (295, 25), 2)  # one mouse sample 290 px further
    assert (mask[24:26, 5:295] == 255).all()


def test_soft_brush_fades_and_eraser_removes():
    mask = np.zeros((60, 60), np.uint8)
    tools.stamp_segment(mask, (30, 30), (30, 30), 20, hardness=0.5)
    assert mask[30, 30] == 255
    edge = mask[30, 30 + 16]
    assert 0 < edge < 255
    assert mask[30, 55] == 0
    tools.stamp_segment(mask, (30, 30), (30, 30), 5, erase=True)
    assert mask[30, 30] == 0 and mask[30, 30 + 16] == edge


def test_stroke_patch_undoes_and_redoes_bit_for_bit():
    rng = np.random.default_rng(1)
    mask = (rng.random((700, 900)) > 0.7).astype(np.uint8) * 255
    before = mask.copy()
    rec = tools.StrokeRecorder(mask)
    pts = [(50, 50), (400, 90), (620, 600), (880, 650)]
    for a, b in itertools.pairwise(pts):
        rec.segment(a, b, 30, hardness=0.3)
    after = mask.copy()
    patch = rec.finish()
    assert patch.nbytes < before.nbytes / 4  # only the changed tiles, sparsely
    patch.swap(mask)
    assert np.array_equal(mask, before)
    patch.swap(mask)
    assert np.array_equal(mask, after)


def test_rect_and_lasso_fill_and_erase():
    mask = np.zeros((40, 40), np.uint8)
    rect, patch = tools.fill_rect(mask, Rect(5, 6, 10, 4))
    assert rect == Rect(5, 6, 10, 4)
    assert (mask[6:10, 5:15] == 255).all() and mask.sum() == 40 * 255
    rect, patch = tools.fill_rect(mask, Rect(5, 6, 10, 4))
    assert rect is None and patch is None  # nothing changed, no undo step
    mask[:] = 0
    rect, patch = tools.fill_polygon(mask, [(0, 0), (40, 0), (40, 40), (0, 40)])
    assert (mask == 255).all()
    tools.fill_polygon(mask, [(10, 10), (30, 10), (30, 30), (10, 30)], erase=True)
    assert mask[20, 20] == 0 and mask[5, 5] == 255
    assert mask[9, 20] == 255 and mask[31, 20] == 255


def test_grow_shrink_invert_clear():
    mask = np.zeros((50, 50), np.uint8)
    mask[20:30, 20:30] = 255
    original = mask.copy()
    rect, patch = tools.grow(mask, 3)
    assert (mask[17:33, 20:30] == 255).all() and mask[16, 25] == 0 and mask[25, 16] == 0
    assert mask[17, 17] == 0  # corner at distance 3*sqrt(2) stays out
    patch.swap(mask)
    assert np.array_equal(mask, original)
    tools.grow(mask, -2)
    assert mask[22:28, 22:28].min() == 255 and mask[21, 25] == 0 and mask.sum() == 36 * 255
    rect, patch = tools.invert(mask)
    assert mask[0, 0] == 255 and mask[25, 25] == 0
    _rect, patch = tools.clear(mask)
    assert not mask.any()
    patch.swap(mask)
    assert mask[0, 0] == 255


def test_photo_patch_swaps_rgb():
    old = np.zeros((300, 300, 3), np.uint8)
    new = old.copy()
    new[100:120, 200:210, 1] = 7
    patch = Patch.from_diff(new, old)  # holds new's values
    assert patch.rect == Rect(200, 100, 10, 20)
    patch.swap(old)
    assert np.array_equal(old, new)


def test_combined_patch_of_two_edits_goes_back_before_the_first():
    rng = np.random.default_rng(3)
    m0 = (rng.random((600, 500)) < 0.1).astype(np.uint8) * 255
    m1 = m0.copy()
    m1[10:300, 20:200] = 255  # two overlapping edits in different places
    m2 = m1.copy()
    m2[250:590, 150:480] = 0
    mask = m0.copy()
    _r, first = tools.replace_mask(mask, m1)
    _r, then = tools.replace_mask(mask, m2)
    merged = Patch.combined(first, then, mask)
    assert np.array_equal(mask, m2)  # combining leaves the layer alone
    assert merged.rect == first.rect.united(then.rect)
    merged.swap(mask)
    assert np.array_equal(mask, m0)
    merged.swap(mask)
    assert np.array_equal(mask, m2)
    # only the pixels that differ from before the first edit are stored, each once
    assert sum(p.values.size for p in merged.pieces) == np.count_nonzero(m0 != m2)


def test_combined_patch_of_edits_that_cancel_out_is_empty():
    mask = np.zeros((50, 60), np.uint8)
    start = mask.copy()
    _r, first = tools.replace_mask(mask, np.full_like(mask, 255))
    _r, then = tools.replace_mask(mask, start)
    assert not Patch.combined(first, then, mask)
    assert np.array_equal(mask, start)


@pytest.mark.parametrize("radius", [0.5, 1, 3.7])
def test_single_click_matches_reference(radius):
    mask = np.zeros((20, 20), np.uint8)
    tools.stamp_segment(mask, (9.5, 9.5), (9.5, 9.5), radius)
    assert np.array_equal(mask == 255, capsule_pixels(mask.shape, [(9.5, 9.5)], radius))


def test_a_photo_patch_sees_a_change_of_one_level_in_one_channel():
    """Patch.from_diff of colour photos goes through OpenCV (saturated sum of the channels'
    absolute differences): every pixel that differs in any channel, by any amount, is in it,
    and no other; undoing restores the photo exactly."""
    from app.canvas.patch import Patch

    rng = np.random.default_rng(9)
    for channels in (3, 4):
        old = rng.integers(0, 256, (70, 90, channels), dtype=np.uint8)
        new = old.copy()
        ys, xs, cs = rng.integers(0, 70, 40), rng.integers(0, 90, 40), rng.integers(0, channels, 40)
        new[ys, xs, cs] ^= 1  # one level, one channel
        new[5, 5] = 255 - old[5, 5]  # every channel, far
        patch = Patch.from_diff(old, new)
        covered = np.zeros(old.shape[:2], bool)
        for piece in patch.pieces:
            covered[piece.y : piece.y + piece.h, piece.x : piece.x + piece.w] |= piece.selector()
        assert np.array_equal(covered, (old != new).any(axis=2))
        restored = new.copy()
        patch.swap(restored)
        assert np.array_equal(restored, old)


def test_a_patch_of_a_photo_changed_everywhere_keeps_whole_blocks_and_swaps_back_exactly():
    """A tone repair changes every pixel: its tiles are stored as blocks (no changed-pixel map),
    swapped by slices; beside them a partly changed tile still keeps only its changed pixels."""
    rng = np.random.default_rng(4)
    old = rng.integers(0, 256, (600, 700, 3), dtype=np.uint8)
    new = old ^ 1  # every pixel, one level
    new[:256, :256] = old[:256, :256]  # one tile left alone...
    new[10, 10] = 0  # ...but for one pixel
    patch = Patch.from_diff(old, new)
    whole = [p for p in patch.pieces if p.bits is None]
    assert whole and sum(p.values.shape[0] * p.values.shape[1] for p in whole) > 0.8 * 600 * 700
    covered = np.zeros(old.shape[:2], bool)
    for piece in patch.pieces:
        covered[piece.y : piece.y + piece.h, piece.x : piece.x + piece.w] |= piece.selector()
    assert np.array_equal(covered, (old != new).any(axis=2))
    assert patch.nbytes < old.nbytes + 1000
    photo = new.copy()
    patch.swap(photo)
    assert np.array_equal(photo, old)
    patch.swap(photo)
    assert np.array_equal(photo, new)


def test_clearing_a_fill_of_hard_strokes_keeps_every_stroke_outside_it():
    """No faint paint near the fill (hard strokes, a detected layer): only the filled pixels go;
    a hard stroke touching the fill stays whole outside it."""
    mask = np.zeros((80, 90), np.uint8)
    mask[10:20, 10:60] = 255  # filled
    mask[15:40, 55:65] = 255  # painted since, touching it
    filled = np.zeros(mask.shape, bool)
    filled[10:20, 10:60] = True
    out = tools.clear_filled(mask, filled)
    assert not out[filled].any() and (out[20:40, 55:65] == 255).all()
    mask[21, 56] = 40  # one faint pixel of that stroke: a rim, cleared with the fill it touches
    out = tools.clear_filled(mask, filled)
    assert out[21, 56] == 0 and (out[22:40, 55:65] == 255).all()
