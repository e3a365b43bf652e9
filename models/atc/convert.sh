#!/usr/bin/env bash
# Convert the generator and the MatMul chunk for the Ascend NPU (written by tools/atc/make_recipe.py).
# Needs the CANN toolkit: source /usr/local/Ascend/ascend-toolkit/set_env.sh (or your install's) first.
# Usage: ./convert.sh [SOC_VERSION]   (default: read from npu-smi, else Ascend310)
# --soc_version must match the chip that runs the model ("Ascend" + Name from `npu-smi info`):
#   Ascend310    Atlas 200 DK, Atlas 300I (inference card)
#   Ascend310B1  Atlas 200I DK A2, Orange Pi AIpro
#   Ascend310P3  Atlas 300I Pro / Duo, Atlas 300V
#   Ascend910    Atlas 300T / 800 training (first generation)
#   Ascend910B1  Atlas 800T A2 / 900 A2
#   Ascend910B2  Atlas 800T A2 / 900 A2
#   Ascend910B3  Atlas 800T A2 / 900 A2
#   Ascend910B4  Atlas 800I A2 / 300T A2
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODELS="$(cd "${HERE}/.." && pwd)"
SOC="${1:-}"
if [ -z "${SOC}" ] && command -v npu-smi >/dev/null 2>&1; then
    NAME="$(npu-smi info 2>/dev/null | awk '/^\| [0-9]+ +[0-9A-Za-z]+ /{print $3; exit}')"
    [ -n "${NAME}" ] && SOC="Ascend${NAME}"
fi
SOC="${SOC:-Ascend310}"
echo "converting for ${SOC}"

# 1. the generator: default.onnx -> default.om (next to it; it shares the sidecar default.json)
atc \
    "--model=${MODELS}/default.onnx" \
    --framework=5 \
    "--output=${MODELS}/default" \
    "--soc_version=${SOC}" \
    "--input_shape=image:1,3,256,256;mask:1,1,256,256" \
    --input_format=NCHW \
    --output_type=FP32 \
    --precision_mode=allow_fp32_to_fp16

# 2. the fixed-shape MatMul chunk (1024x1024x3072) -> matmul_1024x1024x3072.om in the models folder
atc \
    "--singleop=${HERE}/matmul_1024x1024x3072.json" \
    "--soc_version=${SOC}" \
    "--output=${MODELS}"

ls -l "${MODELS}/default.om" "${MODELS}/matmul_1024x1024x3072.om"
