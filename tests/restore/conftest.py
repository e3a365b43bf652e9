import os

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def smooth_photo(h=160, w=200, seed=0):
    """A clean, gently varying colour photo with a real edge (no thin structures)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([90 + 0.4 * xx, 110 + 0.3 * yy, 140 - 0.2 * xx + 0.1 * yy], axis=2)
    base[:, w // 2 :] += 40  # one strong real edge down the middle
    base += rng.normal(0, 1.0, base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


def off_line(mask: np.ndarray) -> np.ndarray:
    """Distance (px) of each set pixel of `mask` from the straight line fitted through them all
    (total least squares): how far a drawn line strays from straight."""
    ys, xs = np.nonzero(mask)
    pts = np.stack([xs, ys], axis=1).astype(np.float64)
    pts -= pts.mean(axis=0)
    normal = np.linalg.eigh(pts.T @ pts)[1][:, 0]  # the direction of least spread
    return np.abs(pts @ normal)


def mosaic_photo(h=240, w=320, cell=6, seed=0):
    """Patches of random colours around gray, the way a scene's many materials meet at its
    edges; with no cast the average colour difference across those edges is gray."""
    rng = np.random.default_rng(seed)
    colours = rng.uniform(60, 196, (h // cell + 1, w // cell + 1, 3)).astype(np.float32)
    img = np.repeat(np.repeat(colours, cell, axis=0), cell, axis=1)[:h, :w]
    return np.clip(img + rng.normal(0, 1.0, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def photo():
    return smooth_photo()
