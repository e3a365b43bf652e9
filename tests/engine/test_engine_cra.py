"""Contextual residual aggregation: the chunked hole-aware product, the computed attention,
the model-attention layouts, and the pipeline's choice of source patches (protect)."""

from __future__ import annotations

import numpy as np
import pytest

from app.engine import Cancelled, InpaintSettings, cra, inpaint

# ---------------------------------------------------------------- aggregate


@pytest.mark.parametrize("chunk", [1, 7, 64, 100, 299, 300, 301, 5000])
def test_aggregate_chunked_equals_direct_product(chunk):
    rng = np.random.default_rng(chunk)
    attention = rng.random((37, 53)).astype(np.float32)
    residual = rng.normal(size=(53, 300)).astype(np.float32)
    calls = []
    out = cra.aggregate(attention, residual, np.matmul, chunk, on_chunk=lambda k, n: calls.append((k, n)))
    direct = attention.astype(np.float64) @ residual.astype(np.float64)
    assert out.shape == (37, 300) and out.dtype == np.float32
    np.testing.assert_allclose(out, direct, rtol=1e-5, atol=1e-4)
    n = -(-300 // chunk)
    assert calls == [(k, n) for k in range(1, n + 1)]


def test_aggregate_uses_the_given_matmul_on_column_chunks():
    """Every chunk goes through the backend's matmul with at most chunk_columns columns."""
    rng = np.random.default_rng(0)
    attention = rng.random((5, 9)).astype(np.float32)
    residual = rng.random((9, 50)).astype(np.float32)
    widths = []

    def matmul(a, b):
        widths.append(b.shape[1])
        assert a.dtype == np.float32 and b.dtype == np.float32 and b.flags.c_contiguous
        return a @ b

    out = cra.aggregate(attention, residual, matmul, 16)
    assert widths == [16, 16, 16, 2]
    np.testing.assert_allclose(out, attention @ residual, rtol=1e-6)


def test_aggregate_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="columns"):
        cra.aggregate(np.ones((3, 4), np.float32), np.ones((5, 6), np.float32))


def test_aggregate_polls_cancel_before_each_chunk():
    polls = []

    def cancel():
        polls.append(1)
        return len(polls) == 3  # cancel before the third chunk

    done = []
    with pytest.raises(Cancelled):
        cra.aggregate(np.ones((2, 3), np.float32), np.ones((3, 10), np.float32), np.matmul, 2,
                      on_chunk=lambda k, n: done.append(k), cancel=cancel)
    assert done == [1, 2]


# ---------------------------------------------------------------- patches


def test_patches_round_trip_and_order():
    rng = np.random.default_rng(1)
    image = rng.random((64, 64, 3)).astype(np.float32)
    patches = cra.to_patches(image, 8)
    assert patches.shape == (64, 8 * 8 * 3)
    # patch k is the block at row k // 8, column k % 8, flattened row-major
    np.testing.assert_array_equal(patches[8 * 2 + 5], image[16:24, 40:48].reshape(-1))
    np.testing.assert_array_equal(cra.from_patches(patches, 8), image)
    hole = np.zeros((64, 64), bool)
    hole[17, 41] = True
    assert np.flatnonzero(cra.patch_any(hole, 8)).tolist() == [8 * 2 + 5]


# ---------------------------------------------------------------- computed attention


