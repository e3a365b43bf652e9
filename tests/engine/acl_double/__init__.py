"""An in-process stand-in for pyacl (`import acl`), faithful to /shared/docs/ascend-acl.md.

    acl = make_acl()                   # one simulated machine with one NPU
    acl = make_acl(devices=0)          # no NPU: get_device_count -> (0, 207004)
    acl.double.inject("mdl.execute", 507011)   # the next execute fails
    monkeypatch.setitem(sys.modules, "acl", acl)

What it enforces (§1-§8): the return shapes of §1 ((value, ret) tuples, ret-only, bare
values); init once per process (a second init returns 100002); a current context per
thread (calls from a thread without one fail with 107002) and models used only in the
context that loaded them (107004); rt.malloc size rounding and 64-byte alignment, memory
that is not zeroed (filled with NaN bytes), device memory accounting with out-of-memory
(207001) and a leak report (`acl.double.live()`, `acl.double.violations`); memcpy kind
checks against the run mode and size checks (count <= dst_max, inside both buffers);
model inputs of exactly the described size; `.om` placeholders executed on onnxruntime in
float16-like precision (models.py). Extension beyond the doc, marked as such:
`rt.get_mem_info(attr) -> (free, total, ret)` (pyacl has it; not in ascend-acl.md).
`op.execute_v2` is not simulated (the backend uses the single-op .om through mdl).
"""

from __future__ import annotations

import sys
import threading
import types

import numpy as np

from . import models
from .device import (
    ACL_DEVICE,
    ACL_HOST,
    ACL_SUCCESS,
    CONTEXT_NULL,
    DEVICE_OOM,
    INVALID_DEVICEID,
    INVALID_MODEL_ID,
    INVALID_PARAM,
    MEMORY_ALLOCATION,
    MODEL_CONTEXT,
    MODEL_EXECUTE,
    MODEL_INPUT_NOT_MATCH,
    MODEL_OUTPUT_NOT_MATCH,
    NO_DEVICE,
    REPEAT_FINALIZE,
    REPEAT_INITIALIZE,
    RT_PARAM_INVALID,
    AclError,
    Context,
    Device,
)
from .models import atc_onnx, atc_singleop

__all__ = [
    "ACL_DEVICE",
    "ACL_HOST",
    "CONTEXT_NULL",
    "DEVICE_OOM",
    "MEMORY_ALLOCATION",
    "MODEL_EXECUTE",
    "NO_DEVICE",
    "Device",
    "atc_onnx",
    "atc_singleop",
    "make_acl",
]

_NPY_TYPES = {11: np.float32, 23: np.float16, 5: np.int32, 2: np.uint8}
_BYTES_OFFSET = sys.getsizeof(b"") - 1  # CPython: where a bytes object's data starts


