"""The simulated device behind the `acl` stand-in: memory, contexts, streams, models.

Everything follows /shared/docs/ascend-acl.md (the section numbers below refer to it).
Memory is real (ctypes buffers), so pointers the backend gets from `numpy_to_ptr` /
`bytes_to_ptr` / `malloc` are real addresses and memcpy really moves bytes; every
region is registered with its kind (device / pinned host / python host) and its owning
context so memcpy can check kinds and sizes and teardown can report leaks.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
from dataclasses import dataclass, field

# §1 constants
ACL_SUCCESS = 0
HOST_TO_HOST, HOST_TO_DEVICE, DEVICE_TO_HOST, DEVICE_TO_DEVICE, MEMCPY_DEFAULT = 0, 1, 2, 3, 4
ACL_DEVICE, ACL_HOST = 0, 1
# §6 codes the stand-in returns
INVALID_PARAM = 100000
UNINITIALIZE = 100001
REPEAT_INITIALIZE = 100002
INVALID_FILE = 100003
INVALID_MODEL_ID = 100011
DESERIALIZE_MODEL = 100012
MODEL_INPUT_NOT_MATCH = 100017
MODEL_OUTPUT_NOT_MATCH = 100018
REPEAT_FINALIZE = 100037
RT_PARAM_INVALID = 107000
INVALID_DEVICEID = 107001
CONTEXT_NULL = 107002
MODEL_CONTEXT = 107004
MEMORY_ALLOCATION = 207001
NO_DEVICE = 207004
DEVICE_OOM = 207018
MODEL_EXECUTE = 507011

MESSAGES = {
    INVALID_PARAM: "invalid parameter",
    UNINITIALIZE: "acl is not initialized",
    REPEAT_INITIALIZE: "acl is already initialized",
    INVALID_FILE: "model file is invalid or missing",
    INVALID_MODEL_ID: "invalid model id",
    DESERIALIZE_MODEL: "failed to deserialize the model",
    MODEL_INPUT_NOT_MATCH: "model input does not match the model description",
    MODEL_OUTPUT_NOT_MATCH: "model output does not match the model description",
    REPEAT_FINALIZE: "acl is already finalized",
    RT_PARAM_INVALID: "runtime parameter invalid",
    INVALID_DEVICEID: "invalid device id",
    CONTEXT_NULL: "no current context in this thread",
    MODEL_CONTEXT: "model used in a context other than the one it was loaded in",
    MEMORY_ALLOCATION: "memory allocation failed",
    NO_DEVICE: "no NPU device found",
    DEVICE_OOM: "device out of memory",
    MODEL_EXECUTE: "model execution failed (AI core exception)",
}


class AclError(Exception):
    """Raised inside the stand-in; the API wrapper turns it into a return code."""

    def __init__(self, code: int, detail: str = ""):
        super().__init__(detail or MESSAGES.get(code, "error"))
        self.code = code
        self.detail = detail or MESSAGES.get(code, "error")


@dataclass
class Region:
    base: int
    size: int
    kind: str  # "device" | "pinned" | "python"
    ctx: int | None = None
    keep: object = None  # the object whose memory this is (kept alive)
    accounted: int = 0  # bytes charged to device memory


@dataclass
class Context:
    handle: int
    device: int
    thread: int  # ident of the thread that created it
    thread_name: str
    default: bool = False
    streams: set = field(default_factory=set)


class PerOsThread:
    """Storage per OS thread, as the C runtime keeps its current context. Not threading.local:
    Python code that a QThread enters from C++ may get a fresh thread state per slot call,
    and threading.local data would vanish between two jobs on the same engine thread."""

    def __init__(self) -> None:
        object.__setattr__(self, "_data", {})

    def __getattr__(self, name: str):
        return self._data.get(threading.get_ident(), {}).get(name)

    def __setattr__(self, name: str, value) -> None:
        self._data.setdefault(threading.get_ident(), {})[name] = value


def aligned_size(size: int) -> int:
    """§7: rt.malloc rounds up to a multiple of 32, then adds 32."""
    return -(-size // 32) * 32 + 32


class Device:
    """All state of one simulated machine (one `acl` module instance)."""

    def __init__(self, devices: int = 1, memory_bytes: int = 8 << 30, run_mode: int = ACL_HOST,
                 report_memory: bool = True):
        self.devices = devices
        self.memory_total = memory_bytes
        self.run_mode = run_mode
        self.report_memory = report_memory
        self.lock = threading.RLock()
        self.tls = PerOsThread()
        self._handles = itertools.count(0x1000)
        self.initialized = False
        self.finalized = False
        self.init_calls = 0
        self.device_refs: dict[int, int] = {}
        self.contexts: dict[int, Context] = {}
        self.default_ctx: dict[int, int] = {}
        self.streams: dict[int, int] = {}  # stream -> ctx
        self.regions: dict[int, Region] = {}
        self.python_regions: list[Region] = []
        self.used = 0
        self.peak = 0
        self.models: dict = {}  # model id -> LoadedModel (see models.py)
        self.descs: dict[int, object] = {}
        self.datasets: dict[int, list[int]] = {}
        self.buffers: dict[int, tuple[int, int]] = {}
        self.violations: list[str] = []
        self.calls: list[tuple[str, int]] = []  # (call, OS thread ident) log
        self.failures: dict[str, list[tuple[int, int]]] = {}  # call -> [(skip, code)]

    # --- bookkeeping -------------------------------------------------------------------
    def handle(self) -> int:
        return next(self._handles)

    def inject(self, call: str, code: int, *, after: int = 0, times: int = 1) -> None:
        """Make `call` (e.g. "mdl.execute") fail with `code` after `after` more successes."""
        self.failures.setdefault(call, []).extend([(after, code)] * times)

    def take_failure(self, call: str) -> int | None:
        queue = self.failures.get(call)
        if not queue:
            return None
        skip, code = queue[0]
        if skip > 0:
            queue[0] = (skip - 1, code)
            return None
        queue.pop(0)
        return code

    def set_error(self, message: str | None) -> None:
        self.tls.err = message

    def recent_error(self) -> str | None:
        return getattr(self.tls, "err", None)

    def require_init(self) -> None:
        if not self.initialized or self.finalized:
            raise AclError(UNINITIALIZE)

    def current_ctx(self) -> Context:
        """§7: the context current in *this* thread, or 107002."""
        self.require_init()
        handle = getattr(self.tls, "ctx", None)
        if handle is None or handle not in self.contexts:
            raise AclError(CONTEXT_NULL, f"no current context in thread {threading.current_thread().name}")
        return self.contexts[handle]

    # --- memory ------------------------------------------------------------------------
    def _new_region(self, size: int, kind: str, ctx: int | None, charge: int) -> Region:
        raw = ctypes.create_string_buffer(size + 128)
        start = ctypes.addressof(raw)
        base = -(-start // 64) * 64  # 64-byte aligned start (§7)
        ctypes.memset(base, 0xFF, size)  # not zeroed: float32 0xFFFFFFFF is NaN
        region = Region(base, size, kind, ctx, raw, charge)
        self.regions[base] = region
        self.used += charge
        self.peak = max(self.peak, self.used)
        return region

    def charge(self, nbytes: int) -> None:
        if self.used + nbytes > self.memory_total:
            raise AclError(MEMORY_ALLOCATION, f"cannot allocate {nbytes} bytes: {self.memory_total - self.used} free")

    def malloc(self, size: int, policy: int) -> int:
        ctx = self.current_ctx()
        if size <= 0 or policy not in range(6):
            raise AclError(INVALID_PARAM, f"malloc(size={size}, policy={policy})")
        need = aligned_size(size)
        self.charge(need)
        return self._new_region(need, "device", ctx.handle, need).base

    def malloc_host(self, size: int) -> int:
        ctx = self.current_ctx()
        if size <= 0:
            raise AclError(INVALID_PARAM, f"malloc_host(size={size})")
        if self.run_mode == ACL_DEVICE:  # §7: device memory in DEVICE mode
            need = aligned_size(size)
            self.charge(need)
            return self._new_region(need, "device", ctx.handle, need).base
        return self._new_region(aligned_size(size), "pinned", ctx.handle, 0).base

    def free(self, ptr: int, host: bool) -> None:
        self.current_ctx()
        region = self.regions.get(ptr)
        want = ("pinned", "device") if host else ("device",)
        if region is None or region.kind not in want or (host and region.kind == "device" and self.run_mode != ACL_DEVICE):
            raise AclError(RT_PARAM_INVALID, f"{'free_host' if host else 'free'}: {ptr:#x} was not allocated by it")
        if region.ctx not in self.contexts:
            self.violations.append(f"memory {ptr:#x} freed after its context was destroyed")
        del self.regions[ptr]
        self.used -= region.accounted

    def register_python(self, keep: object, address: int, size: int) -> int:
        region = Region(address, size, "python", None, keep)
        self.python_regions.append(region)
        del self.python_regions[:-256]
        return address

    def find(self, address: int) -> Region | None:
        for region in self.regions.values():
            if region.base <= address < region.base + region.size:
                return region
        for region in reversed(self.python_regions):
            if region.base <= address < region.base + max(region.size, 1):
                return region
        return None

    def side(self, region: Region) -> str:
        """'device' or 'host' as the runtime sees the address (§7 run modes)."""
        if region.kind == "device" or self.run_mode == ACL_DEVICE:
            return "device"
        return "host"

    def memcpy(self, dst: int, dst_max: int, src: int, count: int, kind: int) -> None:
        self.current_ctx()
        if count > dst_max:
            raise AclError(INVALID_PARAM, f"memcpy count {count} > dst_max {dst_max}")
        if kind not in (HOST_TO_HOST, HOST_TO_DEVICE, DEVICE_TO_HOST, DEVICE_TO_DEVICE, MEMCPY_DEFAULT):
            raise AclError(INVALID_PARAM, f"memcpy kind {kind}")
        d, s = self.find(dst), self.find(src)
        if d is None or s is None:
            raise AclError(RT_PARAM_INVALID, f"memcpy: unknown {'destination' if d is None else 'source'} address")
        if dst + dst_max > d.base + d.size and d.kind != "python":
            raise AclError(INVALID_PARAM, f"memcpy dst_max {dst_max} runs past the destination buffer")
        if src + count > s.base + s.size or dst + count > d.base + d.size:
            raise AclError(INVALID_PARAM, "memcpy count runs past a buffer")
        expected = {HOST_TO_HOST: ("host", "host"), HOST_TO_DEVICE: ("host", "device"),
                    DEVICE_TO_HOST: ("device", "host"), DEVICE_TO_DEVICE: ("device", "device")}
        if kind != MEMCPY_DEFAULT and expected[kind] != (self.side(s), self.side(d)):
            raise AclError(INVALID_PARAM, f"memcpy kind {kind} does not match {self.side(s)} -> {self.side(d)} "
                                          f"(run mode {'DEVICE' if self.run_mode == ACL_DEVICE else 'HOST'})")
        ctypes.memmove(dst, src, count)

    def read(self, address: int, size: int) -> bytes:
        return ctypes.string_at(address, size)

    def write(self, address: int, data: bytes) -> None:
        ctypes.memmove(address, data, len(data))

    # --- leak report -------------------------------------------------------------------
    def live(self) -> dict[str, int]:
        """What is still allocated: every count is 0 after a clean teardown."""
        return {
            "device_bytes": self.used,
            "device_allocations": sum(1 for r in self.regions.values() if r.kind == "device"),
            "host_allocations": sum(1 for r in self.regions.values() if r.kind == "pinned"),
            "contexts": sum(1 for c in self.contexts.values() if not c.default),
            "streams": len(self.streams),
            "models": len(self.models),
            "descs": len(self.descs),
            "datasets": len(self.datasets),
            "data_buffers": len(self.buffers),
            "devices_set": sum(self.device_refs.values()),
        }

    def owned_by(self, ctx: int) -> list[str]:
        left = [f"{r.kind} memory {r.base:#x}" for r in self.regions.values() if r.ctx == ctx]
        left += [f"stream {s:#x}" for s, c in self.streams.items() if c == ctx]
        left += [f"model {m}" for m, lm in self.models.items() if lm.ctx == ctx]
        return left
