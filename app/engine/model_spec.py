"""Model sidecars: a JSON file next to each model says how to feed it.

Two contracts exist (design.md):
- "hifill": inputs image + mask, outputs the inpainted image and a 32x32 patch
  attention matrix (HiFill exports, NHWC or NCHW);
- "image-only": inputs image + mask, output the inpainted image; the engine computes
  the attention itself from the coarse result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from app.engine.errors import ModelError

CONTRACTS = ("hifill", "image-only")
LAYOUTS = ("NCHW", "NHWC")

#: the model the product ships with (trained by tools/train_inpaint.py)
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "default.onnx"


@dataclass(frozen=True)
class ModelSpec:
    path: Path
    contract: str = "image-only"
    input_size: int = 512
    layout: str = "NCHW"
    inputs: dict = field(default_factory=lambda: {"image": "image", "mask": "mask"})
    outputs: dict = field(default_factory=lambda: {"image": "inpainted"})
    image_range: tuple[float, float] = (0.0, 255.0)
    mask_hole_value: float = 1.0
    name: str = ""

    @property
    def display_name(self) -> str:
        return self.name or self.path.stem


def sidecar_path(model_path: Path) -> Path:
    return model_path.with_suffix(".json")


def load_spec(model_path: str | Path) -> ModelSpec:
    """Read the sidecar of `model_path`; raise ModelError saying what is wrong."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelError(f"Model file not found: {model_path}")
    side = sidecar_path(model_path)
    if not side.is_file():
        raise ModelError(
            f"The model {model_path.name} has no sidecar {side.name} next to it; "
            "the sidecar says which contract (hifill or image-only) and input size the model uses."
        )
    try:
        raw = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"The sidecar {side.name} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelError(f"The sidecar {side.name} must hold a JSON object.")
    return spec_from_dict(model_path, raw, side.name)


def spec_from_dict(model_path: Path, raw: dict, source: str = "sidecar") -> ModelSpec:
    contract = raw.get("contract", "image-only")
    if contract not in CONTRACTS:
        raise ModelError(f"{source}: unknown contract {contract!r}; expected one of {', '.join(CONTRACTS)}.")
    layout = str(raw.get("layout", "NCHW")).upper()
    if layout not in LAYOUTS:
        raise ModelError(f"{source}: unknown layout {layout!r}; expected NCHW or NHWC.")
    size = raw.get("input_size", 512)
    if not isinstance(size, int) or size < 64 or size % 32:
        raise ModelError(f"{source}: input_size must be an integer multiple of 32 (at least 64), not {size!r}.")
    rng = raw.get("image_range", [0.0, 255.0])
    if not (isinstance(rng, (list, tuple)) and len(rng) == 2 and float(rng[1]) > float(rng[0])):
        raise ModelError(f"{source}: image_range must be [low, high], not {rng!r}.")
    inputs = {"image": "image", "mask": "mask"} | dict(raw.get("inputs", {}))
    default_outputs = {"image": "inpainted"}
    if contract == "hifill":
        default_outputs["attention"] = "attention"
    outputs = default_outputs | dict(raw.get("outputs", {}))
    return ModelSpec(
        path=model_path,
        contract=contract,
        input_size=size,
        layout=layout,
        inputs=inputs,
        outputs=outputs,
        image_range=(float(rng[0]), float(rng[1])),
        mask_hole_value=float(raw.get("mask_hole_value", 1.0)),
        name=str(raw.get("name", "")),
    )
