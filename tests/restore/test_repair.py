"""Each repair step does what it says on synthetic input."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from app.io.images import read_image
from app.restore import repair
from tests.restore.conftest import mosaic_photo, smooth_photo

ROCKET = Path(__file__).resolve().parents[2] / "resources" / "rocket.jpg"


def psnr(a, b):
    return 10 * np.log10(255.0**2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


def test_noise_estimate_tracks_added_noise():
    clean = smooth_photo()
    rng = np.random.default_rng(0)
    assert repair.estimate_noise(clean) < 2.0
    for sigma in (5.0, 10.0):
        noisy = np.clip(clean + rng.normal(0, sigma, clean.shape[:2])[..., None], 0, 255).astype(np.uint8)
        # luminance noise (the estimate is on luminance)
        assert abs(repair.estimate_noise(noisy) - sigma) < 0.25 * sigma


def test_denoise_auto_leaves_a_clean_photo_alone_and_cleans_a_noisy_one():
    clean = smooth_photo()
    assert np.array_equal(repair.denoise(clean), clean)
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 10, clean.shape[:2])[..., None], 0, 255).astype(np.uint8)
    out = repair.denoise(noisy)
    assert psnr(out, clean) > psnr(noisy, clean) + 3
    assert np.array_equal(repair.denoise(noisy, 0), noisy)


def test_auto_levels_stretches_each_channel():
    faded = (smooth_photo() * 0.5 + 60).astype(np.uint8)
    out = repair.auto_levels(faded, 0.5, 99.5)
    for c in range(3):
        assert np.percentile(out[:, :, c], 0.5) <= 2
        assert np.percentile(out[:, :, c], 99.5) >= 253


def colour_of(img):
    """Channel means relative to their mean: the photo's overall colour, brightness left out."""
    m = img.reshape(-1, 3).mean(axis=0)
    return m / m.mean()


def test_gray_world_removes_a_cast():
    photo = mosaic_photo()
    cast = np.clip(photo * np.array([1.25, 1.0, 0.75]), 0, 255).astype(np.uint8)
    out = repair.gray_world(cast)
    assert np.abs(colour_of(cast) - colour_of(photo)).max() > 0.2
    assert np.abs(colour_of(out) - colour_of(photo)).max() < 0.04
    assert np.array_equal(repair.gray_world(cast, 0.0), cast)


def test_balance_is_not_fooled_by_a_big_coloured_area():
    # two thirds of the photo is a smooth orange surface (a suit, a wall), the rest the
    # scene's many materials. Equal channel means (plain gray-world) would turn it blue;
    # the colour of the edges tells the cast.
    photo = mosaic_photo()
    photo[:, :213] = (220, 120, 50)
    cast = np.clip(photo * np.array([0.9, 1.0, 1.15]), 0, 255).astype(np.uint8)
    out = repair.gray_world(cast)
    assert np.ptp(colour_of(photo)) > 0.5  # what equal means would get wrong
    assert np.abs(colour_of(out) - colour_of(photo)).max() < 0.1  # a few of its edges are orange


def test_clahe_raises_local_contrast_and_keeps_hue():
    yy, xx = np.mgrid[0:128, 0:128]
    ripple = 120 + 6 * np.sin(xx / 3.0) * np.cos(yy / 5.0)  # faded, low-contrast detail
    low = np.clip(np.stack([ripple + 10, ripple, ripple - 15], axis=2), 0, 255).astype(np.uint8)
    out = repair.clahe_l(low, clip_limit=3.0)
    assert out.mean(axis=2).std() > low.mean(axis=2).std() * 1.5
    lab_in = cv2.cvtColor(low, cv2.COLOR_RGB2LAB).astype(int)
    lab_out = cv2.cvtColor(out, cv2.COLOR_RGB2LAB).astype(int)
    assert np.abs(lab_out[..., 1:] - lab_in[..., 1:]).mean() < 2


def test_sharpen_increases_edge_contrast_and_spares_flat_grain():
    img = np.full((40, 40, 3), 100, np.uint8)
    img[:, 20:] = 160
    out = repair.sharpen(img, amount=1.0, radius=1.5)
    assert out[20, 19, 0] < 100 and out[20, 20, 0] > 160  # overshoot both sides of the edge
    assert np.array_equal(out[:, :10], img[:, :10])  # flat areas untouched
    assert np.array_equal(repair.sharpen(img, amount=0), img)


def test_apply_repairs_runs_only_enabled_steps():
    photo = smooth_photo()
    assert np.array_equal(repair.apply_repairs(photo, repair.RepairSteps()), photo)
    seen = []
    repair.apply_repairs(photo, repair.RepairSteps(denoise=True, fade=True, sharpen=True), progress=seen.append)
    assert seen == ["denoise", "fade", "sharpen"]
    with pytest.raises(ValueError):
        repair.sharpen(photo[:, :, 0])


