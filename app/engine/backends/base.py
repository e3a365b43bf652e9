"""The one backend protocol every engine backend implements.

A backend owns the device resources for one engine thread: it loads the generator
model described by a ModelSpec, runs it, and multiplies matrices for the residual
aggregation. Pre- and post-processing stay in the pipeline, so backends stay small.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from app.engine.model_spec import ModelSpec


@runtime_checkable
class Backend(Protocol):
    #: short name shown to the user, e.g. "cpu (onnxruntime)" or "npu (Ascend)"
    name: str

    def load(self, spec: ModelSpec) -> None:
        """Load the generator (no-op if this spec is already loaded)."""

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the loaded generator; feeds and outputs are keyed by tensor name."""

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Return a @ b for float32 2-D arrays (a: MxK, b: KxN)."""

    def close(self) -> None:
        """Release every resource; the backend is unusable afterwards."""