def make_acl(devices: int = 1, memory_bytes: int = 8 << 30, run_mode: int = ACL_HOST,
             report_memory: bool = True, bytes_helpers: bool = True) -> types.ModuleType:
    """A fresh `acl` module over a fresh simulated machine (see the module docstring)."""
    dev = Device(devices, memory_bytes, run_mode, report_memory)
    acl = types.ModuleType("acl")
    acl.double = dev
    for sub in ("rt", "mdl", "util", "op"):
        setattr(acl, sub, types.ModuleType(f"acl.{sub}"))

    def api(name: str, shape: str, fail_value=0):
        """Register `name` ("rt.malloc", "init", ...) returning per §1: "tuple", "ret" or "value"."""

        def wrap(body):
            def call(*args):
                with dev.lock:
                    dev.calls.append((name, threading.get_ident()))
                    code = dev.take_failure(name)
                    try:
                        if code is not None:
                            raise AclError(code, f"injected failure of {name}")
                        value = body(*args)
                        code = ACL_SUCCESS
                    except AclError as err:
                        code, value = err.code, fail_value
                        dev.set_error(f"EE9999: [stand-in] {name}: {err.detail} (code {err.code})")
                    except (KeyError, IndexError) as err:
                        code, value = INVALID_PARAM, fail_value
                        dev.set_error(f"EE9999: [stand-in] {name}: unknown handle or index {err}")
                if shape == "tuple":
                    return (value, code)
                if shape == "ret":
                    return code
                return value

            owner, _, attr = name.rpartition(".")
            setattr(getattr(acl, owner) if owner else acl, attr, call)
            return body

        return wrap

    # --- §2/§3 process and device ------------------------------------------------------
    @api("init", "ret")
    def init(config_path=None):
        dev.init_calls += 1
        if dev.initialized or dev.finalized:  # init -> finalize -> init is [unconfirmed]: refuse
            raise AclError(REPEAT_INITIALIZE)
        dev.initialized = True

    @api("finalize", "ret")
    def finalize():
        if dev.finalized:
            raise AclError(REPEAT_FINALIZE)
        dev.require_init()
        if any(dev.device_refs.values()):
            dev.violations.append("finalize with a device still set")
        dev.finalized = True

    @api("get_recent_err_msg", "value", None)
    def get_recent_err_msg():
        return dev.recent_error()

    @api("rt.get_device_count", "tuple")
    def get_device_count():
        dev.require_init()
        if dev.devices == 0:
            raise AclError(NO_DEVICE)
        return dev.devices

    @api("rt.set_device", "ret")
    def set_device(device_id):
        dev.require_init()
        if dev.devices == 0:
            raise AclError(NO_DEVICE)
        if not 0 <= device_id < dev.devices:
            raise AclError(INVALID_DEVICEID)
        dev.device_refs[device_id] = dev.device_refs.get(device_id, 0) + 1
        if device_id not in dev.default_ctx:  # set_device makes the default context current
            handle = dev.handle()
            me = threading.current_thread()
            dev.contexts[handle] = Context(handle, device_id, me.ident, me.name, default=True)
            dev.default_ctx[device_id] = handle
        dev.tls.ctx = dev.default_ctx[device_id]

    @api("rt.reset_device", "ret")
    def reset_device(device_id):
        dev.require_init()
        if dev.device_refs.get(device_id, 0) <= 0:
            raise AclError(INVALID_DEVICEID, f"device {device_id} is not set")
        dev.device_refs[device_id] -= 1
        if dev.device_refs[device_id] == 0:
            for handle, ctx in list(dev.contexts.items()):
                if ctx.device != device_id:
                    continue
                left = dev.owned_by(handle)
                if left or not ctx.default:
                    dev.violations.append(f"reset_device({device_id}) with context {handle:#x} still holding "
                                          f"{', '.join(left) or 'itself'}")
                if ctx.default:
                    del dev.contexts[handle]
            dev.default_ctx.pop(device_id, None)
            if getattr(dev.tls, "ctx", None) not in dev.contexts:
                dev.tls.ctx = None

    @api("rt.create_context", "tuple")
    def create_context(device_id):
        dev.require_init()
        if dev.device_refs.get(device_id, 0) <= 0:
            raise AclError(INVALID_DEVICEID, f"device {device_id} is not set")
        handle = dev.handle()
        me = threading.current_thread()
        dev.contexts[handle] = Context(handle, device_id, me.ident, me.name)
        dev.tls.ctx = handle
        return handle

    @api("rt.set_context", "ret")
    def set_context(ctx):
        dev.require_init()
        if ctx not in dev.contexts:
            raise AclError(RT_PARAM_INVALID, f"context {ctx:#x} does not exist")
        dev.tls.ctx = ctx

    @api("rt.get_context", "tuple")
    def get_context():
        return dev.current_ctx().handle

    @api("rt.destroy_context", "ret")
    def destroy_context(ctx):
        dev.require_init()
        if ctx not in dev.contexts or dev.contexts[ctx].default:
            raise AclError(RT_PARAM_INVALID, f"context {ctx:#x} cannot be destroyed")
        left = dev.owned_by(ctx)
        if left:
            dev.violations.append(f"destroy_context with {', '.join(left)} still alive")
        del dev.contexts[ctx]
        if getattr(dev.tls, "ctx", None) == ctx:
            dev.tls.ctx = None

    @api("rt.create_stream", "tuple")
    def create_stream():
        ctx = dev.current_ctx()
        handle = dev.handle()
        dev.streams[handle] = ctx.handle
        return handle

    @api("rt.destroy_stream", "ret")
    def destroy_stream(stream):
        dev.current_ctx()
        if stream not in dev.streams:
            raise AclError(RT_PARAM_INVALID, f"stream {stream:#x} does not exist")
        del dev.streams[stream]

    @api("rt.synchronize_stream", "ret")
    def synchronize_stream(stream):
        dev.current_ctx()
        if stream not in dev.streams:
            raise AclError(RT_PARAM_INVALID)

    @api("rt.get_run_mode", "tuple")
    def get_run_mode():
        dev.require_init()
        return dev.run_mode

    # --- §7 memory -----------------------------------------------------------------------
    @api("rt.malloc", "tuple")
    def malloc(size, policy):
        return dev.malloc(size, policy)

    @api("rt.malloc_host", "tuple")
    def malloc_host(size):
        return dev.malloc_host(size)

    @api("rt.free", "ret")
    def free(ptr):
        dev.free(ptr, host=False)

    @api("rt.free_host", "ret")
    def free_host(ptr):
        dev.free(ptr, host=True)

    @api("rt.memcpy", "ret")
    def memcpy(dst, dst_max, src, count, kind):
        dev.memcpy(dst, dst_max, src, count, kind)

    def get_mem_info(attr):  # extension: pyacl returns (free, total, ret)
        with dev.lock:
            code = dev.take_failure("rt.get_mem_info")
            if code is None and not dev.report_memory:
                code = 200001  # API_NOT_SUPPORT
            if code is None:
                try:
                    dev.current_ctx()
                except AclError as err:
                    code = err.code
            if code is not None:
                dev.set_error(f"EE9999: [stand-in] rt.get_mem_info failed (code {code})")
                return 0, 0, code
            return dev.memory_total - dev.used, dev.memory_total, ACL_SUCCESS

    acl.rt.get_mem_info = get_mem_info

    # --- §2 util helpers -------------------------------------------------------------------
    def numpy_to_ptr(arr):
        if not arr.flags["C_CONTIGUOUS"]:
            print("[stand-in] numpy_to_ptr: array is not contiguous", file=sys.stderr)
        with dev.lock:
            return dev.register_python(arr, arr.ctypes.data, arr.nbytes)

    def ptr_to_numpy(ptr, shape, npy_type):
        dtype = np.dtype(_NPY_TYPES[npy_type])
        size = int(np.prod(shape)) * dtype.itemsize
        return np.frombuffer(bytearray(dev.read(ptr, size)), dtype).reshape(shape)

    def bytes_to_ptr(data):
        with dev.lock:
            return dev.register_python(data, id(data) + _BYTES_OFFSET, len(data))

    def ptr_to_bytes(ptr, size):
        return dev.read(ptr, size)

    acl.util.numpy_to_ptr = numpy_to_ptr
    acl.util.ptr_to_numpy = ptr_to_numpy
    if bytes_helpers:
        acl.util.bytes_to_ptr = bytes_to_ptr
        acl.util.ptr_to_bytes = ptr_to_bytes

    # --- §2 data buffers and datasets --------------------------------------------------------
    @api("create_data_buffer", "value")
    def create_data_buffer(ptr, size):
        handle = dev.handle()
        dev.buffers[handle] = (ptr, size)
        return handle

    @api("destroy_data_buffer", "ret")
    def destroy_data_buffer(buf):
        if dev.buffers.pop(buf, None) is None:
            raise AclError(INVALID_PARAM, f"data buffer {buf:#x} does not exist")

    @api("get_data_buffer_addr", "value")
    def get_data_buffer_addr(buf):
        return dev.buffers[buf][0]

    @api("get_data_buffer_size", "value")
    def get_data_buffer_size(buf):
        return dev.buffers[buf][1]

    acl.get_data_buffer_size_v2 = acl.get_data_buffer_size

    @api("mdl.create_dataset", "value")
    def create_dataset():
        handle = dev.handle()
        dev.datasets[handle] = []
        return handle

    @api("mdl.add_dataset_buffer", "tuple")
    def add_dataset_buffer(ds, buf):
        if ds not in dev.datasets or buf not in dev.buffers:
            raise AclError(INVALID_PARAM, "add_dataset_buffer: unknown dataset or buffer")
        dev.datasets[ds].append(buf)
        return ds

    @api("mdl.get_dataset_num_buffers", "value")
    def get_dataset_num_buffers(ds):
        return len(dev.datasets[ds])

    @api("mdl.get_dataset_buffer", "value")
    def get_dataset_buffer(ds, index):
        return dev.datasets[ds][index]

    @api("mdl.destroy_dataset", "ret")
    def destroy_dataset(ds):
        if dev.datasets.pop(ds, None) is None:
            raise AclError(INVALID_PARAM, f"dataset {ds:#x} does not exist")

    # --- §2 models -----------------------------------------------------------------------------
    @api("mdl.load_from_file", "tuple")
    def load_from_file(path):
        ctx = dev.current_ctx()
        model = models.load(str(path), ctx.handle)
        need = max(model.weight_bytes, 1)
        if dev.used + need > dev.memory_total:
            raise AclError(DEVICE_OOM, f"loading {path} needs {need} bytes")
        dev.used += need
        model.extra["charge"] = need
        handle = dev.handle()
        dev.models[handle] = model
        return handle

    @api("mdl.unload", "ret")
    def unload(model_id):
        ctx = dev.current_ctx()
        model = dev.models.get(model_id)
        if model is None:
            raise AclError(INVALID_MODEL_ID)
        if model.ctx != ctx.handle:
            raise AclError(MODEL_CONTEXT)
        dev.used -= model.extra["charge"]
        del dev.models[model_id]

    @api("mdl.create_desc", "value")
    def create_desc():
        handle = dev.handle()
        dev.descs[handle] = None
        return handle

    @api("mdl.get_desc", "ret")
    def get_desc(desc, model_id):
        if desc not in dev.descs or model_id not in dev.models:
            raise AclError(INVALID_PARAM if desc not in dev.descs else INVALID_MODEL_ID)
        dev.descs[desc] = dev.models[model_id]

    @api("mdl.destroy_desc", "ret")
    def destroy_desc(desc):
        if desc not in dev.descs:
            raise AclError(INVALID_PARAM)
        del dev.descs[desc]

    def described(desc):
        model = dev.descs.get(desc)
        if model is None:
            raise AclError(INVALID_PARAM, "model description is empty")
        return model

    @api("mdl.get_num_inputs", "value")
    def get_num_inputs(desc):
        return len(described(desc).inputs)

    @api("mdl.get_num_outputs", "value")
    def get_num_outputs(desc):
        return len(described(desc).outputs)

    @api("mdl.get_input_size_by_index", "value")
    def get_input_size_by_index(desc, i):
        return described(desc).inputs[i].size

    @api("mdl.get_output_size_by_index", "value")
    def get_output_size_by_index(desc, i):
        return described(desc).outputs[i].size

    def dims(info):
        return {"name": info.name, "dimCount": len(info.dims), "dims": list(info.dims)}

    @api("mdl.get_input_dims", "tuple", None)
    def get_input_dims(desc, i):
        return dims(described(desc).inputs[i])

    @api("mdl.get_output_dims", "tuple", None)
    def get_output_dims(desc, i):
        return dims(described(desc).outputs[i])

    @api("mdl.get_output_data_type", "value")
    def get_output_data_type(desc, i):
        return described(desc).outputs[i].acl_type

    @api("mdl.get_input_index_by_name", "tuple")
    def get_input_index_by_name(desc, name):
        for i, info in enumerate(described(desc).inputs):
            if info.name == name:
                return i
        raise AclError(INVALID_PARAM, f"no input named {name}")

    @api("mdl.execute", "ret")
    def execute(model_id, in_ds, out_ds):
        ctx = dev.current_ctx()
        model = dev.models.get(model_id)
        if model is None:
            raise AclError(INVALID_MODEL_ID)
        if model.ctx != ctx.handle:
            raise AclError(MODEL_CONTEXT)
        ins, outs = dev.datasets.get(in_ds), dev.datasets.get(out_ds)
        if ins is None or outs is None:
            raise AclError(INVALID_PARAM, "unknown dataset")
        if len(ins) != len(model.inputs):
            raise AclError(MODEL_INPUT_NOT_MATCH, f"{len(ins)} inputs given, the model has {len(model.inputs)}")
        if len(outs) != len(model.outputs):
            raise AclError(MODEL_OUTPUT_NOT_MATCH, f"{len(outs)} outputs given, the model has {len(model.outputs)}")
        arrays = []
        for buf, info in zip(ins, model.inputs):
            addr, size = dev.buffers[buf]
            region = dev.find(addr)
            if size != info.size:
                raise AclError(MODEL_INPUT_NOT_MATCH, f"input {info.name}: buffer of {size} bytes, needs {info.size}")
            if region is None or dev.side(region) != "device" or addr + size > region.base + region.size:
                raise AclError(MODEL_INPUT_NOT_MATCH, f"input {info.name} is not in device memory")
            arrays.append(np.frombuffer(dev.read(addr, size), info.dtype).reshape(info.dims))
        for buf, info in zip(outs, model.outputs):
            addr, size = dev.buffers[buf]
            region = dev.find(addr)
            if size < info.size or region is None or dev.side(region) != "device":
                raise AclError(MODEL_OUTPUT_NOT_MATCH, f"output {info.name}: bad buffer")
        results = model.run(arrays)
        for buf, info, result in zip(outs, model.outputs, results):
            dev.write(dev.buffers[buf][0], np.ascontiguousarray(result, info.dtype).tobytes())
        model.executions += 1

    return acl
