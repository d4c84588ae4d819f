#!/usr/bin/env bash
# Idempotent setup of the reproducible CPU environment used by the README commands and CI.
#
# Creates .venv/ inside the repository (git-ignored), installs the pinned stack from
# requirements/constraints-cpu.txt, builds the mmcv wheel with its CPU ops once into a cache outside the
# repository (MMADN_CACHE, default ~/.cache/mmadn) and installs from that cache afterwards.
# A second run finds the environment up to date and returns in seconds.
#
# Switches (environment variables):
#   MMADN_VENV         where the environment goes (default: .venv in the repository)
#   MMADN_CACHE        where the built mmcv wheels are kept (default: ~/.cache/mmadn), keyed by torch version
#   MMADN_CONSTRAINTS  the exact pins to install (default: requirements/constraints-cpu.txt, the stack CI runs).
#                      requirements/constraints-torch21.txt is the second tested stack (torch 2.1.2, numpy 1.26,
#                      the newest torch with OpenMMLab's prebuilt mmcv 2.1.0 wheels); give it its own MMADN_VENV:
#   MMADN_CONSTRAINTS=requirements/constraints-torch21.txt MMADN_VENV=$HOME/venv-torch21 bash scripts/setup_env.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMADN_VENV:-$ROOT/.venv}"
CACHE="${MMADN_CACHE:-$HOME/.cache/mmadn}"
WHEELS="$CACHE/wheels"
PYTHON="${PYTHON:-python3}"
CONSTRAINTS="${MMADN_CONSTRAINTS:-requirements/constraints-cpu.txt}"
[[ "$CONSTRAINTS" == /* ]] || CONSTRAINTS="$ROOT/$CONSTRAINTS"
STAMP="$VENV/.mmadn-setup-stamp"

STEP="start"
log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() {
    local rc=$?
    log "FAILED at step '$STEP' (exit code $rc). Fix the cause printed above and re-run $0;"
    log "finished steps are kept, so the re-run continues from here."
    exit "$rc"
}
trap fail ERR

pin() { grep -E "^$1==" "$CONSTRAINTS" | head -1 | cut -d= -f3; }

# Everything that decides the environment's content goes into the stamp (the chosen constraints file by name and
# content): when it changes, we re-install.
fingerprint() {
    { echo "${CONSTRAINTS#"$ROOT"/}"
      cat "$CONSTRAINTS" "$ROOT/requirements.txt" "$ROOT/requirements/tests.txt" "$ROOT/requirements/deploy.txt" \
        "$ROOT/requirements/mim.txt" "$ROOT/pyproject.toml" "$ROOT/setup.py" "$0"; } | sha256sum | cut -d' ' -f1
}

STEP="check constraints"
[[ -f "$CONSTRAINTS" ]] \
    || { log "MMADN_CONSTRAINTS: no such file $CONSTRAINTS (the stacks: requirements/constraints-*.txt)"; false; }

STEP="check python"
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 9), sys.version' \
    || { log "Python >= 3.9 is needed (found: $("$PYTHON" --version 2>&1))"; false; }

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(fingerprint)" ]]; then
    log "environment $VENV is up to date (delete $STAMP to force a re-install)"
    exit 0
fi

STEP="create virtualenv"
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

STEP="install build tools and torch"
# mmcv's ops are built against one torch: when the torch of an existing environment changes (another constraints
# file, a new pin), mmcv is reinstalled below from the wheel built for the new one
HAD_TORCH="$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)"
log "installing torch $(pin torch), torchvision $(pin torchvision) and build tools (first time: a few minutes)"
"${PIP[@]}" install -q -c "$CONSTRAINTS" torch torchvision setuptools wheel ninja

MMCV_VERSION="$(pin mmcv)"
TORCH_VERSION="$(pin torch)"
PYTAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
# The wheel is ABI-bound to the torch it was built against, so the cache key names that torch.
MMCV_CACHE="$WHEELS/mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$PYTAG"

STEP="build mmcv wheel with CPU ops"
if ! ls "$MMCV_CACHE"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
    log "building mmcv $MMCV_VERSION with its CPU ops into $MMCV_CACHE (once; about 9 minutes on 2 cores)"
    mkdir -p "$MMCV_CACHE.tmp"
    # --no-build-isolation: the build must see the installed torch, or it silently produces mmcv without ops.
    src="$(mktemp -d)"
    "${PIP[@]}" download -q --no-deps --no-binary :all: -d "$src" "mmcv==$MMCV_VERSION"
    tar -xzf "$src/mmcv-$MMCV_VERSION.tar.gz" -C "$src"
    # mmcv 2.1.0 compiles its ops as C++14/17, but the headers of torch >= 2.10 need C++20; older torch builds
    # the source as released.
    if "$PY" -c 'import sys, torch; sys.exit(tuple(map(int, torch.__version__.split(".")[:2])) < (2, 10))'; then
        sed -i 's/-std=c++1[47]/-std=c++20/g' "$src/mmcv-$MMCV_VERSION/setup.py"
    fi
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "${PIP[@]}" wheel -q --no-deps --no-build-isolation \
        -w "$MMCV_CACHE.tmp" "$src/mmcv-$MMCV_VERSION"
    rm -rf "$src"
    whl="$(ls "$MMCV_CACHE.tmp"/mmcv-*.whl)"
    "$PY" -c 'import sys, zipfile; sys.exit(not any(n.startswith("mmcv/_ext") for n in zipfile.ZipFile(sys.argv[1]).namelist()))' "$whl" \
        || { log "the mmcv wheel $whl has no compiled ops (mmcv/_ext); refusing to cache it"; false; }
    rm -rf "$MMCV_CACHE" && mv "$MMCV_CACHE.tmp" "$MMCV_CACHE"
else
    log "using cached mmcv wheel from $MMCV_CACHE"
fi

STEP="install the OpenMMLab stack"
if [[ -n "$HAD_TORCH" && "$HAD_TORCH" != "$TORCH_VERSION" ]]; then
    log "torch changed from $HAD_TORCH to $TORCH_VERSION: reinstalling mmcv from the wheel built for it"
    "${PIP[@]}" install -q --no-deps --force-reinstall --no-index --find-links "$MMCV_CACHE" "mmcv==$MMCV_VERSION"
fi
log "installing mmcv (cached wheel), mmengine, mmdet, mmpretrain and test requirements"
"${PIP[@]}" install -q -c "$CONSTRAINTS" --find-links "$MMCV_CACHE" "mmcv==$MMCV_VERSION" \
    -r "$ROOT/requirements.txt" -r "$ROOT/requirements/tests.txt" -r "$ROOT/requirements/deploy.txt"

STEP="install openmim"
# mim train / mim test / mim search (requirements/mim.txt says why each package is there). --no-deps: openmim 0.3.9
# also requires opendatalab, whose openxlab pins setuptools~=60.2, requests~=2.28 and rich~=13.4 (it would downgrade
# the stack); none of mim's commands imports it.
log "installing openmim and what its commands import (requirements/mim.txt)"
"${PIP[@]}" install -q --no-deps -c "$CONSTRAINTS" -r "$ROOT/requirements/mim.txt"

STEP="install mmadn (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"

STEP="verify the stack"
"$PY" - <<'PY'
import mmcv, mmdet, mmengine, mmpretrain, torch, torchvision
from mmcv.ops import RoIAlign, nms  # fails when mmcv was built without its ops
import mim.commands, modelindex  # fails when a package that mim's commands import is missing (--no-deps above)
import mmadn
print(f'torch {torch.__version__}, torchvision {torchvision.__version__}, mmcv {mmcv.__version__}, '
      f'mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, mmpretrain {mmpretrain.__version__}')
PY

fingerprint > "$STAMP"
log "done: activate with 'source $VENV/bin/activate'"
