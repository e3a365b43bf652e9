"""Contextual residual aggregation (CRA), hole-aware.

The box around a hole is cut into grid x grid square patches. Only patches that touch
the hole need detail (the rows of the product) and only patches wholly outside it carry
usable detail (the columns), so instead of HiFill's full (grid^2 x grid^2) x (grid^2 x D)
product the engine computes attention[rows, cols] @ residual[cols] — in column chunks so
that a fixed-shape NPU matmul still applies and memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from app.engine.errors import Cancelled

MatMul = Callable[[np.ndarray, np.ndarray], np.ndarray]


def to_patches(image: np.ndarray, grid: int) -> np.ndarray:
    """(H, W, C) with H = W = grid * p  ->  (grid*grid, p*p*C), patches in row-major order."""
    side, _, channels = image.shape
    p = side // grid
    blocks = image.reshape(grid, p, grid, p, channels).transpose(0, 2, 1, 3, 4)
    return blocks.reshape(grid * grid, p * p * channels)


def from_patches(patches: np.ndarray, grid: int, channels: int = 3) -> np.ndarray:
    """Inverse of to_patches."""
    p = int(round((patches.shape[1] // channels) ** 0.5))
    blocks = patches.reshape(grid, grid, p, p, channels).transpose(0, 2, 1, 3, 4)
    return blocks.reshape(grid * p, grid * p, channels)


def _blocks(image: np.ndarray, grid: int) -> np.ndarray:
    """A (grid, grid, p, p, C) view of a square image: patch (i, j) without copying."""
    side, _, channels = image.shape
    p = side // grid
    return image.reshape(grid, p, grid, p, channels).transpose(0, 2, 1, 3, 4)


def gather_patches(image: np.ndarray, grid: int, index: np.ndarray) -> np.ndarray:
    """to_patches(image, grid)[index], copying only the patches asked for."""
    blocks = _blocks(image, grid)
    picked = blocks[index // grid, index % grid]
    return picked.reshape(len(index), -1)


def add_to_patches(image: np.ndarray, grid: int, index: np.ndarray, values: np.ndarray) -> None:
    """In place: patch index[k] of `image` += values[k] (a flattened patch)."""
    blocks = _blocks(image, grid)
    p, channels = blocks.shape[2], blocks.shape[4]
    for k, flat in zip(index, values):
        blocks[k // grid, k % grid] += flat.reshape(p, p, channels)


def patch_any(mask: np.ndarray, grid: int) -> np.ndarray:
    """For a boolean (side, side) map: which patches hold at least one True pixel (grid*grid,)."""
    side = mask.shape[0]
    p = side // grid
    return mask.reshape(grid, p, grid, p).any(axis=(1, 3)).reshape(-1)


def aggregate(
    attention: np.ndarray,
    residual: np.ndarray,
    matmul: MatMul = np.matmul,
    chunk_columns: int = 3072,
    on_chunk: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> np.ndarray:
    """attention (R x C) @ residual (C x D), computed over column chunks of the residual.

    on_chunk(k, n) is called after chunk k of n; cancel() is polled before each chunk.
    """
    rows, inner = attention.shape
    if residual.shape[0] != inner:
        raise ValueError(f"attention has {inner} columns but residual has {residual.shape[0]} rows")
    width = residual.shape[1]
    chunk_columns = max(1, int(chunk_columns))
    n_chunks = max(1, -(-width // chunk_columns))
    out = np.empty((rows, width), np.float32)
    attention = np.ascontiguousarray(attention, np.float32)
    for k in range(n_chunks):
        if cancel is not None and cancel():
            raise Cancelled("Cancelled during aggregation.")
        lo, hi = k * chunk_columns, min(width, (k + 1) * chunk_columns)
        out[:, lo:hi] = matmul(attention, np.ascontiguousarray(residual[:, lo:hi], np.float32))
        if on_chunk is not None:
            on_chunk(k + 1, n_chunks)
    return out


def softmax_rows(scores: np.ndarray, scale: float | np.ndarray) -> np.ndarray:
    """Row-wise softmax of scores * scale (scale: a number or one per row)."""
    z = scores * (np.float32(scale) if np.isscalar(scale) else scale)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def patch_descriptors(coarse: np.ndarray, grid: int) -> np.ndarray:
    """Features for matching patches of the coarse fill: each patch's own 4x4 layout of
    colour plus the mean colours of its 3x3 patch neighbourhood (context, as HiFill's
    3x3 feature patches), all centred so the cosine compares structure, not brightness."""
    fine = cv2.resize(coarse, (grid * 4, grid * 4), interpolation=cv2.INTER_AREA).astype(np.float32)
    own = to_patches(fine, grid)  # grid^2 x 48
    means = cv2.resize(coarse, (grid, grid), interpolation=cv2.INTER_AREA).astype(np.float32)
    padded = cv2.copyMakeBorder(means, 1, 1, 1, 1, cv2.BORDER_REFLECT)
    neigh = [padded[dy : dy + grid, dx : dx + grid].reshape(grid * grid, -1) for dy in range(3) for dx in range(3)]
    feats = np.concatenate([own, *neigh], axis=1)
    return feats


def compute_attention(
    coarse: np.ndarray, grid: int, rows: np.ndarray, cols: np.ndarray, scale: float, peak: float = 0.0, rank: int = 4,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """Attention of hole patches (rows) over valid patches (cols): a softmax over the
    cosine similarity of patch descriptors, restricted to the valid columns.

    Each row's scale is at least `scale`, raised where the row's best candidates are
    nearly tied (a smooth coarse patch resembles many sources) so that the best source
    outweighs the `rank`-th best by at least e**peak: averaging many residuals cancels
    the texture they carry. `bias` (rows x cols) is added to the similarities."""
    feats = patch_descriptors(coarse, grid)
    feats = feats - feats[cols].mean(axis=0, keepdims=True)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True) + 1e-6
    scores = (feats[rows] @ feats[cols].T).astype(np.float32)
    if bias is not None:
        scores += bias
    return softmax_rows(scores, row_scales(scores, scale, peak, rank))


def row_scales(scores: np.ndarray, scale: float, peak: float, rank: int = 4) -> np.ndarray:
    """Per-row softmax scale: max(scale, peak / (best - rank-th best score))."""
    scales = np.full((scores.shape[0], 1), np.float32(scale))
    if peak <= 0 or scores.shape[1] < 2:
        return scales
    k = min(rank, scores.shape[1]) - 1
    top = -np.partition(-scores, (0, k), axis=1)
    gap = np.maximum(top[:, 0] - top[:, k], 1e-6)[:, None]
    return np.maximum(scales, np.float32(peak) / gap).astype(np.float32)


def attention_from_model(raw: np.ndarray, layout: str) -> np.ndarray:
    """HiFill attention output -> (grid^2 queries x grid^2 sources).

    NHWC exports give [1, g, g, g*g] (query at (i, j), weights last); NCHW exports give
    [1, g*g, g, g] (weights first)."""
    arr = np.asarray(raw, np.float32)
    if arr.ndim != 4:
        raise ValueError(f"attention output has shape {arr.shape}; expected 4 dimensions")
    if layout == "NHWC" and arr.shape[1] == arr.shape[2] and arr.shape[3] == arr.shape[1] ** 2:
        g = arr.shape[1]
        return arr.reshape(g * g, g * g)
    if arr.shape[2] == arr.shape[3] and arr.shape[1] == arr.shape[2] ** 2:
        g = arr.shape[2]
        return arr.reshape(g * g, g * g).T.copy()
    if arr.shape[1] == arr.shape[2] and arr.shape[3] == arr.shape[1] ** 2:
        g = arr.shape[1]
        return arr.reshape(g * g, g * g)
    raise ValueError(f"attention output has shape {arr.shape}; expected [1,g,g,g*g] or [1,g*g,g,g]")


def renormalise(attention: np.ndarray, rows: np.ndarray, cols: np.ndarray, scale: float | None = None) -> np.ndarray:
    """Take a full attention matrix to the (rows x cols) block and make each row sum to 1.
    With `scale`, the weights are sharpened first (a model's own attention may be too flat)."""
    block = attention[np.ix_(rows, cols)].astype(np.float32)
    if scale is not None:
        return softmax_rows(np.log(np.maximum(block, 1e-12)), scale)
    block = np.maximum(block, 0)
    sums = block.sum(axis=1, keepdims=True)
    empty = sums[:, 0] <= 1e-12
    block[empty] = 1.0
    sums[empty] = block.shape[1]
    return block / sums


def patch_energy(image: np.ndarray, weight: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Per patch: the weighted mean of the squared pixels (over channels) and the weight sum's
    share of the patch, both (grid, grid)."""
    side = image.shape[0]
    p = side // grid
    sq = np.einsum("ijc,ijc->ij", image, image) / image.shape[2] * weight
    num = sq.reshape(grid, p, grid, p).sum(axis=(1, 3))
    den = weight.astype(np.float32).reshape(grid, p, grid, p).sum(axis=(1, 3))
    return num / np.maximum(den, 1e-6), den / (p * p)


def target_energy(residual: np.ndarray, valid: np.ndarray, grid: int) -> np.ndarray:
    """Detail energy each patch should carry, (grid*grid,): the mean square of its own valid
    pixels where it has enough of them; inwards from there, ring by ring, the blend of its
    already known neighbours (the nearest texture wins, as across a hole's edge)."""
    energy, share = patch_energy(residual, valid, grid)
    found = share >= 0.25
    weight = np.where(found, 1.0, share).astype(np.float32)  # partly known patches count by their share
    target = np.where(share > 0, energy, 0).astype(np.float32)
    for _ in range(2 * grid):
        if found.all():
            break
        num = cv2.GaussianBlur(target * weight, (3, 3), 0, borderType=cv2.BORDER_REFLECT)
        den = cv2.GaussianBlur(weight, (3, 3), 0, borderType=cv2.BORDER_REFLECT)
        ok = ~found & (den > 1e-3)
        if not ok.any():
            break
        target[ok] = num[ok] / den[ok]
        weight[ok] = 1.0
        found |= ok
    return target.reshape(-1)


def energy_bias(source_energy: np.ndarray, wanted: np.ndarray, weight: float) -> np.ndarray:
    """(rows x cols) score penalty: weight x |ln of the RMS ratio| between what a source patch
    carries and what the hole patch should carry, so grain goes to grainy places."""
    log_src = 0.5 * np.log(np.asarray(source_energy, np.float32) + 1.0)
    log_want = 0.5 * np.log(np.asarray(wanted, np.float32) + 1.0)
    return (-np.float32(weight) * np.abs(log_want[:, None] - log_src[None, :])).astype(np.float32)


def energy_gains(done: np.ndarray, wanted: np.ndarray, most: float) -> np.ndarray:
    """Gain per hole patch (row of `done`) bringing its aggregated detail to the `wanted`
    mean-square energy, capped at `most`."""
    carried = np.einsum("rd,rd->r", done, done) / done.shape[1]
    return np.minimum(np.sqrt(wanted / np.maximum(carried, 1e-6)), most).astype(np.float32)
