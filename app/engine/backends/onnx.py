"""The onnxruntime backend: the generator on the CPU (CUDA when onnxruntime offers it),
the aggregation product in numpy."""

from __future__ import annotations

import numpy as np

from app.engine.backends.base import Backend
from app.engine.errors import BackendFailure, ModelError
from app.engine.model_spec import ModelSpec


def available_providers() -> list[str]:
    import onnxruntime as ort

    wanted = ("CUDAExecutionProvider", "CPUExecutionProvider")
    have = set(ort.get_available_providers())
    return [p for p in wanted if p in have] or ["CPUExecutionProvider"]


class OnnxBackend(Backend):
    def __init__(self, providers: list[str] | None = None, threads: int = 0) -> None:
        self._providers = providers or available_providers()
        self._threads = threads
        self._session = None
        self._spec: ModelSpec | None = None
        device = "cuda" if self._providers[0].startswith("CUDA") else "cpu"
        self.name = f"{device} (onnxruntime)"

    def load(self, spec: ModelSpec) -> None:
        if self._spec is not None and self._spec.path == spec.path:
            return
        import onnxruntime as ort

        options = ort.SessionOptions()
        if self._threads:
            options.intra_op_num_threads = self._threads
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(spec.path), options, providers=self._providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"Cannot load the model {spec.path.name}: {_first_line(exc)}") from exc
        names_in = {i.name for i in session.get_inputs()}
        names_out = {o.name for o in session.get_outputs()}
        missing = [n for n in spec.inputs.values() if n not in names_in]
        missing += [n for n in spec.outputs.values() if n not in names_out]
        if missing:
            raise ModelError(
                f"The model {spec.path.name} does not match its sidecar: no tensor named "
                + ", ".join(repr(m) for m in missing)
                + f" (inputs: {sorted(names_in)}, outputs: {sorted(names_out)})."
            )
        for tensor in session.get_inputs():
            fixed = [d for d in tensor.shape[1:] if isinstance(d, int) and d > 4]
            if fixed and any(d != spec.input_size for d in fixed):
                raise ModelError(
                    f"The model {spec.path.name} takes {tensor.name} of shape {tensor.shape}, but its sidecar "
                    f"says input_size {spec.input_size}."
                )
        self._session, self._spec = session, spec

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._session is None:
            raise BackendFailure("No model is loaded.")
        names = [o.name for o in self._session.get_outputs()]
        try:
            values = self._session.run(names, feeds)
        except Exception as exc:
            raise BackendFailure(f"The model failed to run: {_first_line(exc)}") from exc
        return dict(zip(names, values))

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.matmul(a, b)

    def close(self) -> None:
        self._session = None
        self._spec = None


class NumpyBackend(Backend):
    """Backend for the OpenCV coarse methods: no generator, only the product."""

    name = "cpu (numpy)"

    def load(self, spec: ModelSpec) -> None:
        raise ModelError("This backend runs no model.")

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise BackendFailure("This backend runs no model.")

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.matmul(a, b)

    def close(self) -> None:
        pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
