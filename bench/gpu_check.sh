#!/usr/bin/env bash
# One-shot GPU verification of fspai's CUDA path, from a clean checkout on an H100/H200 machine:
#   1. build the CUDA extension (sm_90 by default; FSPAI_CUDA_ARCHITECTURES overrides),
#   2. run tests/test_cuda.py (GPU kernels against the CPU path),
#   3. run the GPU benchmarks (bench/bench_cuda.py) and write a markdown table,
#   4. if time is left, a compute-sanitizer memcheck pass over a few GPU tests.
# Output: $OUT if set (the device tool's result folder), else bench/gpu_results/:
#   gpu_check.log, gpu_bench.md, gpu_bench.json, test_cuda.xml, sanitizer.log
# Needs: nvcc, cmake, python3 with numpy, scipy, pytest, pybind11, scikit-build-core, and torch
# with CUDA or CuPy (the benchmark generates its masks on the GPU). Installs nothing from the
# network: the extension goes into a private folder on PYTHONPATH. Budget: under 8 minutes.
# Exit status: 0 all passed; 1 tests failed; 2 environment/build problem; 3 benchmark failed.
set -uo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
OUTDIR="${OUT:-bench/gpu_results}"
mkdir -p "$OUTDIR"
LOG="$OUTDIR/gpu_check.log"
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
elapsed() { echo $(( $(date +%s) - START )); }
step() { echo; echo "=== [$(elapsed) s] $*"; }
die() { echo "gpu_check: $*"; exit "${2:-2}"; }

step "environment"
git log -1 --oneline 2>/dev/null || true
nvidia-smi -L || die "nvidia-smi failed: no GPU visible"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
command -v nvcc >/dev/null || export PATH="$PATH:/usr/local/cuda/bin"
command -v nvcc >/dev/null && nvcc --version | tail -2 || die "nvcc not found"
export CUDACXX="${CUDACXX:-$(command -v nvcc)}"
"$PY" - <<'EOF' || die "python packages missing (see above)"
import importlib, sys
print(sys.version.split()[0], sys.executable)
missing = [m for m in ("numpy", "scipy", "pytest", "pybind11", "scikit_build_core") if importlib.util.find_spec(m) is None]
gpu = []
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
    if torch.cuda.is_available():
        gpu.append("torch")
except ImportError:
    print("torch: not installed")
try:
    import cupy
    print("cupy", cupy.__version__, "devices", cupy.cuda.runtime.getDeviceCount())
    gpu.append("cupy")
except Exception as exc:
    print("cupy: unavailable:", exc)
if missing:
    sys.exit(f"missing python modules: {missing}")
if not gpu:
    sys.exit("neither torch with CUDA nor CuPy can reach the GPU: GPU tests and benchmarks need one")
EOF

step "build (FSPAI_CUDA=ON)"
SITE="$(pwd)/build/gpu-site"
rm -rf "$SITE"
export FSPAI_CUDA=ON FSPAI_CUDA_ARCHITECTURES="${FSPAI_CUDA_ARCHITECTURES:-90}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
timeout 300 "$PY" -m pip install --no-build-isolation --no-deps --no-index --disable-pip-version-check \
  -Cbuild-dir=build/gpu --target "$SITE" . || die "build failed"
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "
import fspai, json
from fspai import _device
info = fspai.build_info(); print(json.dumps(info)); print(json.dumps(_device.cuda_info()))
assert info['cuda'], 'extension built without CUDA'
assert _device.available(), 'CUDA build cannot use the device: ' + _device.cuda_info()['status']
" || die "the CUDA build does not see the device"
command -v cuobjdump >/dev/null && cuobjdump --list-elf "$(ls "$SITE"/fspai/_core*.so)" | head -5 || true

step "tests/test_cuda.py"
timeout 300 "$PY" -m pytest tests/test_cuda.py -q -rs -p no:cacheprovider --junitxml="$OUTDIR/test_cuda.xml"
TESTS=$?
echo "tests exit status: $TESTS"

step "benchmarks (bench/bench_cuda.py)"
BUDGET=$(( 450 - $(elapsed) ))
[ "$BUDGET" -lt 60 ] && BUDGET=60
timeout "$BUDGET" "$PY" bench/bench_cuda.py --out "$OUTDIR" --candidates "${FSPAI_GPU_CANDIDATES:-1000}"
BENCH=$?
echo "benchmark exit status: $BENCH"

if [ "$(elapsed)" -lt 400 ] && command -v compute-sanitizer >/dev/null; then
  step "compute-sanitizer memcheck (a few GPU tests)"
  timeout $(( 470 - $(elapsed) )) compute-sanitizer --tool memcheck --log-file "$OUTDIR/sanitizer.log" \
    "$PY" -m pytest tests/test_cuda.py -q -x -p no:cacheprovider -k "step_kernels or batch_of or edge_cases or group_degrees" \
    && echo "memcheck: clean" || echo "memcheck: FAILED or unsupported (see sanitizer.log)"
else
  echo "compute-sanitizer skipped (time or tool)"
fi

step "done in $(elapsed) s: tests=$TESTS bench=$BENCH; table: $OUTDIR/gpu_bench.md"
[ -f "$OUTDIR/gpu_bench.md" ] && cat "$OUTDIR/gpu_bench.md"
[ "$TESTS" -ne 0 ] && exit 1
[ "$BENCH" -ne 0 ] && exit 3
exit 0
