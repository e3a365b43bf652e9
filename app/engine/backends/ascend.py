"""Ascend NPU backend through pyacl (`import acl`, from the CANN toolkit; not on PyPI).

Built to shared/docs/ascend-acl.md (section numbers below refer to it):
- acl.init runs once per process (§2, §3): a process-wide singleton per `acl` module;
  acl.finalize runs at interpreter exit, after every open backend has been closed.
- open(): device count, set_device, create_context, create_stream, get_run_mode, all on
  the calling thread, which then owns the backend (§7: a context is current per thread).
  The engine worker opens it on its own long-lived thread; other threads are refused.
- load(spec): the generator .om next to the ONNX (same stem, same JSON sidecar) and the
  fixed-shape MatMul chunk model (matmul_MxKxN.om, made by tools/atc) are loaded, their
  input/output descriptions queried and their device buffers allocated once (§2).
- infer(): memcpy in (kind from the run mode), execute, memcpy out, reshape (§2, §7).
- matmul(): a @ b over zero-padded fixed-shape chunks (tiling.py) on the MatMul model.
- close(): teardown in the documented order (§2).
Every ACL error becomes BackendUnavailable (while opening/loading) or BackendFailure
(while running) whose message names the call, the code and acl.get_recent_err_msg().
"""

from __future__ import annotations

import atexit
import re
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.engine.backends.tiling import DEFAULT_TILE, TileShape, choose_tile, tiled_matmul
from app.engine.errors import BackendFailure, BackendUnavailable
from app.engine.model_spec import ModelSpec

# §1 constants
ACL_SUCCESS = 0
ACL_MEM_MALLOC_NORMAL_ONLY = 2
ACL_MEMCPY_HOST_TO_DEVICE, ACL_MEMCPY_DEVICE_TO_HOST, ACL_MEMCPY_DEVICE_TO_DEVICE = 1, 2, 3
ACL_DEVICE, ACL_HOST = 0, 1
ACL_DDR_MEM, ACL_HBM_MEM = 0, 1  # aclrtMemAttr for rt.get_mem_info (not in ascend-acl.md)
REPEAT_INITIALIZE = 100002
_ACL_DTYPES = {0: np.float32, 1: np.float16, 2: np.int8, 3: np.int32, 4: np.uint8, 9: np.int64}
_NPY_CODES = {np.dtype(np.float32): 11, np.dtype(np.float16): 23, np.dtype(np.int32): 5, np.dtype(np.uint8): 2}

#: §6: names for the codes a user is likely to meet
CODE_NAMES = {
    100000: "invalid parameter", 100001: "ACL not initialised", 100002: "ACL initialised twice",
    100003: "invalid model file", 100011: "invalid model id", 100012: "model cannot be deserialised",
    100013: "model cannot be parsed", 100014: "model cannot be read", 100017: "model input mismatch",
    100018: "model output mismatch", 100024: "op not found", 107000: "runtime parameter invalid",
    107001: "invalid device id", 107002: "no current context in this thread",
    107004: "model used in another context", 200000: "allocation failed", 207000: "feature not supported",
    207001: "device memory allocation failed", 207004: "no NPU device", 207018: "device out of memory",
    500000: "internal error", 507008: "SoC version mismatch", 507011: "model execution failed",
    507033: "device setup failed",
}

DEFAULT_CHUNK = "x".join(str(d) for d in DEFAULT_TILE)
_MATMUL_RE = re.compile(r"^matmul_(\d+)x(\d+)x(\d+)\.om$")


def matmul_om_name(tile: TileShape) -> str:
    """File name of the MatMul chunk model for a tile (tools/atc writes the same name)."""
    return f"matmul_{tile.m}x{tile.k}x{tile.n}.om"


def generator_om_path(spec: ModelSpec) -> Path:
    """The generator's .om: the spec's own path if it is one, else the same stem with .om."""
    path = Path(spec.path)
    return path if path.suffix.lower() == ".om" else path.with_suffix(".om")


