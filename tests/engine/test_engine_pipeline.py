"""The pipeline end to end (OpenCV coarse stage, real CRA): pixels outside the mask come
back bit-identical for many photos and masks, holes are split into regions as designed,
the seam is feathered, bad input is refused with a message, progress and cancel work."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.engine import Cancelled, InpaintSettings, InputError, inpaint
from app.engine.regions import find_regions

FAST = InpaintSettings(method="telea", backend="cpu")


def _photo(rng, h, w) -> np.ndarray:
    """Noise over smooth colour ramps: detail everywhere, so any stray write shows."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramps = np.stack([xx / w * 200, yy / h * 200, (xx + yy) / (h + w) * 200], axis=2)
    return np.clip(ramps + 28 + rng.normal(0, 18, (h, w, 3)), 0, 255).astype(np.uint8)


def _random_mask(rng, h, w, kind: str) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    if kind == "blobs":
        for _ in range(rng.integers(1, 4)):
            cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
            axes = (int(rng.integers(3, w // 5)), int(rng.integers(3, h // 5)))
            cv2.ellipse(mask, (cx, cy), axes, float(rng.integers(0, 180)), 0, 360, 255, -1)
    elif kind == "strokes":
        for _ in range(rng.integers(1, 4)):
            pts = rng.integers(0, [w, h], size=(int(rng.integers(2, 5)), 2)).astype(np.int32)
            cv2.polylines(mask, [pts], False, 255, int(rng.integers(2, 12)))
    elif kind == "border":  # touching one or more edges of the photo
        t = int(rng.integers(4, min(h, w) // 4))
        side = rng.integers(0, 4)
        if side == 0:
            mask[:t, int(w * 0.2) : int(w * 0.7)] = 255
        elif side == 1:
            mask[int(h * 0.3) :, w - t :] = 255
        elif side == 2:
            mask[h - t :, :] = 255
        else:
            mask[: t * 2, : t * 2] = 255  # a corner
    elif kind == "apart":  # small holes in three far corners
        for cy, cx in ((0.15, 0.15), (0.15, 0.85), (0.85, 0.5)):
            cv2.circle(mask, (int(cx * w), int(cy * h)), max(3, min(h, w) // 20), 255, -1)
    elif kind == "speckle":  # isolated single pixels and odd values (any value > 0 is hole)
        ys, xs = rng.integers(0, h, 40), rng.integers(0, w, 40)
        mask[ys, xs] = rng.integers(1, 256, 40).astype(np.uint8)
    return mask


CASES = [(seed, kind) for kind in ("blobs", "strokes", "border", "apart", "speckle") for seed in range(6)]


@pytest.mark.parametrize("seed, kind", CASES)
def test_pixels_outside_the_mask_are_bit_identical(seed, kind):
    rng = np.random.default_rng(1000 + seed)
    h, w = int(rng.integers(96, 401)), int(rng.integers(96, 401))
    image = _photo(rng, h, w)
    mask = _random_mask(rng, h, w, kind)
    if not mask.any():
        mask[h // 2, w // 2] = 255
    if mask.all():
        mask[0, 0] = 0
    settings = FAST.with_(
        coarse_size=int(rng.choice([128, 256, 512])),  # small coarse sizes make CRA run on small boxes
        feather_px=int(rng.choice([0, 1, 3, 6])),
        context_min_px=int(rng.choice([16, 48])),
    )
    result = inpaint(image, mask, settings)
    out = result.image
    assert out.shape == image.shape and out.dtype == np.uint8
    keep = mask == 0
    assert np.array_equal(out[keep], image[keep]), f"{np.count_nonzero(out[keep] != image[keep])} pixels changed"
    assert result.regions >= 1
    # something was filled: noise is not reproduced by a fill
    hole = mask > 0
    assert np.count_nonzero(out[hole] != image[hole]) > 0
    assert not np.shares_memory(out, image)


def test_holes_far_apart_are_separate_boxes():
    rng = np.random.default_rng(7)
    image = _photo(rng, 400, 400)
    mask = _random_mask(rng, 400, 400, "apart")
    regions = find_regions(mask > 0, FAST.context_fraction, FAST.context_min_px, FAST.attention_grid)
    assert len(regions) == 3
    for region in regions:  # each box is small, at native resolution, and a multiple of the grid
        assert region.side % FAST.attention_grid == 0 and region.side <= 160
    result = inpaint(image, mask, FAST.with_(coarse_size=128))
    assert result.regions == 3
    assert np.array_equal(result.image[mask == 0], image[mask == 0])


def test_nearby_holes_share_one_box():
    mask = np.zeros((300, 300), bool)
    mask[100:110, 100:110] = True
    mask[100:110, 130:140] = True  # 20 px apart: the context boxes overlap
    (region,) = find_regions(mask, 0.75, 48, 32)
    x0, y0, x1, y1 = region.box
    assert x0 <= 100 and x1 >= 140 and y0 <= 100 and y1 >= 110


def test_long_scratch_is_split_into_pieces():
    rng = np.random.default_rng(11)
    h, w = 240, 400
    image = _photo(rng, h, w)
    mask = np.zeros((h, w), np.uint8)
    cv2.line(mask, (0, 100), (w - 1, 130), 255, 5)  # across the whole photo, edge to edge
    regions = find_regions(mask > 0, FAST.context_fraction, FAST.context_min_px, FAST.attention_grid)
    assert len(regions) >= 2
    # the pieces' own areas tile the scratch: every hole pixel is owned exactly once
    owned = np.zeros((h, w), int)
    for region in regions:
        ox0, oy0, ox1, oy1 = region.own
        owned[oy0:oy1, ox0:ox1] += 1
        assert region.side < w  # no piece squeezes the whole photo into one box
    assert np.all(owned[mask > 0] == 1)
    result = inpaint(image, mask, FAST.with_(coarse_size=128))
    assert result.regions == len(regions)
    assert np.array_equal(result.image[mask == 0], image[mask == 0])
    # the whole scratch is filled: no original scratch pixel left where it was painted over
    image_with_scratch = image.copy()
    image_with_scratch[mask > 0] = (255, 0, 255)
    filled = inpaint(image_with_scratch, mask, FAST.with_(coarse_size=128)).image
    magenta = (filled[:, :, 0] > 200) & (filled[:, :, 1] < 60) & (filled[:, :, 2] > 200)
    assert not magenta[mask > 0].any()


def test_box_of_a_hole_across_the_photo_is_no_larger_than_the_photo():
    """Context past the photo is only mirrored padding: a hole spanning the photo gets a box
    of the photo's long side, so the coarse stage sees it at the best possible scale."""
    mask = np.zeros((321, 481), bool)
    mask[10:300, 20:460] = True
    (region,) = find_regions(mask, 0.5, 48, 32)
    assert 460 - 20 <= region.side <= 512  # 481 rounded up to the grid, not 440 + 2 * 220


def test_photo_smaller_than_its_box_is_padded_not_stretched():
    rng = np.random.default_rng(12)
    image = _photo(rng, 96, 120)
    mask = np.zeros((96, 120), np.uint8)
    mask[30:70, 40:90] = 255
    (region,) = find_regions(mask > 0, FAST.context_fraction, FAST.context_min_px, FAST.attention_grid)
    assert region.side > 120  # the box runs past the photo on every side
    result = inpaint(image, mask, FAST.with_(coarse_size=64))
    assert np.array_equal(result.image[mask == 0], image[mask == 0])


def test_large_hole_is_worked_in_bounded_memory():
    """A box above max_work_side is worked at reduced scale and pasted back upsampled;
    the photo keeps its size and every pixel outside the hole."""
    rng = np.random.default_rng(13)
    h, w = 700, 600
    image = _photo(rng, h, w)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (300, 350), (170, 220), 20, 0, 360, 255, -1)
    (region,) = find_regions(mask > 0, FAST.context_fraction, FAST.context_min_px, FAST.attention_grid)
    assert region.side > 256
    shapes = []

    from app.engine.backends.onnx import NumpyBackend

    class Recording(NumpyBackend):
        def matmul(self, a, b):
            shapes.append(b.shape)
            return super().matmul(a, b)

    settings = FAST.with_(max_work_side=256, coarse_size=128, chunk_columns=100_000)
    result = inpaint(image, mask, settings, backend=Recording())
    assert result.image.shape == image.shape
    assert np.array_equal(result.image[mask == 0], image[mask == 0])
    # the product ran on 256 px patches (8 px of 32), not on the native box
    (shape,) = shapes
    assert shape[1] == (256 // 32) ** 2 * 3
    # the fill follows the photo's colour ramps (not a flat or broken fill)
    hole = mask > 0
    smooth = cv2.GaussianBlur(image, (0, 0), 8).astype(float)
    assert np.mean(np.abs(result.image[hole].astype(float) - smooth[hole])) < 40


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_feathered_seam_is_closer_to_the_outside(seed):
    """Pixels just inside the hole edge differ less from their outside neighbours with a
    3 px feather than with none."""
    rng = np.random.default_rng(seed)
    h = w = 300
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    f = rng.uniform(5, 12, 3)
    image = np.clip(128 + 80 * np.stack([np.sin(xx / f[0]), np.cos(yy / f[1]), np.sin((xx + yy) / f[2])], 2), 0, 255)
    image = image.astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, (150, 150), int(rng.integers(40, 70)), 255, -1)
    hole = mask > 0
    edge = hole & ~(cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0)
    ys, xs = np.nonzero(edge)

    def step(out):
        total, count = 0.0, 0
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            ny, nx = ys + dy, xs + dx
            outside = ~hole[ny, nx]
            total += np.abs(out[ys[outside], xs[outside]].astype(float) - out[ny[outside], nx[outside]]).sum()
            count += 3 * int(outside.sum())
        return total / count

    settings = FAST.with_(coarse_size=128, edge_band=0)  # the feather alone (the edge band also joins the seam)
    hard = inpaint(image, mask, settings.with_(feather_px=0)).image
    soft = inpaint(image, mask, settings.with_(feather_px=3)).image
    assert np.array_equal(soft[~hole], image[~hole])
    assert step(soft) < 0.9 * step(hard)
    # the feather only touches the first few pixels inside the edge
    deep = cv2.erode(mask, np.ones((11, 11), np.uint8)) > 0
    assert np.array_equal(soft[deep], hard[deep])


# ---------------------------------------------------------------- bad input


def _small_case():
    rng = np.random.default_rng(21)
    image = _photo(rng, 120, 160)
    mask = np.zeros((120, 160), np.uint8)
    mask[40:80, 60:100] = 255
    return image, mask


def test_empty_mask_returns_the_photo_unchanged_and_says_so():
    image, _ = _small_case()
    result = inpaint(image, np.zeros(image.shape[:2], np.uint8), FAST)
    assert np.array_equal(result.image, image) and result.image is not image
    assert result.regions == 0
    assert any("empty" in note and "unchanged" in note for note in result.notes)


def test_mask_covering_the_whole_photo_is_refused():
    image, _ = _small_case()
    with pytest.raises(InputError, match="whole photo"):
        inpaint(image, np.full(image.shape[:2], 255, np.uint8), FAST)


def test_protect_plus_mask_covering_everything_is_refused():
    image, mask = _small_case()
    with pytest.raises(InputError, match="protected"):
        inpaint(image, mask, FAST, protect=255 - mask)


@pytest.mark.parametrize(
    "mask_shape, words",
    [((120, 161), "160x120"), ((160, 120), "photo is 160x120"), ((120, 160, 3), "2-D")],
)
def test_mask_of_wrong_size_is_refused(mask_shape, words):
    image, _ = _small_case()
    with pytest.raises(InputError, match=words):
        inpaint(image, np.full(mask_shape, 255, np.uint8), FAST)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((120, 160), np.uint8),  # grayscale
        np.zeros((120, 160, 4), np.uint8),  # RGBA
        np.zeros((120, 160, 3), np.float32),  # not uint8
        [[0, 0, 0]],  # not an array
    ],
)
def test_photo_of_wrong_kind_is_refused(bad):
    _, mask = _small_case()
    with pytest.raises(InputError, match="RGB uint8"):
        inpaint(bad, mask, FAST)


def test_protect_of_wrong_size_and_unknown_method_are_refused():
    image, mask = _small_case()
    with pytest.raises(InputError, match="protect"):
        inpaint(image, mask, FAST, protect=np.zeros((10, 10), np.uint8))
    with pytest.raises(InputError, match="Unknown method 'magic'"):
        inpaint(image, mask, FAST.with_(method="magic"))


def test_inputs_are_not_modified():
    image, mask = _small_case()
    image_copy, mask_copy = image.copy(), mask.copy()
    inpaint(image, mask, FAST)
    assert np.array_equal(image, image_copy) and np.array_equal(mask, mask_copy)


# ---------------------------------------------------------------- progress and cancel


def _cra_case():
    """One region whose box (224 px) is above the 128 px coarse size: CRA runs."""
    rng = np.random.default_rng(31)
    image = _photo(rng, 300, 300)
    mask = np.zeros((300, 300), np.uint8)
    mask[110:190, 110:190] = 255
    return image, mask, FAST.with_(coarse_size=128, chunk_columns=64)


def test_progress_reports_every_stage_in_order():
    image, mask, settings = _cra_case()
    calls = []
    result = inpaint(image, mask, settings, progress=lambda *a: calls.append(a))
    assert result.regions == 1
    stages = [c[0] for c in calls]
    order = {"prepare": 0, "model": 1, "aggregate": 2, "paste": 3}
    assert stages[0] == "prepare" and stages[-1] == "paste"
    assert [order[s] for s in stages] == sorted(order[s] for s in stages)
    assert set(stages) == set(order)
    chunks = [(step, total) for stage, step, total, _ in calls if stage == "aggregate"]
    n = chunks[0][1]
    assert n > 1 and chunks == [(k, n) for k in range(1, n + 1)]
    fractions = [c[3] for c in calls]
    assert fractions == sorted(fractions) and 0.0 <= fractions[0] and fractions[-1] == 1.0


def test_progress_over_several_regions_only_moves_forward():
    rng = np.random.default_rng(32)
    image = _photo(rng, 400, 400)
    mask = _random_mask(rng, 400, 400, "apart")
    calls = []
    result = inpaint(image, mask, FAST.with_(coarse_size=64), progress=lambda *a: calls.append(a))
    assert result.regions == 3
    fractions = [c[3] for c in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [c[0] for c in calls].count("model") == 2 * 3  # start and end of each region's coarse stage


def test_progress_gives_each_region_its_share_of_the_work_not_of_the_count():
    """One long scratch and a dozen specks: the scratch's region is most of the work, and the
    bar (it sat at a few per cent while a 36 MP scan's long scratch was filled) moves by it."""
    rng = np.random.default_rng(33)
    image = _photo(rng, 1500, 1500)
    mask = np.zeros((1500, 1500), np.uint8)
    cv2.line(mask, (20, 30), (600, 560), 255, 5)
    for x in range(100, 1500, 200):
        mask[1400:1403, x : x + 3] = 255
    calls = []
    result = inpaint(image, mask, FAST.with_(method="telea", cra=False), progress=lambda *a: calls.append(a))
    assert result.regions > 5
    starts = [c[3] for c in calls if c[0] == "model" and c[1] == 0] + [1.0]
    shares = np.diff(starts)
    assert shares.max() > 0.5  # the scratch's region: 1/regions of the bar before
    fractions = [c[3] for c in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    paste = [c for c in calls if c[0] == "paste"]  # the seam matching reports strip by strip
    assert len(paste) > 2 * result.regions + 1


def test_cancel_is_honoured_at_every_poll():
    """Cancel at each point the engine polls (before start, per region, after the model,
    before every chunk): the job stops there and nothing is pasted."""
    image, mask, settings = _cra_case()
    polls = []
    inpaint(image, mask, settings, cancel=lambda: bool(polls.append(1)))
    assert len(polls) >= 5
    for after in range(len(polls)):
        seen, stages = [], []

        def cancel(after=after, seen=seen):
            seen.append(1)
            return len(seen) > after

        with pytest.raises(Cancelled):
            inpaint(image, mask, settings, progress=lambda s, *a, stages=stages: stages.append(s), cancel=cancel)
        assert len(seen) == after + 1  # stopped at the first poll that said yes
        assert "paste" not in stages


def test_cancel_that_never_fires_changes_nothing():
    image, mask, settings = _cra_case()
    plain = inpaint(image, mask, settings).image
    polled = []
    watched = inpaint(image, mask, settings, cancel=lambda: bool(polled.append(1))).image
    assert np.array_equal(plain, watched)
    assert len(polled) > 3  # polled before start, per region, after the model and per chunk


def test_scattered_dust_is_not_merged_into_one_photo_sized_box():
    """Specks spread over the photo each get a small box (cheap with OpenCV, which fills a
    small box as it is); a tight cluster still shares one box."""
    from app.engine.regions import find_regions

    rng = np.random.default_rng(5)
    mask = np.zeros((1500, 2000), np.uint8)
    for _ in range(120):
        cv2.circle(mask, (int(rng.integers(0, 2000)), int(rng.integers(0, 1500))), 2, 255, -1)
    regions = find_regions(mask, 0.5, 48, 32)
    assert len(regions) > 30  # one box each, or a few close ones together
    assert max(r.side for r in regions) < 600
    cluster = np.zeros((1500, 2000), np.uint8)
    for x in range(900, 1000, 12):
        cv2.circle(cluster, (x, 700), 2, 255, -1)
    assert len(find_regions(cluster, 0.5, 48, 32)) == 1
    # every speck is filled and nothing outside changes
    photo = rng.integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    out = inpaint(photo, mask, InpaintSettings(method="telea", backend="cpu"))
    assert out.regions == len(regions)
    assert np.array_equal(out.image[mask == 0], photo[mask == 0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_seam_match_in_strips_is_the_seam_match_of_the_whole_box(seed, monkeypatch):
    """The seam match runs on strips of the hole's bounding box (bounded memory on big photos);
    with the overlap every strip row is exact: strips of 5 rows give the very same fill."""
    from app.engine import pipeline

    rng = np.random.default_rng(seed)
    image = _photo(rng, 160, 200)
    mask = _random_mask(rng, 160, 200, ("blobs", "strokes", "border")[seed])
    settings = FAST.with_(feather_px=int(rng.choice([1, 3, 6])))
    whole = inpaint(image, mask, settings).image
    monkeypatch.setattr(pipeline, "SEAM_STRIP_ROWS", 5)
    assert np.array_equal(inpaint(image, mask, settings).image, whole)


@pytest.mark.parametrize("method", ["telea", "model"])
def test_a_protected_object_beside_a_small_hole_does_not_bleed_into_it(method):
    """Protect means "never build the fill from this", also for holes too small for the
    detail stage: the coarse fill must not continue a protected red post into the hole."""
    rng = np.random.default_rng(3)
    image = np.clip(128 + rng.normal(0, 4, (120, 160, 3)), 0, 255).astype(np.uint8)
    image[:, 70:80] = (220, 30, 30)  # a red post
    mask = np.zeros((120, 160), np.uint8)
    mask[40:70, 80:100] = 255  # a hole right beside it
    protect = np.zeros_like(mask)
    protect[:, 68:80] = 255
    settings = FAST.with_(method=method)  # "model": the bundled one
    hole = mask > 0

    def redness(out):
        return float((out[..., 0].astype(int) - out[..., 1].astype(int))[hole].mean())
    plain = inpaint(image, mask, settings).image
    guarded = inpaint(image, mask, settings, protect=protect).image
    assert redness(plain) > 10  # unprotected, the post's colour runs into the hole
    assert redness(guarded) < 3  # protected: the gray around is all the fill is made of
    assert np.array_equal(guarded[~hole], image[~hole])


def test_the_pieces_of_a_long_hole_join_without_steps():
    """A tall pole across sky and grass is cut into pieces; each piece's coarse stage and seam
    must see the pieces filled before it, or the fill comes out as blocks with a step at every
    piece boundary (a regression a user saw: 13.6 grey levels between two rows of the fill)."""
    rng = np.random.default_rng(0)
    h, w = 1200, 900
    image = np.zeros((h, w, 3), np.float32)
    image[:700] = np.linspace(170, 200, 700)[:, None, None] * np.array([0.55, 0.75, 1.0])  # sky
    image[700:] = (60, 120, 55)  # grass
    image = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[150:1100, 400:470] = 255
    assert len(find_regions(mask, FAST.context_fraction, FAST.context_min_px, FAST.attention_grid)) >= 3
    for method in ("telea", "model"):  # the bundled generator too
        fill = inpaint(image, mask, InpaintSettings(method=method)).image[150:1100, 400:470].astype(float)
        rows = np.arange(150, 1099)
        step = np.abs(np.diff(fill.mean(axis=1), axis=0)).max(axis=1)  # change from one row of the fill to the next
        assert step[np.abs(rows - 700) > 40].max() < 4, method  # away from the horizon, no step


def test_a_gray_photo_gets_a_gray_fill():
    """The bundled model paints in colour; an old black-and-white photo must not get a tint."""
    rng = np.random.default_rng(5)
    gray = _photo(rng, 160, 200)[:, :, :1].repeat(3, axis=2)
    mask = np.zeros((160, 200), np.uint8)
    mask[50:110, 60:140] = 255
    for method in ("telea", "model"):
        out = inpaint(gray, mask, InpaintSettings(method=method)).image
        assert np.array_equal(out[:, :, 0], out[:, :, 1]) and np.array_equal(out[:, :, 0], out[:, :, 2]), method
        assert np.array_equal(out[mask == 0], gray[mask == 0])
