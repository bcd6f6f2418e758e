#!/usr/bin/env bash
# The GPU checks of issue 11 in one prepared run, for a session that has a CUDA machine.
#
#   benchmarks/gpu_check.sh --fetch     # where pip reaches a package index: put the pure-Python
#                                       # wheels a bare GPU image may lack into .whl/
#   benchmarks/gpu_check.sh [OUTDIR]    # on the GPU machine, from anywhere in the checkout
#
# It runs, each under its own time limit so that one hang cannot eat the rest:
#   1. the cupy test session (pytest with POLYMLP_TEST_BACKENDS=cupy, as `nox -s cupy` does),
#   2. `polymlp reproduce --backend cupy`,
#   3. the GPU benchmark section (polymlp on CuPy against PyTorch CUDA eager on W2 and on
#      4096-4096-4096-10 at batch 4096: samples/s, GEMM peak).
# Logs and the JSON results go to OUTDIR (default $OUT if set, else ./gpu-check), at most eight
# files. The three limits add up to under 8 minutes, so the whole check fits one call of a
# 10-minute device command. Missing packages are installed from .whl/ without an index
# (nothing else is fetched); CuPy and PyTorch with CUDA must already be there. The exit status is the number of failed steps.
set -u -o pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ "${1:-}" = "--fetch" ]; then
    mkdir -p .whl
    "$PY" -m pip download --no-deps --only-binary=:all: -d .whl "array-api-compat==1.16.0"
    exit $?
fi

OUTDIR=${1:-${OUT:-gpu-check}}
mkdir -p "$OUTDIR"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

if ! "$PY" -c "import array_api_compat" 2>/dev/null; then
    if ls .whl/*.whl >/dev/null 2>&1; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/polymlp-site .whl/*.whl || exit 90
        export PYTHONPATH=/tmp/polymlp-site
    else
        echo "array-api-compat is missing and .whl/ holds no wheels: run '$0 --fetch' where an index is reachable" >&2
        exit 91
    fi
fi
export PYTHONPATH="$PWD:$PWD/plugins/polymlp-extras/src${PYTHONPATH:+:$PYTHONPATH}"

failed=0
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to OUTDIR/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s): $*"
    local t0=$SECONDS
    timeout "$limit" "$@" >"$OUTDIR/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$OUTDIR/$name.log"
    echo "== $name: exit $rc after $((SECONDS - t0))s"
    [ $rc -eq 0 ] || failed=$((failed + 1))
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
  "$PY" -c "import cupy, numpy; print('cupy', cupy.__version__, 'devices', cupy.cuda.runtime.getDeviceCount(), 'numpy', numpy.__version__)" 2>&1
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1
} | tee "$OUTDIR/environment.txt"

step cupy-tests 180 env POLYMLP_TEST_BACKENDS=cupy "$PY" -m pytest tests -q -x -p no:cacheprovider
if ! grep -q " passed" "$OUTDIR/cupy-tests.log"; then  # all skipped: CuPy saw no device
    echo "== cupy-tests: nothing ran on CuPy (every test skipped): counted as a failure"
    failed=$((failed + 1))
fi
rep=$(mktemp -d)
step reproduce 90 "$PY" -m polymlp reproduce --backend cupy --out "$rep"
cp "$rep/reproduce.json" "$OUTDIR/reproduce.json" 2>/dev/null
rm -rf "$rep"
step gpu-bench 200 "$PY" benchmarks/run.py --sections gpu --repeats 2 --out "$OUTDIR/gpu-bench.json"
echo "failed steps: $failed (outputs in $OUTDIR)"
exit $failed
