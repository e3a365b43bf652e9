"""Texture is carried into the hole: CRA brings the photo's own high frequencies in, which
the coarse fill (OpenCV Telea here) cannot. Measured as the variance of the Laplacian
inside the hole against the same measure on the untouched photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.engine import InpaintSettings, inpaint

SIDE = 1200


def _noise() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)


def _brick() -> np.ndarray:
    """Running-bond bricks (20 px courses, 40 px bricks, 3 px mortar) with grain."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    mortar = (yy % 20 < 3) | ((xx + ((yy // 20) % 2) * 20) % 40 < 3)
    tone = np.where(mortar, 60, 180).astype(np.float32)
    gray = tone + rng.normal(0, 20, (SIDE, SIDE)).astype(np.float32)
    return np.clip(np.repeat(gray[:, :, None], 3, axis=2), 0, 255).astype(np.uint8)


def _laplacian_energy(image: np.ndarray, where: tuple[slice, slice]) -> float:
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(gray, cv2.CV_64F)[where].var())


@pytest.fixture(scope="module", params=["noise", "brick"])
def texture(request):
    return request.param, {"noise": _noise, "brick": _brick}[request.param]()


@pytest.mark.parametrize("hole", [150, 300])
def test_high_frequencies_are_carried_into_the_hole(texture, hole):
    name, image = texture
    a = SIDE // 2 - hole // 2
    mask = np.zeros((SIDE, SIDE), np.uint8)
    mask[a : a + hole, a : a + hole] = 255
    inside = np.s_[a + 5 : a + hole - 5, a + 5 : a + hole - 5]  # clear of the feathered seam
    outside = _laplacian_energy(image, np.s_[50:350, 50:350])
    settings = InpaintSettings(method="telea", backend="cpu")

    with_cra = inpaint(image, mask, settings)
    without = inpaint(image, mask, settings.with_(cra=False))
    for result in (with_cra, without):
        assert np.array_equal(result.image[mask == 0], image[mask == 0])
    ratio = _laplacian_energy(with_cra.image, inside) / outside
    ratio_plain = _laplacian_energy(without.image, inside) / outside
    assert ratio >= 0.5, f"{name}, {hole} px hole: only {ratio:.2f} of the photo's detail energy in the fill"
    assert ratio <= 1.5, f"{name}: the fill is {ratio:.2f}x as busy as the photo (residuals added twice?)"
    assert ratio_plain < 0.1 * ratio, f"{name}: without CRA {ratio_plain:.3f} vs {ratio:.3f} with it"


def test_the_fill_is_not_a_copy_of_one_place():
    """Peaked attention still picks per patch: the fill is not one source patch repeated."""
    image = _brick()
    hole = 150
    a = SIDE // 2 - hole // 2
    mask = np.zeros((SIDE, SIDE), np.uint8)
    mask[a : a + hole, a : a + hole] = 255
    out = inpaint(image, mask, InpaintSettings(method="telea", backend="cpu")).image.astype(np.float32)
    block = out[a + 10 : a + 70, a + 10 : a + 70]
    other = out[a + 75 : a + 135, a + 75 : a + 135]
    assert np.mean(np.abs(block - other)) > 5


def test_detail_follows_the_local_texture_not_the_whole_photo():
    """Half flat, half grainy: a hole across the border gets grain only on the grainy side.
    The coarse fill is smooth on both sides, so the attention alone cannot tell them apart;
    matching the carried detail's energy to the photo around each patch does."""
    rng = np.random.default_rng(5)
    image = np.full((SIDE, SIDE, 3), 128, np.uint8)
    image[:, SIDE // 2 :] = np.clip(128 + rng.normal(0, 30, (SIDE, SIDE // 2, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((SIDE, SIDE), np.uint8)
    a, hole = SIDE // 2 - 150, 300
    mask[a : a + hole, a : a + hole] = 255
    flat_part = np.s_[a + 10 : a + hole - 10, a + 10 : SIDE // 2 - 25]  # a patch (19 px) off the border
    grain_part = np.s_[a + 10 : a + hole - 10, SIDE // 2 + 25 : a + hole - 10]
    outside = _laplacian_energy(image, np.s_[50:350, SIDE - 350 : SIDE - 50])
    out = inpaint(image, mask, InpaintSettings(method="telea", backend="cpu")).image
    assert np.array_equal(out[mask == 0], image[mask == 0])
    assert _laplacian_energy(out, flat_part) < 0.02 * outside
    assert _laplacian_energy(out, grain_part) > 0.5 * outside


def test_a_texture_with_nothing_to_do_says_so():
    """A small hole in a small photo is filled by the model at full resolution: Texture has no
    detail to carry in (QA: texture 0, 1 and 2 gave the same file, without a word)."""
    photo = _brick()[:200, :200].copy()
    hole = np.zeros(photo.shape[:2], bool)
    hole[80:120, 80:120] = True
    plain = inpaint(photo, hole, InpaintSettings())  # the bundled model: its input is 384 px
    smooth = inpaint(photo, hole, InpaintSettings(texture=0.0))
    assert np.array_equal(plain.image, smooth.image)
    assert any("Texture made no difference" in note for note in smooth.notes)
    assert not any("Texture" in note for note in plain.notes)  # the default: nothing was asked of it
    big = _brick()
    hole = np.zeros(big.shape[:2], bool)
    hole[500:700, 500:700] = True
    assert not any("Texture" in note for note in inpaint(big, hole, InpaintSettings(texture=0.0)).notes)
