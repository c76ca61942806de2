#!/usr/bin/env bash
# The GPU benchmark of docs/gpu.md, prepared for a machine with a GPU (no network needed there).
#
# Here (build machine):  cargo build --release --features gpu
# Take to the GPU machine: target/release/relevance, tools/, and — where the machine has no Vulkan
# loader — libvulkan.so.1 (Debian's libvulkan1) in a folder named by RELEVANCE_VULKAN_LIB; NVIDIA's
# driver brings its Vulkan ICD (/usr/share/vulkan/icd.d/nvidia_icd.json or /etc/vulkan/icd.d/).
# Python side: torch with CUDA, torchvision, zennit, zennit-crp, grad-cam (wheels in WHEELS, if given).
#
# Usage: tools/gpu-bench.sh [BINARY] [OUT]
#   Runs `relevance bench --devices`, then ResNet-50 and VGG-16 at 224², batch 1 and 32: forward,
#   Grad-CAM, LRP ε-z⁺-♭ and CRP-32, relevance --device gpu beside PyTorch / pytorch-grad-cam /
#   zennit / zennit-crp on CUDA (tools/bench_compare.py --device cuda). Output: OUT/gpu-bench.md.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
binary="${1:-$here/target/release/relevance}"
out="${2:-${OUT:-$here/gpu-bench-out}}"
mkdir -p "$out"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
if [ -n "${RELEVANCE_VULKAN_LIB:-}" ]; then
  export LD_LIBRARY_PATH="$RELEVANCE_VULKAN_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if [ -n "${WHEELS:-}" ]; then
  python3 -m pip install --no-index --find-links "$WHEELS" zennit zennit-crp grad-cam >/dev/null
fi
report="$out/gpu-bench.md"
{
  echo "# relevance on a GPU — $(date -u +%Y-%m-%d)"
  echo
  echo '```'
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
  "$binary" bench --devices
  echo '```'
} | tee "$report"
# A quick end-to-end check before the long run: one small row on the GPU.
"$binary" bench --device gpu --arch resnet18 --batch 1 --size 64 --workload forward,lrp --repeat 1 | tee -a "$report"
for batch in 1 32; do
  python3 "$here/tools/bench_compare.py" --device cuda --binary "$binary" --arch resnet50,vgg16 \
    --batch "$batch" --workload forward,grad-cam,lrp,crp32 --size 224 --repeat 5 --threads "$(nproc)" \
    | tee -a "$report"
done
echo "table written to $report"
