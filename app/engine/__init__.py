"""The inpainting engine: pure Python + numpy (Qt only in worker.py)."""

from app.engine.errors import BackendFailure, BackendUnavailable, Cancelled, EngineError, InputError, ModelError
from app.engine.pipeline import InpaintResult, inpaint
from app.engine.settings import InpaintSettings

__all__ = [
    "BackendFailure",
    "BackendUnavailable",
    "Cancelled",
    "EngineError",
    "InpaintResult",
    "InpaintSettings",
    "InputError",
    "ModelError",
    "inpaint",
]
