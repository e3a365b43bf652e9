"""Placeholder .om files and how the stand-in "executes" them.

A real .om is produced by ATC (docs §4, §5); no ATC exists here, so `atc_onnx` and
`atc_singleop` write a small text placeholder instead, from the same inputs ATC takes:
- generator: the ONNX file (and optional --input_shape); executing the placeholder runs
  that ONNX on onnxruntime with its weights rounded to float16 and its inputs/outputs
  rounded through float16 (ATC's default force_fp16 precision, §5);
- single op: the project's op-description JSON (the MatMul JSON tools/atc writes);
  executing it multiplies the two inputs with float16-rounded operands and float32 sums.
A file that is not such a placeholder fails to load as a real runtime would refuse a
corrupt model (100012).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .device import DESERIALIZE_MODEL, INVALID_FILE, AclError

MAGIC = "ACL-DOUBLE-OM 1\n"
ACL_FLOAT, ACL_FLOAT16, ACL_INT32 = 0, 1, 3
_TYPES = {"float": (ACL_FLOAT, np.float32), "float32": (ACL_FLOAT, np.float32),
          "float16": (ACL_FLOAT16, np.float16), "int32": (ACL_INT32, np.int32)}


def _fp16(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.float32).astype(np.float16).astype(np.float32)


@dataclass
class TensorInfo:
    name: str
    dims: list[int]
    dtype: np.dtype
    acl_type: int

    @property
    def size(self) -> int:
        return int(np.prod(self.dims)) * np.dtype(self.dtype).itemsize


@dataclass
class LoadedModel:
    ctx: int
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    run: object  # callable(list[np.ndarray]) -> list[np.ndarray]
    weight_bytes: int = 0
    path: str = ""
    executions: int = 0
    extra: dict = field(default_factory=dict)


# --- "ATC" -------------------------------------------------------------------------------
def atc_onnx(onnx_path: str | Path, output: str | Path, input_shape: str | None = None,
             soc_version: str = "Ascend310") -> Path:
    """Like `atc --model=X.onnx --framework=5 --output=OUT --soc_version=...`: writes OUT.om."""
    out = Path(str(output) + ".om")
    body = {"kind": "onnx", "onnx": str(Path(onnx_path).resolve()), "soc_version": soc_version}
    if input_shape:
        body["input_shape"] = input_shape
    out.write_text(MAGIC + json.dumps(body), encoding="utf-8")
    return out


def atc_singleop(json_path: str | Path, output_dir: str | Path, soc_version: str = "Ascend310") -> list[Path]:
    """Like `atc --singleop=X.json --output=DIR --soc_version=...`: one .om per op description."""
    ops = json.loads(Path(json_path).read_text(encoding="utf-8"))
    if not isinstance(ops, list) or not ops:
        raise ValueError("a single-op JSON is a non-empty array of op descriptions")
    written = []
    for index, op in enumerate(ops):
        for key in ("op", "input_desc", "output_desc"):
            if key not in op:
                raise ValueError(f"op description {index} lacks the required field {key!r}")
        for desc in op["input_desc"] + op["output_desc"]:
            if desc.get("type") not in _TYPES or not isinstance(desc.get("shape"), list) or "format" not in desc:
                raise ValueError(f"bad tensor description {desc}")
        name = op.get("name") or default_singleop_name(index, op)
        out = Path(output_dir) / f"{name}.om"
        out.write_text(MAGIC + json.dumps({"kind": "singleop", "op": op, "soc_version": soc_version}),
                       encoding="utf-8")
        written.append(out)
    return written


def default_singleop_name(index: int, op: dict) -> str:
    """ATC's default name: index_op then dtype_format_shape per input and output (§4)."""
    fmt = {"NCHW": 0, "NHWC": 1, "ND": 2}
    parts = [str(index), op["op"]]
    for desc in op["input_desc"] + op["output_desc"]:
        parts += [str(_TYPES[desc["type"]][0]), str(fmt.get(desc["format"], 2))] + [str(d) for d in desc["shape"]]
    return "_".join(parts)


