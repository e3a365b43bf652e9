"""Backend selection: `auto`, `cpu` or `npu`."""

from __future__ import annotations

import importlib.util
import sys

from app.engine.backends.base import Backend
from app.engine.errors import BackendUnavailable
from app.engine.model_spec import ModelSpec
from app.engine.settings import BACKENDS


def select_backend(name: str = "auto", spec: ModelSpec | None = None, *, chunk: str | None = None
                   ) -> tuple[Backend, str]:
    """Return a backend and one line saying why it was chosen.

    `auto` on a machine without pyacl (no CANN toolkit) is the CPU at once, with nothing to
    explain. `npu` and `auto` try the Ascend NPU for `spec`: it is used only when pyacl imports, a
    device answers and both .om files (the generator and the MatMul chunk) load; `auto`
    otherwise falls back to the CPU, `npu` raises BackendUnavailable saying why. Call this
    on the thread that will run the jobs: an ACL context belongs to its thread."""
    if name not in BACKENDS:
        raise BackendUnavailable(f"Unknown backend {name!r}; choose one of {', '.join(BACKENDS)}.")
    from app.engine.backends.onnx import OnnxBackend

    why_not_npu = "no model to run on it"
    if name == "auto" and not npu_toolkit_installed():
        # a machine without Huawei's CANN toolkit: the CPU is the only choice, nothing to explain
        backend = OnnxBackend()
        return backend, f"using {backend.name}"
    if name in ("npu", "auto") and spec is not None:
        from app.engine.backends.ascend import DEFAULT_CHUNK, open_npu_backend

        try:
            npu = open_npu_backend(spec, chunk=chunk or DEFAULT_CHUNK)
        except BackendUnavailable as exc:
            if name == "npu":
                raise BackendUnavailable(f"The NPU backend cannot run: {exc}") from None
            why_not_npu = str(exc)
        else:
            return npu, f"using {npu.name}: {spec.path.stem}.om with {npu.tile.label} MatMul chunks"
    if name == "npu":
        raise BackendUnavailable("The NPU backend runs a model; the OpenCV methods run on the CPU (--backend cpu).")
    backend = OnnxBackend()
    if name == "auto":
        return backend, f"using {backend.name}: NPU not used ({why_not_npu})"
    return backend, f"using {backend.name}"


def npu_toolkit_installed() -> bool:
    """Whether pyacl (CANN's Python API) can be imported, without importing it."""
    if "acl" in sys.modules:
        return sys.modules["acl"] is not None  # imported already, or blocked (tests)
    try:
        return importlib.util.find_spec("acl") is not None
    except (ImportError, ValueError):
        return False


__all__ = ["Backend", "select_backend"]
