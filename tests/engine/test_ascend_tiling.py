"""The fixed-shape chunked matmul (pure numpy): chunked == unchunked, padded tiles, tile choice."""

import numpy as np
import pytest

from app.engine.backends.tiling import TileShape, choose_tile, tiled_matmul


def recording_kernel(calls):
    def kernel(a_key, a_tile, b_tile):
        calls.append((a_key, a_tile.copy(), b_tile.copy()))
        return a_tile @ b_tile

    return kernel


@pytest.mark.parametrize("shape", [(1, 1, 1), (8, 8, 12), (9, 17, 25), (40, 7, 100), (16, 33, 11)])
def test_chunked_equals_unchunked(shape):
    m, k, n = shape
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    calls = []
    got = tiled_matmul(a, b, TileShape(8, 8, 12), recording_kernel(calls))
    np.testing.assert_allclose(got, a @ b, rtol=1e-5, atol=1e-5)
    assert got.shape == (m, n) and got.dtype == np.float32
    assert len(calls) == TileShape(8, 8, 12).calls(m, k, n)
    # every call gets exactly the fixed shape: the kernel never sees a ragged tile
    assert all(c[1].shape == (8, 8) and c[2].shape == (8, 12) for c in calls)


def test_seed_shape_is_nine_column_chunks():
    tile = TileShape.parse("1024x3072")
    assert (tile.m, tile.k, tile.n) == (1024, 1024, 3072)
    assert tile.calls(1024, 1024, 27648) == 9
    assert tile.device_bytes() == (1024 * 1024 + 2 * 1024 * 3072) * 4


def test_last_chunk_is_zero_padded():
    a = np.ones((5, 3), np.float32)
    b = np.full((3, 7), 2.0, np.float32)
    calls = []
    tiled_matmul(a, b, TileShape(4, 4, 4), recording_kernel(calls))
    key, a_tile, b_tile = calls[-1]  # rows 4..5, cols 4..7
    assert key == (4, 0)
    assert a_tile[:1, :3].min() == 1 and not a_tile[1:].any() and not a_tile[:, 3:].any()
    assert b_tile[:3, :3].min() == 2 and not b_tile[3:].any() and not b_tile[:, 3:].any()


def test_partial_products_sum_over_inner_tiles():
    # K = 10 over inner tiles of 4: 3 partial products per output tile must add up
    a = np.arange(20, dtype=np.float32).reshape(2, 10)
    b = np.arange(30, dtype=np.float32).reshape(10, 3)
    calls = []
    got = tiled_matmul(a, b, TileShape(2, 4, 3), recording_kernel(calls))
    assert [c[0] for c in calls] == [(0, 0), (0, 4), (0, 8)]
    np.testing.assert_array_equal(got, a @ b)


def test_a_tile_is_keyed_for_reuse_across_columns():
    a = np.ones((4, 4), np.float32)
    b = np.ones((4, 12), np.float32)
    calls = []
    tiled_matmul(a, b, TileShape(4, 4, 4), recording_kernel(calls))
    assert [c[0] for c in calls] == [(0, 0)] * 3  # one a tile, three column chunks


def test_rejects_mismatched_shapes_and_bad_kernel():
    with pytest.raises(ValueError, match="matmul needs"):
        tiled_matmul(np.ones((2, 3)), np.ones((4, 2)), TileShape(2, 2, 2), lambda *x: None)
    with pytest.raises(ValueError, match="kernel returned"):
        tiled_matmul(np.ones((2, 2)), np.ones((2, 2)), TileShape(2, 2, 2), lambda k, a, b: np.ones((1, 1)))


def test_parse_rejects_nonsense():
    for text in ("1024", "ax3", "0x5", "1x2x3x4"):
        with pytest.raises(ValueError):
            TileShape.parse(text)


def test_choose_tile_fits_memory():
    big, small = TileShape(1024, 1024, 3072), TileShape(512, 512, 1536)
    assert choose_tile([big, small], None) == big
    assert choose_tile([big, small], 100 << 20) == big
    assert choose_tile([big, small], 20 << 20) == small  # big needs 28 MiB
    assert choose_tile([big, small], 1 << 20) is None
