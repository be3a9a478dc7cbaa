#!/usr/bin/env bash
# The GPU half of issue 15 in one run on a CUDA machine (CuPy, PyTorch with CUDA, no network):
#   1. the device-parametrised tests on the real GPU (the `gpu` cases; cpu and stand-in skipped),
#   2. every shipped spec trained in full on both devices: the same curve (benchmarks/curves.py),
#   3. a two-variant sweep with --device gpu (one worker process per GPU),
#   4. the GPU rows of benchmarks/devices.py: bpcli on CuPy against PyTorch CUDA.
# Results go to $OUT (the device tool sets it; default benchmarks/results/gpu).
#
# Such a machine takes bpcli with pip --no-deps, and the pure-Python packages it lacks (pytest,
# hypothesis, threadpoolctl) from .gpu_deps, made beforehand on a machine with network by
# `make gpu-deps` and carried along. Each step has its own time limit, so a slow one cannot eat
# the next one's time; the whole takes under 9 minutes (520 s at most).
set -uo pipefail
PY=${PY:-python}
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/.gpu_deps${PYTHONPATH:+:$PYTHONPATH}"
step() { echo "== $* ($(date +%T))"; }

step install
$PY -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2
step versions
$PY - <<'PY' 2>&1 | tee "$OUT/versions.txt"
import platform, numpy
print("python", platform.python_version(), "numpy", numpy.__version__)
try:
    import cupy
    print("cupy", cupy.__version__, cupy.cuda.runtime.getDeviceProperties(0)["name"].decode())
except Exception as e:
    print("cupy:", type(e).__name__, e)
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())
except Exception as e:
    print("torch:", type(e).__name__, e)
PY
step tests
timeout 240 $PY -m pytest -q -p no:cacheprovider --continue-on-collection-errors -rs \
    -k "gpu and not stand or record_of_cupy" tests/test_primitives.py tests/test_devices.py tests/test_layers.py \
    tests/test_dropout_batchnorm.py tests/test_losses.py tests/test_optim.py tests/test_engine.py \
    tests/test_regularization.py > "$OUT/pytest.txt" 2>&1
echo "pytest exit $?"; tail -25 "$OUT/pytest.txt"
step curves
timeout 120 $PY benchmarks/curves.py --out "$OUT"
step sweep
timeout 60 $PY -c "from bpcli.cli import run; run()" sweep specs/pulse_cnn.yaml --grid optimizer.lr=0.003,0.001 --epochs 2 \
    --device gpu --out "$OUT/sweep" && cat "$OUT/sweep/sweep.csv"
step bench
timeout 90 $PY benchmarks/devices.py --devices gpu --batches 100 4096 --rounds 3 --out "$OUT"
step done
