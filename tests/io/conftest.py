"""Small projects for the project-file tests (32x24 so that thousands of fuzz cases stay fast)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.canvas.document import Document, InpaintOutcome, LayerKind
from app.engine.settings import InpaintSettings
from app.io.images import ImageMeta


def _exif_bytes() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"  # Make
    exif[0x0110] = "Model 1"
    exif[0x0112] = 1
    return exif.tobytes()


def _icc_bytes() -> bytes:
    try:
        from PIL import ImageCms

        return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    except (ImportError, OSError):
        return b"\x00\x00\x02\x0cfake-icc-profile" + bytes(range(64))


def make_doc(seed: int = 0, w: int = 32, h: int = 24, layers: int = 3, result: bool = True, alpha: bool = False) -> Document:
    rng = np.random.default_rng(seed)
    meta = ImageMeta(exif=_exif_bytes(), icc_profile=_icc_bytes(), source_format="WEBP", notes=["rotated upright"],
                     lossless_webp=seed % 2 == 0, dpi=(300.0, 240.0))
    if alpha:
        meta.alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
    settings = InpaintSettings(
        method="telea", model_path="models/custom.onnx", backend="cpu", context_fraction=0.5, context_min_px=17,
        coarse_size=256, cra=False, attention_grid=16, attention_scale=12.5, chunk_columns=1024,
        max_work_side=2048, feather_px=5, max_megapixels=50.0,
    )
    doc = Document(photo=rng.integers(0, 256, (h, w, 3), dtype=np.uint8), meta=meta, settings=settings)
    for i in range(layers):
        layer = doc.new_layer(f"layer {i} «ü»", LayerKind.PROTECT if i % 3 == 2 else LayerKind.FILL)
        layer.mask[:] = rng.integers(0, 256, (h, w), dtype=np.uint8)  # every value, not just 0/255
        layer.mask[: h // 3] = 0
        layer.visible = i % 2 == 0
        layer.locked = i == 1
        layer.opacity = [0.5, 1.0, 0.3, 0.77][i % 4]
        layer.color = (int(rng.integers(256)), int(rng.integers(256)), int(rng.integers(256)))
        doc.layers.append(layer)
    if result:
        doc.result = InpaintOutcome(
            rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "opencv telea", "cpu (onnxruntime)",
            mask=np.where(rng.random((h, w)) > 0.7, 255, 0).astype(np.uint8), notes=["1 region filled"],
        )
    return doc


@pytest.fixture
def doc() -> Document:
    return make_doc()