def import_acl():
    """The pyacl module, or BackendUnavailable saying why it cannot be imported (§3)."""
    try:
        import acl
    except ImportError as exc:
        raise BackendUnavailable(
            f"pyacl is not available ({exc}); install the CANN toolkit and source its set_env.sh"
        ) from None
    return acl


def describe_error(acl, call: str, ret: int) -> str:
    """'NPU call acl.<call> failed with code N (name): <recent error message>'."""
    text = f"NPU call acl.{call} failed with code {ret}"
    if ret in CODE_NAMES:
        text += f" ({CODE_NAMES[ret]})"
    try:
        recent = acl.get_recent_err_msg()
    except Exception:  # noqa: BLE001 - the message is a courtesy; never mask the real error
        recent = None
    if recent:
        text += f": {str(recent).strip()}"
    return text


# --- the process-wide ACL state (§3) -------------------------------------------------------
class _AclProcess:
    """acl.init once per process; finalize once at exit after closing live backends."""

    def __init__(self, acl):
        self.acl = acl
        self.error: str | None = None
        self.backends: weakref.WeakSet = weakref.WeakSet()
        self.finalized = False
        ret = acl.init()
        if ret != ACL_SUCCESS:  # 100002 means someone else initialised it: not ours to share
            self.error = describe_error(acl, "init", ret)
        else:
            atexit.register(self.finalize)

    def finalize(self) -> None:
        if self.finalized or self.error:
            return
        for backend in list(self.backends):
            backend.close()
        self.acl.finalize()
        self.finalized = True


_PROCESS: dict[int, _AclProcess] = {}
_PROCESS_LOCK = threading.Lock()


def acl_process(acl) -> _AclProcess:
    """The one initialised ACL state for this `acl` module; BackendUnavailable if init failed."""
    with _PROCESS_LOCK:
        proc = _PROCESS.get(id(acl))
        if proc is None or proc.acl is not acl:
            proc = _PROCESS[id(acl)] = _AclProcess(acl)
    if proc.error:
        raise BackendUnavailable(proc.error)
    if proc.finalized:
        raise BackendUnavailable("ACL was already finalised in this process")
    return proc


# --- one loaded .om model with its buffers (§2) ---------------------------------------------
@dataclass
class _Tensor:
    name: str
    dims: list[int]
    dtype: np.dtype
    size: int
    device: int = 0  # device buffer
    buffer: int = 0  # data buffer handle
    host: int = 0  # pinned host buffer for read-back (outputs)


