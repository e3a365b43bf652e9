"""Fixed-shape tiling of a matrix product (pure numpy; no device code).

An NPU single-op MatMul model has one fixed shape (tile_m x tile_k) @ (tile_k x tile_n).
`tiled_matmul` computes a @ b of any size with such a kernel: it cuts `a` into
tile_m x tile_k blocks and `b` into tile_k x tile_n blocks, zero-pads the last block of
every row/column (zeros contribute nothing to the sums), calls the kernel once per
(row block, inner block, column block) and sums the partial products over the inner
blocks in float32. The seed's 1024x1024 @ 1024x27648 product becomes 9 calls of
1024x1024 @ 1024x3072.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: the seed's chunk: attention rows x patch count, times patch count x 3072 residual columns
DEFAULT_TILE = (1024, 1024, 3072)
_FLOAT32_BYTES = 4


@dataclass(frozen=True)
class TileShape:
    m: int
    k: int
    n: int

    def __post_init__(self) -> None:
        if min(self.m, self.k, self.n) < 1:
            raise ValueError(f"tile dimensions must be positive, not {self.m}x{self.k}x{self.n}")

    @classmethod
    def parse(cls, text: str) -> TileShape:
        """'1024x3072' (rows=inner=1024, 3072 columns) or '1024x1024x3072' (m x k x n)."""
        try:
            parts = [int(p) for p in str(text).lower().replace(" ", "").split("x")]
        except ValueError:
            parts = []
        if len(parts) == 2:
            return cls(parts[0], parts[0], parts[1])
        if len(parts) == 3:
            return cls(*parts)
        raise ValueError(f"a chunk shape is 'MxN' or 'MxKxN' (e.g. 1024x3072), not {text!r}")

    @property
    def label(self) -> str:
        return f"{self.m}x{self.k}x{self.n}"

    def device_bytes(self, itemsize: int = _FLOAT32_BYTES) -> int:
        """Device memory for the two inputs and the output of one kernel call."""
        return (self.m * self.k + self.k * self.n + self.m * self.n) * itemsize

    def calls(self, m: int, k: int, n: int) -> int:
        """Kernel calls needed for an (m x k) @ (k x n) product."""
        return _blocks(m, self.m) * _blocks(k, self.k) * _blocks(n, self.n)


#: kernel(a_key, a_tile, b_tile) -> c_tile; a_key names the a block (row, inner) so a
#: kernel can skip re-uploading an a tile it already holds
Kernel = Callable[[tuple[int, int], np.ndarray, np.ndarray], np.ndarray]


def _blocks(size: int, tile: int) -> int:
    return max(1, -(-size // tile))


def _padded(block: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The block in a C-contiguous float32 array of exactly rows x cols, zero-filled."""
    if block.shape == (rows, cols):
        return np.ascontiguousarray(block, dtype=np.float32)
    out = np.zeros((rows, cols), np.float32)
    out[: block.shape[0], : block.shape[1]] = block
    return out


def tiled_matmul(a: np.ndarray, b: np.ndarray, tile: TileShape, kernel: Kernel) -> np.ndarray:
    """a @ b (float32) computed by a fixed-shape kernel over zero-padded tiles."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul needs (M x K) @ (K x N), got {a.shape} @ {b.shape}")
    m, k = a.shape
    n = b.shape[1]
    out = np.zeros((m, n), np.float32)
    if 0 in (m, k, n):
        return out
    # loop order row block -> inner block -> column block keeps one a tile resident
    for r0 in range(0, m, tile.m):
        r1 = min(r0 + tile.m, m)
        for k0 in range(0, k, tile.k):
            k1 = min(k0 + tile.k, k)
            a_tile = _padded(a[r0:r1, k0:k1], tile.m, tile.k)
            for c0 in range(0, n, tile.n):
                c1 = min(c0 + tile.n, n)
                b_tile = _padded(b[k0:k1, c0:c1], tile.k, tile.n)
                c_tile = np.asarray(kernel((r0, k0), a_tile, b_tile), dtype=np.float32)
                if c_tile.shape != (tile.m, tile.n):
                    raise ValueError(f"the matmul kernel returned {c_tile.shape}, expected {(tile.m, tile.n)}")
                out[r0:r1, c0:c1] += c_tile[: r1 - r0, : c1 - c0]
    return out


def choose_tile(candidates: list[TileShape], free_bytes: int | None, reserve: float = 0.1) -> TileShape | None:
    """The first candidate (in preference order) whose buffers fit in `free_bytes` minus a reserve.

    With no memory report (free_bytes None) the first candidate is taken.
    """
    if not candidates:
        return None
    if free_bytes is None:
        return candidates[0]
    budget = int(free_bytes * (1.0 - reserve))
    for cand in candidates:
        if cand.device_bytes() <= budget:
            return cand
    return None