# --- loading -------------------------------------------------------------------------------
def load(path: str, ctx: int) -> LoadedModel:
    p = Path(path)
    if not p.is_file():
        raise AclError(INVALID_FILE, f"model file {path} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AclError(DESERIALIZE_MODEL, f"cannot parse model {p.name}: {exc}") from None
    if not text.startswith(MAGIC):
        raise AclError(DESERIALIZE_MODEL, f"{p.name} is not an offline model")
    body = json.loads(text[len(MAGIC):])
    model = _load_onnx(body, ctx) if body["kind"] == "onnx" else _load_singleop(body, ctx)
    model.path = str(p)
    return model


def _load_onnx(body: dict, ctx: int) -> LoadedModel:
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    onnx_path = Path(body["onnx"])
    if not onnx_path.is_file():
        raise AclError(DESERIALIZE_MODEL, f"the ONNX behind this placeholder is gone: {onnx_path.name}")
    proto = onnx.load(str(onnx_path))
    weight_bytes = 0
    for init in proto.graph.initializer:  # weights stored as float16 (force_fp16)
        arr = numpy_helper.to_array(init)
        weight_bytes += arr.nbytes
        if arr.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(_fp16(arr), init.name))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    overrides = {}
    for item in filter(None, body.get("input_shape", "").split(";")):
        name, dims = item.rsplit(":", 1)
        overrides[name] = [int(d) for d in dims.split(",")]
    inputs = []
    for meta in session.get_inputs():
        dims = overrides.get(meta.name, meta.shape)
        if not all(isinstance(d, int) and d > 0 for d in dims):
            raise AclError(DESERIALIZE_MODEL, f"input {meta.name} has a dynamic shape {dims}; give --input_shape")
        inputs.append(TensorInfo(meta.name, list(dims), np.dtype(np.float32), ACL_FLOAT))
    zeros = {t.name: np.zeros(t.dims, np.float32) for t in inputs}
    probe = session.run(None, zeros)  # "compile": fixes every output shape
    outputs = [TensorInfo(_om_output_name(i, meta.name), list(arr.shape), np.dtype(np.float32), ACL_FLOAT)
               for i, (meta, arr) in enumerate(zip(session.get_outputs(), probe))]

    def run(arrays: list[np.ndarray]) -> list[np.ndarray]:
        feeds = {t.name: _fp16(a.reshape(t.dims)) for t, a in zip(inputs, arrays)}
        return [_fp16(out) for out in session.run(None, feeds)]

    return LoadedModel(ctx, inputs, outputs, run, weight_bytes)


def _om_output_name(index: int, onnx_name: str) -> str:
    # offline models name outputs "<producing op>:<index>:<original name>" [inferred]
    return f"PartitionedCall_{index}:{index}:{onnx_name}"


def _load_singleop(body: dict, ctx: int) -> LoadedModel:
    op = body["op"]
    if op["op"] != "MatMul" or len(op["input_desc"]) != 2 or len(op["output_desc"]) != 1:
        raise AclError(DESERIALIZE_MODEL, f"the stand-in only runs 2-input MatMul, not {op['op']}")
    attrs = {a["name"]: a for a in op.get("attr", [])}
    for key in ("transpose_x1", "transpose_x2"):
        if key in attrs and attrs[key].get("type") != "bool":
            raise AclError(DESERIALIZE_MODEL, f"attr {key} must be a bool")
    t1 = bool(attrs.get("transpose_x1", {}).get("value", False))
    t2 = bool(attrs.get("transpose_x2", {}).get("value", False))

    def info(name: str, desc: dict) -> TensorInfo:
        acl_type, dtype = _TYPES[desc["type"]]
        return TensorInfo(name, list(desc["shape"]), np.dtype(dtype), acl_type)

    inputs = [info("x1", op["input_desc"][0]), info("x2", op["input_desc"][1])]
    outputs = [info("y", op["output_desc"][0])]
    x1 = inputs[0].dims[::-1] if t1 else inputs[0].dims
    x2 = inputs[1].dims[::-1] if t2 else inputs[1].dims
    if x1[1] != x2[0] or outputs[0].dims != [x1[0], x2[1]]:
        raise AclError(DESERIALIZE_MODEL, f"MatMul shapes do not agree: {x1} @ {x2} -> {outputs[0].dims}")

    def run(arrays: list[np.ndarray]) -> list[np.ndarray]:
        a = _fp16(arrays[0].reshape(inputs[0].dims))
        b = _fp16(arrays[1].reshape(inputs[1].dims))
        y = (a.T if t1 else a) @ (b.T if t2 else b)
        return [y.astype(outputs[0].dtype)]

    return LoadedModel(ctx, inputs, outputs, run, 0)