def _independent_attention(feats: np.ndarray, rows, cols, scale: float) -> np.ndarray:
    """Softmax over the given columns of scale * cosine(centred features), in float64."""
    f = feats.astype(np.float64)
    f = f - f[cols].mean(axis=0)
    q, s = f[rows], f[cols]
    cos = (q @ s.T) / np.outer(np.linalg.norm(q, axis=1), np.linalg.norm(s, axis=1))
    z = np.exp(scale * cos - (scale * cos).max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("scale", [1.0, 10.0, 60.0])
def test_compute_attention_is_a_softmax_over_the_valid_columns(scale):
    grid = 16
    rng = np.random.default_rng(int(scale))
    coarse = rng.random((128, 128, 3)).astype(np.float32) * 255
    hole = np.zeros((grid, grid), bool)
    hole[5:9, 4:11] = True
    rows = np.flatnonzero(hole.reshape(-1))
    near = np.zeros_like(hole)
    near[4:10, 3:12] = True  # the hole and a ring around it are not sources
    cols = np.flatnonzero(~near.reshape(-1))
    att = cra.compute_attention(coarse, grid, rows, cols, scale)
    assert att.shape == (len(rows), len(cols))
    assert np.all(att > 0)
    np.testing.assert_allclose(att.sum(axis=1), 1.0, rtol=1e-5)
    feats = cra.patch_descriptors(coarse, grid)
    np.testing.assert_allclose(att, _independent_attention(feats, rows, cols, scale), rtol=2e-3, atol=1e-6)


def test_attention_prefers_the_matching_patch():
    """A hole patch whose coarse content (and surroundings) repeats a source patch puts
    its highest weight on that source; a higher scale makes the row more peaked."""
    grid = 16
    rng = np.random.default_rng(5)
    tile = rng.random((3 * 8, 3 * 8, 3)).astype(np.float32) * 255
    coarse = rng.random((128, 128, 3)).astype(np.float32) * 255
    coarse[8 * 6 : 8 * 9, 8 * 6 : 8 * 9] = tile  # 3x3 patches centred on patch (7, 7)
    coarse[8 * 1 : 8 * 4, 8 * 11 : 8 * 14] = tile  # the same around patch (2, 12)
    rows = np.array([7 * grid + 7])
    cols = np.array([k for k in range(grid * grid) if k // grid < 5])
    soft = cra.compute_attention(coarse, grid, rows, cols, 1.0)
    sharp = cra.compute_attention(coarse, grid, rows, cols, 200.0)
    best = cols[np.argmax(sharp[0])]
    assert best == 2 * grid + 12
    assert sharp[0].max() > 0.9 > soft[0].max()


# ---------------------------------------------------------------- model attention


def test_attention_layouts_agree():
    g = 8
    rng = np.random.default_rng(2)
    full = rng.random((g * g, g * g)).astype(np.float32)  # query x source
    nhwc = full.reshape(1, g, g, g * g)
    nchw = np.ascontiguousarray(full.T.reshape(1, g * g, g, g))
    np.testing.assert_array_equal(cra.attention_from_model(nhwc, "NHWC"), full)
    np.testing.assert_array_equal(cra.attention_from_model(nchw, "NCHW"), full)
    with pytest.raises(ValueError, match="expected"):
        cra.attention_from_model(np.zeros((1, 5, 7, 9), np.float32), "NHWC")


def test_renormalise_keeps_the_block_and_fixes_rows():
    rng = np.random.default_rng(3)
    full = rng.random((16, 16)).astype(np.float32)
    rows, cols = np.array([1, 5, 9]), np.array([0, 2, 3, 15])
    full[9, cols] = 0.0  # a row with no weight on any valid column
    block = cra.renormalise(full, rows, cols)
    np.testing.assert_allclose(block.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(block[0], full[1, cols] / full[1, cols].sum(), rtol=1e-6)
    np.testing.assert_allclose(block[2], 0.25)  # no information: uniform over the sources
    sharp = cra.renormalise(full, rows, cols, scale=50.0)
    np.testing.assert_allclose(sharp.sum(axis=1), 1.0, rtol=1e-5)
    assert sharp[0].max() > block[0].max()


# ---------------------------------------------------------------- hole-aware selection in the pipeline


def _protect_case():
    """Gray noise photo; a protected band carries a red/cyan 1-px checkerboard whose low-pass
    is the same gray (so only CRA's residual columns could bring it into the fill)."""
    rng = np.random.default_rng(1)
    h = w = 400
    gray = np.clip(128 + rng.normal(0, 12, (h, w)), 0, 255).astype(np.uint8)
    image = np.repeat(gray[:, :, None], 3, axis=2)
    yy, xx = np.mgrid[0:h, 0:w]
    checker = ((yy + xx) % 2) * 2 - 1
    protect = np.zeros((h, w), np.uint8)
    protect[:, 250:330] = 255
    band = protect > 0
    image[band, 0] = (128 + 60 * checker)[band]
    image[band, 1] = (128 - 60 * checker)[band]
    image[band, 2] = (128 - 60 * checker)[band]
    mask = np.zeros((h, w), np.uint8)
    mask[150:250, 150:248] = 255
    return image, mask, protect


def _colour_pixels(out: np.ndarray, mask: np.ndarray) -> int:
    """Hole pixels that are clearly not gray (the background is gray: R == G == B)."""
    diff = np.abs(out[:, :, 0].astype(int) - out[:, :, 1].astype(int))
    return int(np.count_nonzero(diff[mask > 0] > 20))


@pytest.mark.parametrize("scale", [60.0, 300.0])
def test_protected_patches_never_feed_the_fill(scale):
    image, mask, protect = _protect_case()
    settings = InpaintSettings(method="telea", coarse_size=128, attention_scale=scale)
    # control: unprotected, the checkerboard patches are good matches and show up in the fill
    free = inpaint(image, mask, settings).image
    assert _colour_pixels(free, mask) > 200
    guarded = inpaint(image, mask, settings, protect=protect)
    assert _colour_pixels(guarded.image, mask) == 0
    assert np.array_equal(guarded.image[mask == 0], image[mask == 0])


def test_protect_columns_observed_at_the_matmul():
    """Watch the residual columns handed to the backend: none carries the checkerboard."""
    from app.engine.backends.onnx import NumpyBackend

    class Recording(NumpyBackend):
        def __init__(self):
            self.seen = []

        def matmul(self, a, b):
            self.seen.append(b.copy())
            return super().matmul(a, b)

    image, mask, protect = _protect_case()
    settings = InpaintSettings(method="telea", coarse_size=128, chunk_columns=1 << 20)

    def max_colour_residual(backend):
        (b,) = backend.seen  # one chunk holds every column
        rgb = b.reshape(b.shape[0], -1, 3)
        return float(np.abs(rgb[:, :, 0] - rgb[:, :, 1]).max())

    free, guarded = Recording(), Recording()
    inpaint(image, mask, settings, backend=free)
    inpaint(image, mask, settings, protect=protect, backend=guarded)
    assert max_colour_residual(free) > 100  # the checkerboard's residual is +-120 in R - G
    assert max_colour_residual(guarded) < 1e-3
    assert guarded.seen[0].shape[0] < free.seen[0].shape[0]


def test_nearly_tied_rows_are_sharpened_until_the_best_source_dominates():
    """A smooth hole patch resembles many sources about equally; averaging them would
    cancel their texture, so its row is sharpened: best / 4th best >= e**peak."""
    from app.engine.cra import row_scales, softmax_rows

    rng = np.random.default_rng(3)
    tied = 0.9 + rng.uniform(0, 0.01, (5, 40)).astype(np.float32)  # spread 0.01
    spread = rng.uniform(-1, 1, (5, 40)).astype(np.float32)  # already distinct
    scores = np.vstack([tied, spread])
    weights = softmax_rows(scores, row_scales(scores, 10.0, 8.0))
    ordered = -np.sort(-weights, axis=1)
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(ordered[:5, 0] / ordered[:5, 3] >= np.exp(8.0) * 0.999)
    flat = softmax_rows(tied, 10.0)  # the base scale alone leaves them nearly uniform
    assert (-np.sort(-flat, axis=1))[:, 0].max() < 0.05
    # rows whose scores are already spread keep the base scale
    assert np.allclose(row_scales(spread, 10.0, 8.0)[:, 0], np.maximum(10.0, 8.0 / _top_gap(spread)))


def _top_gap(scores):
    top = -np.sort(-scores, axis=1)
    return top[:, 0] - top[:, 3]


def test_target_energy_comes_from_the_nearest_known_texture():
    """A hole across a flat/grainy border: each hole patch should carry the energy of the
    side it is nearest to, not the photo's average."""
    grid, p = 16, 8
    side = grid * p
    rng = np.random.default_rng(3)
    residual = np.zeros((side, side, 3), np.float32)
    residual[:, side // 2 :] = rng.normal(0, 10, (side, side // 2, 3))  # right half: energy 100
    valid = np.ones((side, side), bool)
    valid[4 * p : 12 * p, 2 * p : 14 * p] = False  # hole patches: rows 4-11, columns 2-13
    wanted = cra.target_energy(residual, valid, grid).reshape(grid, grid)
    assert wanted[0, 0] == 0 and 80 < wanted[0, grid - 1] < 120  # known patches keep their own
    assert np.all(wanted[4:12, 2:6] < 10)  # hole patches near the flat side
    assert np.all(wanted[4:12, 10:14] > 70)  # hole patches near the grainy side


def test_energy_bias_and_gains_match_the_detail_to_its_place():
    # a source of matching energy is not penalised; one 10x as strong (RMS) is, by ln(10) * w
    bias = cra.energy_bias(np.array([99.0, 9999.0]), np.array([99.0]), 0.5)
    assert bias[0, 0] == 0 and bias[0, 1] == pytest.approx(-0.5 * np.log(10), rel=1e-3)
    done = np.full((3, 12), 4.0, np.float32)  # carried energy 16 in each row
    gains = cra.energy_gains(done, np.array([0.0, 4.0, 64.0]), 1.0)
    assert gains.tolist() == pytest.approx([0.0, 0.5, 1.0])  # capped: never more than asked
