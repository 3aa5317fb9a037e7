#!/usr/bin/env bash
# Compile-and-link check of the CUDA kernels on a machine WITHOUT a GPU (needs a CUDA build of
# torch in the active Python and nvcc): the Python first-use build with CUDA (cuda_kernels() must
# then be True) and the CMake build of libbpnn with CUDA. Several minutes (nvcc instantiates the
# kernels for float, double and both dual depths), so it is a script, not a test. E.g.
#   . /path/to/cuda-torch-venv/bin/activate
#   CUDA_HOME=/usr/local/cuda-13.0 bash benchmarks/gpu/compile_check.sh [build folder]
set -eu -o pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${1:-/tmp/bpnn-build-cuda}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/bpnn-te-cuda}
NVCC=${CUDA_HOME:-/usr/local/cuda}/bin/nvcc

echo "== Python build (torch.utils.cpp_extension) with CUDA, arch $TORCH_CUDA_ARCH_LIST"
start=$(date +%s)
PYTHONPATH=$ROOT python -c '
import sys, torch
from bpnn_ts.native import cuda_build, load_error, load_ops
print("torch", torch.__version__, "cuda", torch.version.cuda, "cuda_build", cuda_build())
ok = load_ops()
print("loaded", ok, load_error()[-3000:])
print("cuda_kernels", ok and torch.ops.bpnn.cuda_kernels())
sys.exit(0 if ok and torch.ops.bpnn.cuda_kernels() else 1)'
echo "Python build: $(( $(date +%s) - start )) s"

echo "== CMake build of libbpnn with CUDA (torch's CMake takes the architectures from TORCH_CUDA_ARCH_LIST)"
start=$(date +%s)
# torch's CMake looks for the toolkit's libraries; a pip-installed nvrtc is found here
NVRTC=$(python -c 'import glob, os, torch; print((glob.glob(os.path.join(os.path.dirname(torch.__file__), "..", "nvidia", "cu*", "lib", "libnvrtc.so.*[0-9]")) + [""])[0])')
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_PREFIX_PATH="$(python -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
      -DPython3_EXECUTABLE="$(command -v python)" -DCMAKE_CUDA_COMPILER="$NVCC" -DCUDA_TOOLKIT_ROOT_DIR="$(dirname "$(dirname "$NVCC")")" \
      ${NVRTC:+-DCUDA_nvrtc_LIBRARY=$NVRTC} -DBPNN_CUDA=ON -DBPNN_LAMMPS_PLUGIN=OFF ${CMAKE_EXTRA:-}
cmake --build "$BUILD" -j "$(nproc)" --target bpnn bpnn_run bpnn_emulation
echo "CMake build: $(( $(date +%s) - start )) s"
BPNN_OPS_LIBRARY=$BUILD/cpp_loader/libbpnn.so PYTHONPATH=$ROOT python -c '
import torch
from bpnn_ts.native import load_error, load_ops
assert load_ops(), load_error()
print("libbpnn.so cuda_kernels", torch.ops.bpnn.cuda_kernels())
assert torch.ops.bpnn.cuda_kernels()'
