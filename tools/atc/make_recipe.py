"""Write the ATC conversion recipe for the NPU backend (app/engine/backends/ascend.py).

    python tools/atc/make_recipe.py                         # models/default.onnx, chunk 1024x3072
    python tools/atc/make_recipe.py --model models/my.onnx --chunk 512x1536 --soc-version Ascend310P3

It writes, into --out (default models/atc/):
- matmul_MxKxN.json: the single-op description of the fixed-shape MatMul chunk
  (x1 [M,K] @ x2 [K,N] -> y [M,N], ND, transpose_x1/transpose_x2 false);
- convert.sh: the two ATC commands, run on a machine with the CANN toolkit:
    atc --model=<model>.onnx --framework=5 --output=<model> --soc_version=<soc>
        --input_shape="image:1,3,S,S;mask:1,1,S,S" --output_type=FP32 ...
    atc --singleop=matmul_MxKxN.json --soc_version=<soc> --output=<models dir>
  so that <model>.om lands next to <model>.onnx (sharing its JSON sidecar) and
  matmul_MxKxN.om lands in the models folder, where the backend looks for both.
The script itself needs no CANN; convert.sh does (see models/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from app.engine.backends.ascend import DEFAULT_CHUNK, matmul_om_name
from app.engine.backends.tiling import TileShape
from app.engine.model_spec import ModelSpec, load_spec

#: --soc_version values by product (docs §5: "Ascend" + the Name column of `npu-smi info`)
SOC_VERSIONS = {
    "Ascend310": "Atlas 200 DK, Atlas 300I (inference card)",
    "Ascend310B1": "Atlas 200I DK A2, Orange Pi AIpro",
    "Ascend310P3": "Atlas 300I Pro / Duo, Atlas 300V",
    "Ascend910": "Atlas 300T / 800 training (first generation)",
    "Ascend910B1": "Atlas 800T A2 / 900 A2",
    "Ascend910B2": "Atlas 800T A2 / 900 A2",
    "Ascend910B3": "Atlas 800T A2 / 900 A2",
    "Ascend910B4": "Atlas 800I A2 / 300T A2",
}
MATMUL_TYPES = ("float", "float16")


def matmul_op_description(tile: TileShape, dtype: str = "float") -> list[dict]:
    """The ATC single-op JSON (docs §4a) for one fixed-shape MatMul chunk."""
    if dtype not in MATMUL_TYPES:
        raise ValueError(f"the MatMul type is one of {', '.join(MATMUL_TYPES)}, not {dtype!r}")

    def tensor(shape: list[int]) -> dict:
        return {"format": "ND", "shape": shape, "type": dtype}

    return [
        {
            "op": "MatMul",
            # sets the .om file name: matmul_MxKxN.om, the name the backend looks for
            "name": matmul_om_name(tile)[: -len(".om")],
            "input_desc": [tensor([tile.m, tile.k]), tensor([tile.k, tile.n])],
            "output_desc": [tensor([tile.m, tile.n])],
            "attr": [
                {"name": "transpose_x1", "type": "bool", "value": False},
                {"name": "transpose_x2", "type": "bool", "value": False},
            ],
        }
    ]


def input_shape_arg(spec: ModelSpec) -> str:
    """--input_shape for the generator from its sidecar (fixed shapes; ATC wants them static)."""
    s = spec.input_size
    if spec.layout == "NCHW":
        image, mask = f"1,3,{s},{s}", f"1,1,{s},{s}"
    else:
        image, mask = f"1,{s},{s},3", f"1,{s},{s},1"
    return f"{spec.inputs['image']}:{image};{spec.inputs['mask']}:{mask}"


def generator_command(spec: ModelSpec, soc: str, model: str, output: str) -> list[str]:
    """atc for ONNX -> .om (docs §5); `model` and `output` as they should appear in the script."""
    cmd = [
        "atc", f"--model={model}", "--framework=5", f"--output={output}", f"--soc_version={soc}",
        f"--input_shape={input_shape_arg(spec)}", f"--input_format={spec.layout}",
        # float32 outputs; fp16 only where an op has no fp32 kernel (the default would force fp16)
        "--output_type=FP32", "--precision_mode=allow_fp32_to_fp16",
    ]
    return cmd


def matmul_command(json_file: str, soc: str, output_dir: str) -> list[str]:
    """atc for the single-op MatMul (docs §4a)."""
    return ["atc", f"--singleop={json_file}", f"--soc_version={soc}", f"--output={output_dir}"]


def _quoted(cmd: list[str]) -> str:
    # keep shell variables (${SOC}, ${MODELS}) expandable: double quotes, not shlex's single quotes
    return " \\\n    ".join(f'"{c}"' if ("$" in c or ";" in c) else shlex.quote(c) for c in cmd)


def write_recipe(out_dir: Path, model_path: Path, tile: TileShape, soc: str, matmul_type: str = "float") -> list[Path]:
    """Write the MatMul JSON and convert.sh into out_dir; returns the files written."""
    spec = load_spec(model_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / (matmul_om_name(tile)[: -len(".om")] + ".json")
    json_path.write_text(json.dumps(matmul_op_description(tile, matmul_type), indent=2) + "\n", encoding="utf-8")

    # paths in the script are relative to the script's own folder: no machine paths inside
    models_rel = os.path.relpath(model_path.resolve().parent, out_dir.resolve())
    stem = model_path.stem
    gen = generator_command(spec, "${SOC}", f"${{MODELS}}/{model_path.name}", f"${{MODELS}}/{stem}")
    mm = matmul_command(f"${{HERE}}/{json_path.name}", "${SOC}", "${MODELS}")
    socs = "\n".join(f"#   {name:<12} {products}" for name, products in SOC_VERSIONS.items())
    script = f"""#!/usr/bin/env bash
