#!/usr/bin/env bash
# libedgeport's CUDA path on a GPU machine (never part of CI): edgeport-run verify/run/bench with
# --provider cuda against the CPU, using onnxruntime-gpu's library ($ORT_LIB: the wheel's capi/
# folder) and the CUDA libraries of the machine's torch.
#
#   ORT_LIB=.../onnxruntime/capi EDGEPORT_RUN=build/cpp/edgeport-run \
#       scripts/device_cpp_check.sh BUNDLE [BUNDLE ...]
set -u
OUT=${OUT:-/tmp/edgeport-device}
mkdir -p "$OUT"
run=${EDGEPORT_RUN:-build/cpp/edgeport-run}
site=$(python3 -c "import site; print(site.getsitepackages()[0])")
cuda_libs=$(find "$site/nvidia" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd:)
ln -sf "$(ls "$ORT_LIB"/libonnxruntime.so.1.* | head -1)" "$ORT_LIB/libonnxruntime.so.1"
export LD_LIBRARY_PATH="$ORT_LIB:$cuda_libs"
{
    for bundle in "$@"; do
        echo "== $bundle"
        "$run" verify "$bundle" --provider cuda; echo "verify exit: $?"
        "$run" run "$bundle" --provider cuda --output "$OUT/cuda" && \
            "$run" run "$bundle" --output "$OUT/cpu" && python3 - "$OUT" <<'PY'
import sys, pathlib, numpy as np
out = pathlib.Path(sys.argv[1])
for f in sorted((out / "cuda").glob("*.npy")):
    a, b = np.load(f), np.load(out / "cpu" / f.name)
    print(f"{f.stem}: cuda vs cpu max abs diff {np.abs(a - b).max():.3g}")
PY
        "$run" bench "$bundle" --provider cuda --duration 2; echo "bench exit: $?"
        "$run" bench "$bundle" --duration 2
    done
    echo "== fail closed: the machine's CPU-only onnxruntime, asked for cuda"
    cpu_ort=$(python3 -c "import glob, os, onnxruntime; print(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi', 'libonnxruntime.so.1*'))[0])")
    EDGEPORT_ONNXRUNTIME="$cpu_ort" "$run" run "$1" --provider cuda; echo "exit (2 expected): $?"
    EDGEPORT_ONNXRUNTIME="$cpu_ort" "$run" run "$1" --provider cuda --allow-fallback
} 2>&1 | tee "$OUT/device_cpp_check.log"
