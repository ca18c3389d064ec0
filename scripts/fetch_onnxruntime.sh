#!/usr/bin/env bash
# Find ONNX Runtime's C/C++ headers and library for the C++ build (docs/design.md §8) and print the
# root of a release-style layout (include/ + lib/) on stdout.
#
#   1. $ONNXRUNTIME_ROOT, when set (an official release tarball's layout);
#   2. otherwise headers from a system install (/usr/include/onnxruntime), else Debian's
#      libonnxruntime-dev (suite trixie) downloaded with a private apt state (the system's apt
#      lists and sources are untouched) and unpacked into $DEST;
#      the library from the `onnxruntime` wheel of $PYTHON (libonnxruntime.so.1.* in capi/),
#      symlinked as lib/libonnxruntime.so.
#
#   scripts/fetch_onnxruntime.sh [DEST]   (default: build/onnxruntime)
set -euo pipefail
if [[ -n "${ONNXRUNTIME_ROOT:-}" ]]; then
    [[ -f "$ONNXRUNTIME_ROOT/include/onnxruntime_c_api.h" ]] || {
        echo "error: ONNXRUNTIME_ROOT=$ONNXRUNTIME_ROOT has no include/onnxruntime_c_api.h" >&2
        exit 2
    }
    echo "$ONNXRUNTIME_ROOT"
    exit 0
fi
dest=$(mkdir -p "${1:-build/onnxruntime}" && cd "${1:-build/onnxruntime}" && pwd)
python=${PYTHON:-.venv/bin/python}
mkdir -p "$dest/include" "$dest/lib"
if [[ ! -f "$dest/include/onnxruntime_c_api.h" ]]; then
    if [[ -f /usr/include/onnxruntime/onnxruntime_c_api.h ]]; then
        cp /usr/include/onnxruntime/*.h "$dest/include/"
    else
        apt_dir="$dest/apt"
        mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
        echo "deb http://deb.debian.org/debian trixie main" > "$apt_dir/sources.list"
        apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
            -o "APT::Architecture=amd64" -o "Debug::NoLocking=1")
        apt-get "${apt_opts[@]}" -qq update >&2
        (cd "$apt_dir" && apt-get "${apt_opts[@]}" -qq download libonnxruntime-dev >&2)
        dpkg -x "$apt_dir"/libonnxruntime-dev_*.deb "$apt_dir/root"
        cp "$apt_dir"/root/usr/include/onnxruntime/*.h "$dest/include/"
    fi
fi
lib=$("$python" -c "import glob, os, onnxruntime; print(sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi', 'libonnxruntime.so.1*')))[-1])")
ln -sf "$lib" "$dest/lib/libonnxruntime.so"
ln -sf "$lib" "$dest/lib/libonnxruntime.so.1"
echo "$dest"