class _OmModel:
    """A loaded offline model: description, datasets and device buffers, reused per call."""

    def __init__(self, backend: AscendBackend, path: Path):
        self.b = backend
        self.acl = backend._acl
        self.path = path
        self.model_id: int | None = None
        self.desc: int | None = None
        self.inputs: list[_Tensor] = []
        self.outputs: list[_Tensor] = []
        self.in_ds: int | None = None
        self.out_ds: int | None = None

    @classmethod
    def load(cls, backend: AscendBackend, path: Path) -> _OmModel:
        model = cls(backend, path)
        try:
            model._load()
        except (BackendFailure, BackendUnavailable) as exc:
            backend.teardown_errors += model.release()
            raise BackendUnavailable(f"cannot load {path.name} on the NPU: {exc}") from None
        return model

    def _check(self, call: str, ret: int) -> None:
        self.b._check(call, ret)

    def _load(self) -> None:
        acl = self.acl
        self.model_id, ret = acl.mdl.load_from_file(str(self.path))
        if ret != ACL_SUCCESS:
            self.model_id = None
        self._check("mdl.load_from_file", ret)
        self.desc = acl.mdl.create_desc()
        self._check("mdl.get_desc", acl.mdl.get_desc(self.desc, self.model_id))
        self.in_ds = acl.mdl.create_dataset()
        for i in range(acl.mdl.get_num_inputs(self.desc)):
            size = acl.mdl.get_input_size_by_index(self.desc, i)
            dims, ret = acl.mdl.get_input_dims(self.desc, i)
            self._check("mdl.get_input_dims", ret)
            tensor = self._tensor(dims, size, None)
            self._attach(self.in_ds, tensor)
            self.inputs.append(tensor)
        self.out_ds = acl.mdl.create_dataset()
        for i in range(acl.mdl.get_num_outputs(self.desc)):
            size = acl.mdl.get_output_size_by_index(self.desc, i)
            dims, ret = acl.mdl.get_output_dims(self.desc, i)
            self._check("mdl.get_output_dims", ret)
            tensor = self._tensor(dims, size, acl.mdl.get_output_data_type(self.desc, i))
            self._attach(self.out_ds, tensor)
            self.outputs.append(tensor)
            tensor.host, ret = acl.rt.malloc_host(size)
            if ret != ACL_SUCCESS:
                tensor.host = 0
            self._check("rt.malloc_host", ret)

    def _tensor(self, dims: dict, size: int, acl_type: int | None) -> _Tensor:
        shape = [int(d) for d in dims["dims"]]
        name = str(dims.get("name", ""))
        if any(d < 0 for d in shape):
            raise BackendFailure(f"{self.path.name}: tensor {name} has a dynamic shape {shape}; "
                                 "convert with a fixed --input_shape")
        count = int(np.prod(shape)) if shape else 1
        if acl_type is not None and acl_type in _ACL_DTYPES:
            dtype = np.dtype(_ACL_DTYPES[acl_type])
        else:  # inputs: the description gives bytes and dims; the element size follows
            dtype = np.dtype(np.float16 if size == 2 * count else np.float32)
        if count * dtype.itemsize != size:
            raise BackendFailure(f"{self.path.name}: tensor {name} is {size} bytes, which does not match "
                                 f"{shape} of {dtype.name}")
        return _Tensor(name, shape, dtype, size)

    def _attach(self, dataset: int, tensor: _Tensor) -> None:
        acl = self.acl
        tensor.device, ret = acl.rt.malloc(tensor.size, ACL_MEM_MALLOC_NORMAL_ONLY)
        if ret != ACL_SUCCESS:
            tensor.device = 0
        self._check("rt.malloc", ret)
        tensor.buffer = acl.create_data_buffer(tensor.device, tensor.size)
        _, ret = acl.mdl.add_dataset_buffer(dataset, tensor.buffer)
        self._check("mdl.add_dataset_buffer", ret)

    # --- running ------------------------------------------------------------------------
    def upload(self, index: int, array: np.ndarray) -> None:
        tensor = self.inputs[index]
        array = np.ascontiguousarray(array, dtype=tensor.dtype)
        if array.size * array.itemsize != tensor.size:
            raise BackendFailure(f"{self.path.name}: input {tensor.name} got shape {list(array.shape)}, "
                                 f"the NPU model takes {tensor.dims}")
        acl = self.acl
        if "bytes_to_ptr" in dir(acl.util):
            keep = array.tobytes()
            ptr = acl.util.bytes_to_ptr(keep)
        else:
            keep = array
            ptr = acl.util.numpy_to_ptr(array)
        ret = acl.rt.memcpy(tensor.device, tensor.size, ptr, tensor.size, self.b._kind_in)
        del keep
        self._check("rt.memcpy", ret)

    def execute(self) -> None:
        self._check("mdl.execute", self.acl.mdl.execute(self.model_id, self.in_ds, self.out_ds))

    def read(self, index: int) -> np.ndarray:
        acl = self.acl
        tensor = self.outputs[index]
        buf = acl.mdl.get_dataset_buffer(self.out_ds, index)
        addr = acl.get_data_buffer_addr(buf)
        size_of = getattr(acl, "get_data_buffer_size_v2", None) or acl.get_data_buffer_size
        size = min(size_of(buf), tensor.size)
        self._check("rt.memcpy", acl.rt.memcpy(tensor.host, tensor.size, addr, size, self.b._kind_out))
        if "ptr_to_bytes" in dir(acl.util):
            data = np.frombuffer(acl.util.ptr_to_bytes(tensor.host, size), tensor.dtype)
        else:
            data = np.array(acl.util.ptr_to_numpy(tensor.host, (size // tensor.dtype.itemsize,),
                                                  _NPY_CODES[tensor.dtype]), copy=True)
        return data.reshape(tensor.dims).astype(np.float32)

    # --- teardown (§2 order) -------------------------------------------------------------------
    def release(self) -> list[str]:
        acl, errors = self.acl, []

        def step(call: str, ret) -> None:
            if isinstance(ret, int) and ret != ACL_SUCCESS:
                errors.append(describe_error(acl, call, ret))

        for dataset, tensors in ((self.in_ds, self.inputs), (self.out_ds, self.outputs)):
            for tensor in tensors:
                if tensor.buffer:
                    step("destroy_data_buffer", acl.destroy_data_buffer(tensor.buffer))
                if tensor.device:
                    step("rt.free", acl.rt.free(tensor.device))
                tensor.buffer = tensor.device = 0
            if dataset is not None:
                step("mdl.destroy_dataset", acl.mdl.destroy_dataset(dataset))
        self.in_ds = self.out_ds = None
        if self.model_id is not None:
            step("mdl.unload", acl.mdl.unload(self.model_id))
            self.model_id = None
        if self.desc is not None:
            step("mdl.destroy_desc", acl.mdl.destroy_desc(self.desc))
            self.desc = None
        for tensor in self.outputs:
            if tensor.host:
                step("rt.free_host", acl.rt.free_host(tensor.host))
                tensor.host = 0
        return errors


# --- the backend ---------------------------------------------------------------------------------
class AscendBackend:
    """The Backend protocol on an Ascend NPU (see the module docstring)."""

    name = "npu (Ascend)"

    def __init__(self, device_id: int = 0, chunk: str | TileShape = DEFAULT_CHUNK,
                 matmul_dir: str | Path | None = None, acl=None):
        self.device_id = device_id
        self.preferred_tile = chunk if isinstance(chunk, TileShape) else TileShape.parse(chunk)
        self.matmul_dir = Path(matmul_dir) if matmul_dir else None
        self.tile: TileShape | None = None  # the chunk shape in use once loaded
        self.run_mode: int | None = None
        self.teardown_errors: list[str] = []
        self._acl = acl
        self._proc: _AclProcess | None = None
        self._owner: int | None = None
        self._device_set = False
        self._ctx: int | None = None
        self._stream: int | None = None
        self._generator: _OmModel | None = None
        self._generator_path: Path | None = None
        self._matmul: _OmModel | None = None
        self._closed = False
        self._opening = False

    # --- errors and threads -----------------------------------------------------------------
    def _check(self, call: str, ret: int) -> None:
        if ret != ACL_SUCCESS:
            raise (BackendUnavailable if self._opening else BackendFailure)(describe_error(self._acl, call, ret))

    def _check_thread(self) -> None:
        if self._closed:
            raise BackendFailure("the NPU backend was closed")
        if self._owner is not None and threading.get_ident() != self._owner:
            raise BackendFailure(
                "the NPU backend belongs to the engine thread that opened it (an ACL context is per "
                f"thread); it was called from thread {threading.current_thread().name}"
            )

    @property
    def owner_thread(self) -> int | None:
        return self._owner

    @property
    def _kind_in(self) -> int:
        return ACL_MEMCPY_HOST_TO_DEVICE if self.run_mode == ACL_HOST else ACL_MEMCPY_DEVICE_TO_DEVICE

    @property
    def _kind_out(self) -> int:
        return ACL_MEMCPY_DEVICE_TO_HOST if self.run_mode == ACL_HOST else ACL_MEMCPY_DEVICE_TO_DEVICE

    # --- opening --------------------------------------------------------------------------------
    def open(self) -> None:
        """Claim the device on this thread (idempotent); BackendUnavailable when there is no NPU."""
        self._check_thread()
        if self._ctx is not None:
            return
        if self._acl is None:
            self._acl = import_acl()
        acl = self._acl
        self._opening = True
        try:
            self._proc = acl_process(acl)
            count, ret = acl.rt.get_device_count()
            if ret != ACL_SUCCESS or count <= 0:
                raise BackendUnavailable(
                    "no NPU device answers: " + (describe_error(acl, "rt.get_device_count", ret) if ret else "0 devices")
                )
            if self.device_id >= count:
                raise BackendUnavailable(f"NPU device {self.device_id} does not exist ({count} found)")
            self._check("rt.set_device", acl.rt.set_device(self.device_id))
            self._device_set = True
            ctx, ret = acl.rt.create_context(self.device_id)
            self._check("rt.create_context", ret)
            self._ctx = ctx
            stream, ret = acl.rt.create_stream()
            self._check("rt.create_stream", ret)
            self._stream = stream
            mode, ret = acl.rt.get_run_mode()
            self._check("rt.get_run_mode", ret)
            self.run_mode = mode
            self._owner = threading.get_ident()
            self._proc.backends.add(self)
        except BackendUnavailable:
            self._release_device()
            raise
        finally:
            self._opening = False

    def device_memory(self) -> tuple[int, int] | None:
        """(free, total) bytes the device reports, or None when it cannot say."""
        get_mem_info = getattr(getattr(self._acl, "rt", None), "get_mem_info", None)
        if get_mem_info is None or self._ctx is None:
            return None
        for attr in (ACL_HBM_MEM, ACL_DDR_MEM):
            try:
                free, total, ret = get_mem_info(attr)
            except (TypeError, ValueError):
                return None
            if ret == ACL_SUCCESS and total > 0:
                return int(free), int(total)
        return None

    def load(self, spec: ModelSpec) -> None:
        """Load the generator .om for `spec` and the MatMul chunk model; BackendUnavailable if not possible."""
        self._check_thread()
        om = generator_om_path(spec)
        if self._generator is not None and self._generator_path == om:
            return
        if not om.is_file():
            raise BackendUnavailable(
                f"no NPU model {om.name} next to {Path(spec.path).name}; convert the ONNX with ATC "
                "(tools/atc/make_recipe.py, see models/README.md)"
            )
        self.open()
        self._opening = True
        try:
            if self._generator is not None:
                self.teardown_errors += self._generator.release()
                self._generator = None
            self._generator = _OmModel.load(self, om)
            self._generator_path = om
            if self._matmul is None:
                self._load_matmul(self.matmul_dir or om.parent)
        finally:
            self._opening = False

    def _matmul_candidates(self, folder: Path) -> list[TileShape]:
        found = []
        if folder.is_dir():
            for path in folder.iterdir():
                match = _MATMUL_RE.match(path.name)
                if match:
                    found.append(TileShape(*(int(g) for g in match.groups())))
        others = sorted((t for t in found if t != self.preferred_tile), key=lambda t: -t.device_bytes())
        return ([self.preferred_tile] if self.preferred_tile in found else []) + others

    def _load_matmul(self, folder: Path) -> None:
        candidates = self._matmul_candidates(folder)
        if not candidates:
            raise BackendUnavailable(
                f"no MatMul chunk model ({matmul_om_name(self.preferred_tile)}) in {folder.name}/; "
                "compile it with tools/atc (see models/README.md)"
            )
        memory = self.device_memory()
        tile = choose_tile(candidates, memory[0] if memory else None)
        if tile is None:
            smallest = min(candidates, key=TileShape.device_bytes)
            raise BackendUnavailable(
                f"the NPU reports {memory[0] / 2**20:.0f} MiB free; the smallest MatMul chunk model "
                f"({smallest.label}) needs {smallest.device_bytes() / 2**20:.0f} MiB"
            )
        model = _OmModel.load(self, folder / matmul_om_name(tile))
        shapes = [t.dims for t in model.inputs] + [t.dims for t in model.outputs]
        if shapes != [[tile.m, tile.k], [tile.k, tile.n], [tile.m, tile.n]]:
            self.teardown_errors += model.release()
            raise BackendUnavailable(f"{matmul_om_name(tile)} has shapes {shapes}, not the {tile.label} its name says")
        self._matmul, self.tile = model, tile

    # --- running ---------------------------------------------------------------------------------
    def _ready(self) -> None:
        self._check_thread()
        if self._generator is None or self._matmul is None:
            raise BackendFailure("the NPU backend has no model loaded")

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._ready()
        model = self._generator
        names = list(feeds)
        for index, tensor in enumerate(model.inputs):
            key = tensor.name if tensor.name in feeds else (names[index] if len(names) == len(model.inputs) else None)
            if key is None:
                raise BackendFailure(f"the NPU model wants an input {tensor.name!r}; got {', '.join(names)}")
            model.upload(index, feeds[key])
        model.execute()
        return {_onnx_name(t.name): model.read(i) for i, t in enumerate(model.outputs)}

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self._ready()
        model, resident = self._matmul, [None]

        def kernel(a_key, a_tile, b_tile):
            if resident[0] != a_key:  # the a tile stays on the device across column chunks
                resident[0] = None
                model.upload(0, a_tile)
                resident[0] = a_key
            model.upload(1, b_tile)
            model.execute()
            return model.read(0)

        return tiled_matmul(a, b, self.tile, kernel)

    # --- teardown ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Tear everything down in the §2 order; errors are kept in teardown_errors, never raised."""
        if self._closed:
            return
        acl = self._acl
        if acl is not None and self._ctx is not None:
            # make our context current here (close may run on another thread at exit)
            ret = acl.rt.set_context(self._ctx)
            if ret != ACL_SUCCESS:
                self.teardown_errors.append(describe_error(acl, "rt.set_context", ret))
        for model in (self._matmul, self._generator):
            if model is not None:
                self.teardown_errors += model.release()
        self._matmul = self._generator = None
        self._release_device()
        self._closed = True
        if self._proc is not None:
            self._proc.backends.discard(self)

    def _release_device(self) -> None:
        acl = self._acl
        steps = []
        if self._stream is not None:
            steps.append(("rt.destroy_stream", lambda: acl.rt.destroy_stream(self._stream)))
        if self._ctx is not None:
            steps.append(("rt.destroy_context", lambda: acl.rt.destroy_context(self._ctx)))
        if self._device_set:
            steps.append(("rt.reset_device", lambda: acl.rt.reset_device(self.device_id)))
        for call, run in steps:
            ret = run()
            if ret != ACL_SUCCESS:
                self.teardown_errors.append(describe_error(acl, call, ret))
        self._stream = self._ctx = None
        self._device_set = False


def _onnx_name(om_name: str) -> str:
    """Offline models may name an output '<op>:<index>:<original name>'; keep the original name."""
    return om_name.rsplit(":", 1)[-1] if om_name.count(":") >= 2 else om_name


def open_npu_backend(spec: ModelSpec, *, chunk: str | TileShape = DEFAULT_CHUNK, device_id: int = 0,
                     matmul_dir: str | Path | None = None, acl=None) -> AscendBackend:
    """An opened NPU backend with both .om files loaded, or BackendUnavailable saying why not.

    Call it on the thread that will run the jobs (the engine thread).
    """
    try:
        backend = AscendBackend(device_id=device_id, chunk=chunk, matmul_dir=matmul_dir, acl=acl)
    except ValueError as exc:  # a malformed chunk setting
        raise BackendUnavailable(f"the NPU chunk setting is not usable: {exc}") from None
    try:
        backend.load(spec)
    except BackendUnavailable:
        backend.close()
        raise
    except BackendFailure as exc:  # any runtime error while opening means "not usable"
        backend.close()
        raise BackendUnavailable(str(exc)) from None
    return backend