# Convert the generator and the MatMul chunk for the Ascend NPU (written by tools/atc/make_recipe.py).
# Needs the CANN toolkit: source /usr/local/Ascend/ascend-toolkit/set_env.sh (or your install's) first.
# Usage: ./convert.sh [SOC_VERSION]   (default: read from npu-smi, else {soc})
# --soc_version must match the chip that runs the model ("Ascend" + Name from `npu-smi info`):
{socs}
set -euo pipefail
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
MODELS="$(cd "${{HERE}}/{models_rel}" && pwd)"
SOC="${{1:-}}"
if [ -z "${{SOC}}" ] && command -v npu-smi >/dev/null 2>&1; then
    NAME="$(npu-smi info 2>/dev/null | awk '/^\\| [0-9]+ +[0-9A-Za-z]+ /{{print $3; exit}}')"
    [ -n "${{NAME}}" ] && SOC="Ascend${{NAME}}"
fi
SOC="${{SOC:-{soc}}}"
echo "converting for ${{SOC}}"

# 1. the generator: {model_path.name} -> {stem}.om (next to it; it shares the sidecar {stem}.json)
{_quoted(gen)}

# 2. the fixed-shape MatMul chunk ({tile.label}) -> {matmul_om_name(tile)} in the models folder
{_quoted(mm)}

ls -l "${{MODELS}}/{stem}.om" "${{MODELS}}/{matmul_om_name(tile)}"
"""
    sh_path = out_dir / "convert.sh"
    sh_path.write_text(script, encoding="utf-8")
    sh_path.chmod(0o755)
    return [json_path, sh_path]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "default.onnx",
                        help="the ONNX generator (its JSON sidecar must be next to it)")
    parser.add_argument("--chunk", default=DEFAULT_CHUNK,
                        help="MatMul chunk shape MxN or MxKxN (default %(default)s: 1024 rows and inner, 3072 columns)")
    parser.add_argument("--soc-version", default="Ascend310", choices=sorted(SOC_VERSIONS),
                        help="default chip if convert.sh gets none and npu-smi is absent")
    parser.add_argument("--matmul-type", default="float", choices=MATMUL_TYPES,
                        help="MatMul operand type; float16 if your chip has no float32 MatMul")
    parser.add_argument("--out", type=Path, default=REPO / "models" / "atc")
    args = parser.parse_args(argv)
    try:
        tile = TileShape.parse(args.chunk)
        written = write_recipe(args.out, args.model, tile, args.soc_version, args.matmul_type)
    except Exception as exc:  # noqa: BLE001 - a tool: one clear line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
