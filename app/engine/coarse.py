"""The coarse stage: fills the hole of a small square copy of the box.

Either the generator model (through a backend) or OpenCV's classical inpainting, which
stands in where no model is present. Both return the filled small image (float32
0..255) and, for HiFill-contract models, the model's own patch attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from app.engine.backends.base import Backend
from app.engine.cra import attention_from_model
from app.engine.errors import ModelError
from app.engine.model_spec import ModelSpec


@dataclass
class CoarseOutput:
    image: np.ndarray  # float32 S x S x 3, 0..255
    attention: np.ndarray | None  # (g*g x g*g) or None


class OpenCVCoarse:
    #: OpenCV fills any size: a box smaller than `size` is filled as it is, not upsampled
    fixed_size = False

    def __init__(self, method: str, size: int = 512) -> None:
        self.flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[method]
        self.size = size
        self.label = f"opencv {method}"

    def run(self, small: np.ndarray, hole: np.ndarray) -> CoarseOutput:
        src = np.clip(small + 0.5, 0, 255).astype(np.uint8)
        radius = max(3, small.shape[0] // 128)
        filled = cv2.inpaint(src, hole.astype(np.uint8) * 255, radius, self.flag)
        return CoarseOutput(filled.astype(np.float32), None)


class ModelCoarse:
    fixed_size = True  # the model (and an NPU .om above all) takes one input size

    def __init__(self, backend: Backend, spec: ModelSpec) -> None:
        self.backend = backend
        self.spec = spec
        self.size = spec.input_size
        self.label = f"model: {spec.display_name}"
        backend.load(spec)

    def run(self, small: np.ndarray, hole: np.ndarray) -> CoarseOutput:
        spec = self.spec
        lo, hi = spec.image_range
        img = small * np.float32((hi - lo) / 255.0) + np.float32(lo)
        img[hole] = 0.0  # the hole's content is unknown to the model, as in training
        mask = hole.astype(np.float32) * np.float32(spec.mask_hole_value)
        if spec.layout == "NCHW":
            img_in = img.transpose(2, 0, 1)[None]
            mask_in = mask[None, None]
        else:
            img_in = img[None]
            mask_in = mask[None, :, :, None]
        outputs = self.backend.infer(
            {spec.inputs["image"]: np.ascontiguousarray(img_in), spec.inputs["mask"]: np.ascontiguousarray(mask_in)}
        )
        out = _as_hwc(outputs[spec.outputs["image"]], self.size, spec.path.name)
        out = (out - np.float32(lo)) * np.float32(255.0 / (hi - lo))
        attention = None
        if spec.contract == "hifill":
            try:
                attention = attention_from_model(outputs[spec.outputs["attention"]], spec.layout)
            except ValueError as exc:
                raise ModelError(f"{spec.path.name}: {exc}") from exc
        return CoarseOutput(np.clip(out, 0, 255).astype(np.float32), attention)


def _as_hwc(arr: np.ndarray, size: int, name: str) -> np.ndarray:
    """Accept [1,3,S,S] or [1,S,S,3] whatever the sidecar says: exports differ."""
    a = np.asarray(arr, np.float32)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[1:] == (size, size):
        return a.transpose(1, 2, 0)
    if a.ndim == 3 and a.shape == (size, size, 3):
        return a
    raise ModelError(f"{name}: image output has shape {np.asarray(arr).shape}; expected [1,3,{size},{size}] or [1,{size},{size},3].")
