"""Backend selection: `auto`, `cpu` or `npu`."""

from __future__ import annotations

from app.engine.backends.base import Backend
from app.engine.errors import BackendUnavailable
from app.engine.settings import BACKENDS


def select_backend(name: str = "auto") -> tuple[Backend, str]:
    """Return a backend and one line saying why it was chosen."""
    if name not in BACKENDS:
        raise BackendUnavailable(f"Unknown backend {name!r}; choose one of {', '.join(BACKENDS)}.")
    if name == "npu":
        raise BackendUnavailable(
            "No NPU backend is available: the Ascend backend is not part of this build. Use --backend cpu."
        )
    from app.engine.backends.onnx import OnnxBackend

    backend = OnnxBackend()
    if name == "auto":
        return backend, f"using {backend.name}: no Ascend NPU backend in this build"
    return backend, f"using {backend.name}"


__all__ = ["Backend", "select_backend"]
