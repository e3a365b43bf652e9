"""Shared test set-up: Qt offscreen and a private home (both before any Qt import), tiny ONNX models."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# The editor keeps settings, recent files and crash autosaves in the user's folders. Tests get
# their own, fresh each run: a leftover autosave of a killed editor would otherwise make the
# launch tests offer recovery instead of opening the sample photo (it hung CI once).
_PRIVATE_HOME = tempfile.mkdtemp(prefix="inpaint-studio-tests-")
atexit.register(shutil.rmtree, _PRIVATE_HOME, True)
for _var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
    os.environ[_var] = os.path.join(_PRIVATE_HOME, _var.lower())

import numpy as np
import pytest


def build_tiny_model(path, *, contract="image-only", layout="NCHW", size=64, fill="mean", attention=None,
                     sidecar: dict | None = None, write_sidecar=True):
    """Write a tiny generator with onnx.helper at `path` (+ its JSON sidecar) and return the path.

    The image output is the input where mask = 0 and, in the hole, either the mean colour of
    the known pixels (fill="mean") or a constant (fill=float). A hifill model also outputs
    `attention`: the given (1024 x 1024, query x source) matrix as a constant, shaped
    [1,32,32,1024] (NHWC) or [1,1024,32,32] (NCHW)."""
    from onnx import TensorProto, helper, numpy_helper, save

    nchw = layout == "NCHW"
    img_shape = [1, 3, size, size] if nchw else [1, size, size, 3]
    mask_shape = [1, 1, size, size] if nchw else [1, size, size, 1]
    axes = [2, 3] if nchw else [1, 2]
    inits = [
        numpy_helper.from_array(np.array(axes, np.int64), "axes"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(1e-6, np.float32), "eps"),
    ]
    nodes = [
        helper.make_node("Sub", ["one", "mask"], ["keep"]),
        helper.make_node("Mul", ["image", "keep"], ["known"]),
    ]
    if fill == "mean":
        nodes += [
            helper.make_node("ReduceSum", ["known", "axes"], ["num"], keepdims=1),
            helper.make_node("ReduceSum", ["keep", "axes"], ["den"], keepdims=1),
            helper.make_node("Max", ["den", "eps"], ["den1"]),
            helper.make_node("Div", ["num", "den1"], ["colour"]),
        ]
    else:
        inits.append(numpy_helper.from_array(np.array(float(fill), np.float32), "colour"))
    nodes += [helper.make_node("Mul", ["mask", "colour"], ["filled"]), helper.make_node("Add", ["known", "filled"], ["inpainted"])]
    outputs = [helper.make_tensor_value_info("inpainted", TensorProto.FLOAT, img_shape)]
    if contract == "hifill":
        att = np.asarray(attention, np.float32).reshape(1024, 1024)
        att = att.T.reshape(1, 1024, 32, 32) if nchw else att.reshape(1, 32, 32, 1024)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(att), "attention_const"))
        nodes.append(helper.make_node("Identity", ["attention_const"], ["attention"]))
        outputs.append(helper.make_tensor_value_info("attention", TensorProto.FLOAT, list(att.shape)))
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, img_shape),
                        helper.make_tensor_value_info("mask", TensorProto.FLOAT, mask_shape)], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))
    if write_sidecar:
        spec = {"name": path.stem, "contract": contract, "layout": layout, "input_size": size} | (sidecar or {})
        path.with_suffix(".json").write_text(json.dumps(spec), encoding="utf-8")
    return path


@pytest.fixture
def tiny_model(tmp_path):
    """Factory: tiny_model("name", contract=..., layout=..., size=..., fill=..., attention=...) -> Path."""

    def make(name: str = "tiny", **kwargs):
        return build_tiny_model(tmp_path / f"{name}.onnx", **kwargs)

    return make
