"""Export a tools/train_inpaint.py checkpoint to ONNX plus its JSON sidecar.

    python tools/export_onnx.py .runs/default/latest.pt                 # -> models/default.onnx + .json
    python tools/export_onnx.py CKPT --size 256 --out models/default.onnx

The graph has a fixed input size (Huawei's ATC wants static shapes) and opset <= 17:
    image [1,3,S,S] float32 RGB 0..1, mask [1,1,S,S] float32 1 = hole
    -> inpainted [1,3,S,S] float32 0..1 (known pixels copied from the input).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_inpaint import InpaintNet, count_params, load_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


class _Export(torch.nn.Module):
    def __init__(self, net: InpaintNet):
        super().__init__()
        self.net = net

    def forward(self, image, mask):
        return self.net.inpaint(image, mask)


def export(model: InpaintNet, out: Path, size: int = 256, opset: int = 17,
           meta: dict | None = None) -> dict:
    if size % 32:
        raise ValueError("input size must be a multiple of 32")
    if opset > 17:
        raise ValueError("opset must be <= 17 for ATC")
    model.eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    image = torch.rand(1, 3, size, size)
    mask = torch.zeros(1, 1, size, size)
    mask[..., size // 4: size // 2, size // 4: size // 2] = 1
    kwargs = {}
    try:  # torch >= 2.5 has a dynamo exporter; we want the TorchScript one (fixed shapes, opset 17)
        import inspect
        if "dynamo" in inspect.signature(torch.onnx.export).parameters:
            kwargs["dynamo"] = False
    except (TypeError, ValueError):
        pass
    tmp = out.with_suffix(".onnx.tmp")
    with torch.no_grad():
        torch.onnx.export(_Export(model), (image, mask), str(tmp), opset_version=opset,
                          input_names=["image", "mask"], output_names=["inpainted"],
                          do_constant_folding=True, **kwargs)
    import onnx
    m = onnx.load(str(tmp))
    onnx.checker.check_model(m)
    tmp.replace(out)
    sidecar = {
        "name": "inpaint-studio-default",
        "version": 1,
        "contract": "image-only",
        "input_size": size,
        "layout": "NCHW",
        "inputs": {"image": "image", "mask": "mask"},
        "outputs": {"image": "inpainted"},
        "image_range": [0.0, 1.0],
        "mask_hole_value": 1.0,
        "opset": opset,
        "parameters": count_params(model),
        "architecture": f"U-Net, width {model.width}, dilated residual bottleneck {list(model.dilations)}",
        "licence_note": "trained on research-only data (BSDS500, Urban100, Sun-Hays80, NVIDIA masks); see MODEL_CARD.md",
    }
    if meta:
        sidecar.update(meta)
    out.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n")
    return sidecar


def check_onnx(path: Path, model: InpaintNet | None = None, size: int = 256) -> float:
    """Run the ONNX file with onnxruntime; return max |onnx - torch| (0 if no model)."""
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    image = rng.random((1, 3, size, size), dtype=np.float32)
    mask = np.zeros((1, 1, size, size), np.float32)
    mask[..., size // 3: size // 2, size // 4: size // 2] = 1
    (res,) = sess.run(["inpainted"], {"image": image, "mask": mask})
    assert res.shape == (1, 3, size, size), res.shape
    if model is None:
        return 0.0
    with torch.no_grad():
        ref = model.inpaint(torch.from_numpy(image), torch.from_numpy(mask)).numpy()
    return float(np.abs(ref - res).max())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--out", default=str(REPO / "models" / "default.onnx"))
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args(argv)
    model, ck = load_model(args.checkpoint)
    meta = {"steps_trained": int(ck["step"]), "train_crop": int(ck.get("args", {}).get("crop", 0))}
    sidecar = export(model, Path(args.out), args.size, args.opset, meta)
    err = check_onnx(Path(args.out), model, args.size)
    size_mb = Path(args.out).stat().st_size / 1e6
    print(f"wrote {args.out} ({size_mb:.1f} MB, step {sidecar['steps_trained']}), max |onnx-torch| {err:.2e}")


if __name__ == "__main__":
    main()
