#!/usr/bin/env bash
# CUDA checks for a GPU machine (never part of CI: CI machines have no GPU).
#
# Runs the CUDA-marked tests (TorchScript on CUDA vs CPU, the ONNX Runtime CUDA provider vs CPU,
# CUDA torch tensors bound through IO binding) and a CPU-vs-CUDA bench of resnet18, against the
# python3 that holds a CUDA build of torch. onnxruntime-gpu and onnxsim are taken from
# $EDGEPORT_SITE when the machine's own python lacks them (the device tool cannot fetch packages).
#
#   OUT=/tmp/out scripts/device_check.sh
set -u
OUT=${OUT:-/tmp/edgeport-device}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
site=$($PY -c "import site; print(site.getsitepackages()[0])")
# onnxruntime-gpu's CUDA provider links libcublas/libcudart/libcudnn: use the ones torch ships.
cuda_libs=$(find "$site/nvidia" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd:)
export LD_LIBRARY_PATH="${cuda_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONPATH="$PWD/src${EDGEPORT_SITE:+:$EDGEPORT_SITE}"
export PYTHONUNBUFFERED=1

{
    echo "== machine"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    $PY - <<'EOF'
import onnxruntime as ort, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available())
print("onnxruntime", ort.__version__, ort.get_available_providers())
EOF
    echo "== CUDA tests"
    $PY -m pytest -q -p no:cacheprovider -m cuda -rA tests/test_session.py
    echo "pytest exit: $?"
    echo "== provider policy tests"
    $PY -m pytest -q -p no:cacheprovider -rA tests/test_session.py -k "provider or fallback"
    echo "pytest exit: $?"
    echo "== resnet18: export, then bench on cpu and cuda"
    b=/tmp/edgeport-r18
    rm -rf "$b"
    $PY -m edgeport export torchvision:resnet18 --input input:1x3x224x224 \
        --dynamic input:0=batch --out "$b" && \
    $PY -m edgeport run "$b" --provider cuda --json && \
    $PY -m edgeport bench "$b" --providers cpu,cuda --batch 1,8 --duration 3 \
        --json > "$OUT/bench_cuda.json"
    echo "bench exit: $?"
    cp "$b/report.md" "$OUT/bench_cuda.md" 2>/dev/null && cat "$OUT/bench_cuda.md"
} 2>&1 | tee "$OUT/device_check.log"
