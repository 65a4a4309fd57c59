#!/usr/bin/env bash
# Everything this project needs a GPU for, as one short run for a lent device (issue 4's GPU
# checks; issue 5's TensorRT rows need TensorRT, which the lent image does not have, so the
# TensorRT test skips itself there). Writes into $OUT (default out/gpu-session):
#   device.txt          nvidia-smi: GPU, driver, memory; nvcc and torch versions
#   build.txt           CMake configure/build/ctest log (kernels; plugins where TensorRT headers exist)
#   pytest-gpu.txt      kernels vs the float64 oracle (fp32 1e-5, fp16 2e-3), TensorRT runner if present
#   fused_attention.json / .md   fused vs unfused per op at the attn3 shape, batch 1/8/32, fp32/fp16
# Then copy the files worth keeping into results/ with the date and device (README: Results).
#
#   bash benchmarks/gpu_session.sh            # about 5 minutes on an H100, most of it the build
set -uo pipefail
OUT=${OUT:-out/gpu-session}
ARCH=${ARCH:-native}  # one architecture: the lent device's (the full list takes much longer)
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
{
  date -u +%FT%TZ
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv
  nvcc --version | tail -2
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
} 2>&1 | tee "$OUT/device.txt"

python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . 2>&1 | tail -3

{
  cmake -S . -B build -G Ninja -DCMAKE_CUDA_ARCHITECTURES="$ARCH" && cmake --build build -j"$(nproc)" && (cd build && ctest --output-on-failure)
} > "$OUT/build.txt" 2>&1
echo "build: exit $? (log in $OUT/build.txt)"

python3 -m pytest -m gpu -p no:cacheprovider -q tests/kernels/test_cuda_kernels.py tests/runtime/test_tensorrt_runner.py 2>&1 | tee "$OUT/pytest-gpu.txt" | tail -15

python3 benchmarks/fused_attention.py --out "$OUT/fused_attention.json" 2>&1 | tee "$OUT/fused_attention.md"
