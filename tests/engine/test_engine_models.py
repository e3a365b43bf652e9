"""Model contracts: tiny ONNX generators (built in tests/conftest.py) drive the real
pipeline through onnxruntime, for the image-only and the HiFill contracts, NCHW and NHWC."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from app.engine import InpaintSettings, ModelError, inpaint
from app.engine.model_spec import load_spec
from app.engine.regions import find_regions

GRID = 32


def _photo(side: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)


def _square_mask(side: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((side, side), np.uint8)
    mask[y0:y1, x0:x1] = 255
    return mask


def _model_settings(path, **kw) -> InpaintSettings:
    return InpaintSettings(method="model", model_path=str(path), backend="cpu", **kw)


# ---------------------------------------------------------------- image-only contract


@pytest.mark.parametrize("fill", [77.0, "mean"])
def test_image_only_nchw_and_nhwc_exports_load_and_agree(tiny_model, fill):
    image = _photo(300)
    mask = _square_mask(300, 100, 180, 120, 200)
    images = []
    for layout in ("NCHW", "NHWC"):
        path = tiny_model(f"io_{layout}", layout=layout, size=64, fill=fill)
        result = inpaint(image, mask, _model_settings(path))
        assert result.method == f"model: io_{layout}"
        assert result.backend.endswith("(onnxruntime)")
        assert np.array_equal(result.image[mask == 0], image[mask == 0])
        images.append(result.image.astype(int))
    diff = np.abs(images[0] - images[1])
    if fill == "mean":
        # the mean is a float reduction whose order differs between layouts: last-bit noise
        assert diff.max() <= 1
    else:
        assert diff.max() == 0


def test_image_only_model_output_is_what_fills_the_hole(tiny_model):
    """Without CRA the hole is the model's fill: a constant-colour model gives that colour."""
    image = _photo(300)
    mask = _square_mask(300, 100, 180, 120, 200)
    path = tiny_model("const", size=64, fill=40.0)
    # no edge band either: near the edge it would take the photo's own pixels through Telea
    result = inpaint(image, mask, _model_settings(path, cra=False, feather_px=0, edge_band=0))
    inner = cv2.erode(mask, np.ones((9, 9), np.uint8)) > 0
    assert np.array_equal(np.unique(result.image[inner]), [40])
    # and a mean-colour model gives the mean colour of the known pixels (~127.5 for noise)
    path = tiny_model("mean", size=64, fill="mean")
    result = inpaint(image, mask, _model_settings(path, cra=False, feather_px=0, edge_band=0))
    assert np.all(np.abs(result.image[inner].astype(float) - 127.5) < 4)


def test_auto_method_uses_the_given_model(tiny_model):
    image = _photo(200)
    mask = _square_mask(200, 80, 120, 80, 120)
    path = tiny_model("picked", size=64)
    result = inpaint(image, mask, InpaintSettings(method="auto", model_path=str(path)))
    assert result.method == "model: picked"


# ---------------------------------------------------------------- hifill contract


def _residual(box: np.ndarray, size: int, detail: int) -> np.ndarray:
    """CRA's residual, computed here from its definition: the box minus its low-pass copy
    (down to the model's input size, then to the detail split size, back up)."""
    boxf = box.astype(np.float32)
    work = box.shape[0]
    low = cv2.resize(boxf, (size, size), interpolation=cv2.INTER_AREA)
    if detail != size:
        low = cv2.resize(low, (detail, detail), interpolation=cv2.INTER_AREA)
    return boxf - cv2.resize(low, (work, work), interpolation=cv2.INTER_LINEAR)


def _one_hot_attention(source: int) -> np.ndarray:
    att = np.zeros((GRID * GRID, GRID * GRID), np.float32)
    att[:, source] = 1.0
    return att


@pytest.fixture(scope="module")
def hifill_case():
    """A 1024 px noise photo with a 448 px hole: its box (576 px) is larger than the
    model's 512 input, so CRA runs; patches are 18 px."""
    side = 1024
    image = _photo(side, seed=3)
    mask = _square_mask(side, 288, 736, 288, 736)
    # the model's attention transplanted as it is (no energy matching)
    settings = {"context_fraction": 0.0, "context_min_px": 64, "feather_px": 0, "match_energy": False}
    (region,) = find_regions(mask > 0, 0.0, 64, GRID)
    return image, mask, settings, region


