"""Test helpers around the stand-in: a small real generator and its "converted" .om files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from app.engine.backends.ascend import matmul_om_name
from app.engine.backends.tiling import TileShape

from .models import atc_onnx, atc_singleop


def tiny_generator(folder: Path, size: int = 64, name: str = "tiny") -> Path:
    """A small convolutional inpainter (fixed random weights) as ONNX + sidecar, like the default model's contract:
    image [1,3,S,S] 0..1 and mask [1,1,S,S] 1 = hole -> inpainted [1,3,S,S], known pixels kept."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    w1 = (rng.standard_normal((8, 4, 3, 3)) * 0.3).astype(np.float32)
    b1 = (rng.standard_normal(8) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((3, 8, 3, 3)) * 0.3).astype(np.float32)
    b2 = np.zeros(3, np.float32)
    one = np.ones((1,), np.float32)
    nodes = [
        helper.make_node("Concat", ["image", "mask"], ["x"], axis=1),
        helper.make_node("Conv", ["x", "w1", "b1"], ["h"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("Conv", ["hr", "w2", "b2"], ["y"], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["y"], ["ys"]),
        helper.make_node("Sub", ["one", "mask"], ["keep"]),
        helper.make_node("Mul", ["image", "keep"], ["known"]),
        helper.make_node("Mul", ["ys", "mask"], ["fill"]),
        helper.make_node("Add", ["known", "fill"], ["inpainted"]),
    ]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, size, size])],
        [helper.make_tensor_value_info("inpainted", TensorProto.FLOAT, [1, 3, size, size])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"), (one, "one"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = Path(folder) / f"{name}.onnx"
    onnx.save(model, str(path))
    sidecar = {"name": name, "contract": "image-only", "input_size": size, "layout": "NCHW",
               "inputs": {"image": "image", "mask": "mask"}, "outputs": {"image": "inpainted"},
               "image_range": [0.0, 1.0], "mask_hole_value": 1.0}
    path.with_suffix(".json").write_text(json.dumps(sidecar), encoding="utf-8")
    return path


DEFAULT_TILE = TileShape(1024, 1024, 3072)


def convert(model_path: Path, tile: TileShape = DEFAULT_TILE, matmul_type: str = "float",
            out_dir: Path | None = None) -> tuple[Path, Path]:
    """What a user with CANN does (models/README.md), with the stand-in ATC: the generator .om next to the ONNX
    and the MatMul chunk .om compiled from the project's own op JSON (tools/atc)."""
    from tools.atc.make_recipe import matmul_op_description

    out_dir = Path(out_dir or model_path.parent)
    gen = atc_onnx(model_path, model_path.with_suffix(""))
    op_json = out_dir / (matmul_om_name(tile)[:-3] + ".json")
    op_json.write_text(json.dumps(matmul_op_description(tile, matmul_type)), encoding="utf-8")
    (mm,) = atc_singleop(op_json, out_dir)
    assert mm.name == matmul_om_name(tile)
    return gen, mm