def test_gray_world_is_a_step_of_its_own():
    # a sepia print keeps its tone through fade repair unless gray-world is asked for
    photo = smooth_photo()
    sepia = np.clip(photo.mean(axis=2, keepdims=True) * np.array([1.15, 1.0, 0.75]), 0, 255).astype(np.uint8)

    def spread(img):
        m = img.reshape(-1, 3).mean(axis=0)
        return m.max() - m.min()

    seen = []
    faded = repair.apply_repairs(sepia, repair.RepairSteps(fade=True, levels=False), progress=seen.append)
    assert seen == ["fade"] and spread(faded) > 20
    seen.clear()
    balanced = repair.apply_repairs(sepia, repair.RepairSteps(balance=True), progress=seen.append)
    assert seen == ["balance"] and spread(balanced) < 3  # a gray picture: its edges are gray too
    assert np.array_equal(balanced, repair.gray_world(sepia))  # nothing else ran
    assert repair.RepairSteps(balance=True).any and not repair.RepairSteps().any


def test_balance_after_denoise_does_not_turn_a_noisy_print_green():
    # luminance-only denoising leaves chroma noise, least in green (L weighs it most); pooled
    # evenly over a mostly smooth photo's edges that noise passed for a magenta cast and the
    # balance turned the print green (the mean pooling's estimate for green fell 0.965 -> 0.60)
    rng = np.random.default_rng(3)
    warm = np.clip(smooth_photo() * np.array([1.12, 1.0, 0.88]), 0, 255)
    noisy = np.clip(warm + rng.normal(0, 6, warm.shape), 0, 255).astype(np.uint8)
    warm = warm.astype(np.uint8)
    assert np.abs(repair.cast_estimate(repair.denoise(noisy)) - repair.cast_estimate(warm)).max() < 0.02
    without_noise = repair.apply_repairs(warm, repair.RepairSteps(balance=True))
    after_denoise = repair.apply_repairs(noisy, repair.RepairSteps(denoise=True, balance=True))
    assert np.abs(colour_of(after_denoise) - colour_of(without_noise)).max() < 0.02


def test_auto_levels_after_denoise_does_not_tint_a_noisy_print():
    # green keeps the least noise after the luminance-only denoise; read from the raw pixels its
    # tails were the narrowest, it was stretched the most and a print came out magenta
    photo = read_image(ROCKET).rgb[::2, ::2]  # a dim night scene: its dark tail sits in the noise
    warm = np.clip(photo * np.array([1.1, 1.0, 0.9]), 0, 255)
    noisy = np.clip(warm + np.random.default_rng(3).normal(0, 6, warm.shape), 0, 255).astype(np.uint8)
    levelled = repair.auto_levels(warm.astype(np.uint8))
    after_denoise = repair.apply_repairs(noisy, repair.RepairSteps(denoise=True, fade=True, clahe=False))
    assert np.abs(colour_of(after_denoise) - colour_of(levelled)).max() < 0.03


@pytest.mark.parametrize("steps", [
    repair.RepairSteps(denoise=True, denoise_strength=10.0),
    repair.RepairSteps(fade=True),
    repair.RepairSteps(sharpen=True),
    repair.RepairSteps(denoise=True, denoise_strength=10.0, fade=True, balance=True, sharpen=True),
], ids=["denoise", "fade", "sharpen", "all"])
def test_a_gray_scan_stays_gray_through_every_step(steps):
    """Lab round trips left channels a level or two apart, and the scan was exported as colour:
    the result is the steps' own, its channels joined (within a level of each of them)."""
    rng = np.random.default_rng(2)
    level = cv2.GaussianBlur(rng.integers(30, 220, (96, 128)).astype(np.uint8), (0, 0), 3)
    level = np.clip(level + rng.normal(0, 6, level.shape), 0, 255).astype(np.uint8)
    gray = cv2.merge([level, level, level])
    out = repair.apply_repairs(gray, steps)
    assert np.array_equal(out[:, :, 0], out[:, :, 1]) and np.array_equal(out[:, :, 0], out[:, :, 2])
    assert np.abs(out.astype(int) - gray.astype(int)).mean() > 0.5  # repaired, not just copied
    if steps == repair.RepairSteps(fade=True):
        unjoined = repair.repair_fade(gray, balance=False)
        assert (unjoined[:, :, 0] != unjoined[:, :, 2]).any()  # what was wrong before
        assert np.abs(out.astype(int) - unjoined.astype(int)).max() <= 2