@pytest.mark.parametrize("detail", [512, 128])
def test_hifill_attention_transplants_the_chosen_patch(tiny_model, hifill_case, detail):
    image, mask, kw, region = hifill_case
    kw = kw | {"detail_size": detail}
    x0, y0, x1, y1 = region.box
    assert (x0, y0, region.side) == (224, 224, 576)
    p = region.side // GRID
    box = image[y0:y1, x0:x1]
    residual = _residual(box, 512, detail)
    # deep inside the hole the upsampled coarse fill is exactly the model's constant
    inner = (cv2.erode(mask, np.ones((33, 33), np.uint8)) > 0)[y0:y1, x0:x1]
    fill = 90.0

    def expected(source: int) -> np.ndarray:
        sy, sx = divmod(source, GRID)
        patch = residual[sy * p : (sy + 1) * p, sx * p : (sx + 1) * p]
        return np.clip(np.rint(fill + np.tile(patch, (GRID, GRID, 1))), 0, 255)

    results = {}
    for source in (1 * GRID + 1, 30 * GRID + 2):  # two patches far from the hole
        for layout in ("NHWC", "NCHW"):
            path = tiny_model(f"hf_{layout}_{source}_{detail}", contract="hifill", layout=layout, size=512, fill=fill,
                              attention=_one_hot_attention(source))
            result = inpaint(image, mask, _model_settings(path, **kw))
            assert np.array_equal(result.image[mask == 0], image[mask == 0])
            got = result.image[y0:y1, x0:x1].astype(float)
            err = np.abs(got - expected(source))[inner]
            assert err.max() <= 1, f"{layout}: hole pixels are not patch {source}'s residual (max err {err.max()})"
            results[(layout, source)] = result.image
    # both layouts give the same photo; the two sources give different fills
    for source in (33, 962):
        assert np.array_equal(results[("NHWC", source)], results[("NCHW", source)])
    assert not np.array_equal(results[("NHWC", 33)], results[("NHWC", 962)])


def test_hifill_attention_on_a_hole_patch_is_not_used(tiny_model, hifill_case):
    """An attention pointing into the hole (no detail there) is renormalised over the valid
    patches: the fill still gets texture, never the hole's own pixels."""
    image, mask, kw, region = hifill_case
    _x0, _y0, _x1, _y1 = region.box
    centre = (GRID // 2) * GRID + GRID // 2  # a patch inside the hole
    path = tiny_model("hf_bad", contract="hifill", layout="NHWC", size=512, fill=90.0,
                      attention=_one_hot_attention(centre))
    result = inpaint(image, mask, _model_settings(path, **kw))
    inner = cv2.erode(mask, np.ones((17, 17), np.uint8)) > 0
    hole_pixels = result.image[inner].astype(float)
    # the original hole content is random noise; the fill must not reproduce it
    assert np.mean(np.abs(hole_pixels - image[inner])) > 20
    # a uniform row over all valid patches averages residuals out: close to the flat fill
    assert abs(hole_pixels.mean() - 90.0) < 3


# ---------------------------------------------------------------- sidecar errors


def _raises_model_error(path, image=None, mask=None) -> str:
    image = _photo(160) if image is None else image
    mask = _square_mask(160, 60, 100, 60, 100) if mask is None else mask
    with pytest.raises(ModelError) as info:
        inpaint(image, mask, _model_settings(path))
    return str(info.value)


def test_missing_model_file(tmp_path):
    message = _raises_model_error(tmp_path / "absent.onnx")
    assert "Model file not found" in message and "absent.onnx" in message


def test_missing_sidecar(tiny_model):
    path = tiny_model("nosidecar", write_sidecar=False)
    message = _raises_model_error(path)
    assert "nosidecar.json" in message and "sidecar" in message and "contract" in message


def test_sidecar_invalid_json(tiny_model):
    path = tiny_model("badjson")
    path.with_suffix(".json").write_text('{"contract": "hifill",', encoding="utf-8")
    message = _raises_model_error(path)
    assert "badjson.json" in message and "not valid JSON" in message


def test_sidecar_not_an_object(tiny_model):
    path = tiny_model("list")
    path.with_suffix(".json").write_text("[1, 2]", encoding="utf-8")
    assert "JSON object" in _raises_model_error(path)


def test_sidecar_unknown_contract(tiny_model):
    path = tiny_model("contract", sidecar={"contract": "lama-v9"})
    message = _raises_model_error(path)
    assert "unknown contract 'lama-v9'" in message and "hifill" in message and "image-only" in message


@pytest.mark.parametrize(
    "override, words",
    [
        ({"layout": "NWHC"}, "unknown layout"),
        ({"input_size": 100}, "input_size"),
        ({"image_range": [1, 0]}, "image_range"),
    ],
)
def test_sidecar_bad_fields(tiny_model, override, words):
    path = tiny_model("fields", sidecar=override)
    assert words in _raises_model_error(path)


@pytest.mark.parametrize(
    "override, missing",
    [
        ({"outputs": {"image": "result"}}, "'result'"),
        ({"inputs": {"image": "img"}}, "'img'"),
    ],
)
def test_sidecar_names_a_tensor_the_model_lacks(tiny_model, override, missing):
    path = tiny_model("names", sidecar=override)
    message = _raises_model_error(path)
    assert "does not match its sidecar" in message and missing in message
    # the message lists what the model does have, so the user can fix the sidecar
    assert "inpainted" in message


def test_hifill_sidecar_on_a_model_without_attention(tiny_model):
    path = tiny_model("noatt", contract="image-only", sidecar={"contract": "hifill"})
    message = _raises_model_error(path)
    assert "'attention'" in message


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"this is not a protobuf")
    path.with_suffix(".json").write_text(json.dumps({"contract": "image-only"}), encoding="utf-8")
    message = _raises_model_error(path)
    assert "Cannot load the model junk.onnx" in message


def test_sidecar_defaults_and_hifill_names(tiny_model):
    spec = load_spec(tiny_model("spec", contract="hifill", layout="NHWC", size=512, attention=np.eye(1024)))
    assert spec.contract == "hifill" and spec.layout == "NHWC" and spec.input_size == 512
    assert spec.outputs == {"image": "inpainted", "attention": "attention"}
    assert spec.display_name == "spec"
