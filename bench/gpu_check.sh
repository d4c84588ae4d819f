#!/usr/bin/env bash
# The GPU check of issue 34 on a single-GPU machine without network (bench/gpu_check.py says what it runs).
#
# Here, where pip's index is reachable, once:   bash bench/gpu_wheels.sh          (fills the git-ignored .whl/)
# There, from the repository root, .whl/ carried:
#     bash bench/gpu_check.sh [--out-dir DIR] [--steps ...] [--time-limit SECONDS]
# Results: DIR/gpu_check.md (DIR: $OUT if set, else work_dirs/gpu_check). Needs about 10 minutes; the exit code is
# 0 only when every step passed, and the results file says which did not and why.
# CPU dry run (tests/test_gpu_check.py):  PYTHON=.venv/bin/python bash bench/gpu_check.sh --dry-run
# More: docs/gpu_check.md.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec "${PYTHON:-python3}" bench/gpu_check.py "$@"
