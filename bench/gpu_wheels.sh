#!/usr/bin/env bash
# Download into .whl/ (git-ignored) every package bench/gpu_check.sh needs on the GPU machine, which has no network:
#
#     bash bench/gpu_wheels.sh        # here, with pip's index reachable
#
# The list and its pins are bench/gpu_wheels.txt. Wheels are fetched for that machine (CPython 3.12, manylinux
# x86-64); mmcv 2.1.0 has no wheel for its torch, so its source distribution travels and gpu_check.sh builds its
# CUDA ops there. Prints the total size: what travels to the device machine is limited to 64 MiB in all.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/.whl}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
CONSTRAINTS="$ROOT/requirements/constraints-cpu.txt"
# pip matches manylinux_2_N exactly, so name every N the wheels of this list use
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64
           manylinux2014_x86_64 manylinux1_x86_64)

pinned() {  # NAME or NAME==VERSION -> NAME==VERSION
    if [[ "$1" == *==* ]]; then echo "$1"; return; fi
    local version
    version="$(grep -iE "^$1==" "$CONSTRAINTS" | head -1 | cut -d= -f3)"
    [[ -n "$version" ]] || { echo "no pin for $1 in $CONSTRAINTS" >&2; exit 1; }
    echo "$1==$version"
}

mkdir -p "$DEST"
rm -f "$DEST"/*.whl "$DEST"/*.tar.gz  # one version of each: two stop the install there
wheels=()
while read -r line; do
    line="${line%%#*}"; line="${line// /}"
    [[ -z "$line" ]] && continue
    spec="$(pinned "$line")"
    if [[ "$spec" == mmcv==* ]]; then
        "$PY" -m pip download -q --no-deps --no-binary=:all: -d "$DEST" "$spec"
    else
        wheels+=("$spec")
    fi
done < "$ROOT/bench/gpu_wheels.txt"

platform_args=()
for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platform_args[@]}" -d "$DEST" "${wheels[@]}"

ls -l "$DEST"
total="$(du -cb "$DEST"/* | tail -1 | cut -f1)"
echo "total: $((total / 1024)) KiB in $(ls "$DEST" | wc -l) files ($DEST; what travels is limited to 64 MiB)"
