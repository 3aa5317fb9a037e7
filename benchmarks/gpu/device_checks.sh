#!/usr/bin/env bash
# The GPU checks of the fused CUDA kernels in one run (benchmarks/gpu/README.md says how to call
# it through the device tool): build the ops with CUDA for the H200 (sm_90), run the CUDA tests
# against the CPU kernels, count the host syncs of a forward, benchmark the n2p2 water potential.
# Logs and results go to $OUT (the device tool's folder) or ./gpu_out. Each step has its own time
# limit; about 8 minutes in all.
set -u -o pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} TORCH_EXTENSIONS_DIR=/tmp/bpnn_te MAX_JOBS=16
if ls .whl/*.whl >/dev/null 2>&1; then  # packages the image lacks (ase), carried as wheels
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
DATA=${BPNN_N2P2_DATA:-.gpu_data/n2p2}  # H2O_RPBE-D3 and H2O_RPBE-D3-train (GPL: carried, not committed)

{ nvidia-smi; nvcc --version; python3 -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())'; } \
  > "$OUT/machine.txt" 2>&1

echo "== 1. build (nvcc, sm_90)"
start=$(date +%s)
timeout 300 python3 -c '
import torch
from bpnn_ts.native import cuda_build, load_error, load_ops
print("cuda_build", cuda_build()); ok = load_ops(); print("loaded", ok, load_error())
print("cuda_kernels", ok and torch.ops.bpnn.cuda_kernels())' 2>&1 | tee "$OUT/build.log"
echo "build seconds: $(( $(date +%s) - start ))" | tee -a "$OUT/build.log"

echo "== 2. tests: CUDA ops and models == CPU kernels"
# The host-emulation tests need the CMake build's test-only library (minutes to build); they run on
# every CPU machine, so here they skip: BPNN_BUILD_DIR names a build that is not there.
BPNN_BUILD_DIR=/tmp/bpnn_no_cmake_build timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_cuda_kernels.py \
  2>&1 | tee "$OUT/tests.log"

echo "== 3. host syncs per forward on CUDA (docs/architecture.md, 'Host synchronisation on CUDA')"
timeout 90 python3 -m pytest -q -s -p no:cacheprovider tests/test_cuda_syncs.py 2>&1 | tee "$OUT/syncs.log"

echo "== 4. benchmark: n2p2 water, 1,000 to 1,000,000 atoms, float64 and float32"
if [ -d "$DATA" ]; then
  timeout 240 python3 benchmarks/bench_gpu.py --data "$DATA" --atoms 1000 10000 100000 1000000 \
    --dtypes float64 float32 --repeats 3 --out "$OUT/bench_gpu.jsonl" 2>&1 | tee "$OUT/bench.log"
else
  echo "no n2p2 data at $DATA: benchmark skipped" | tee "$OUT/bench.log"
fi
