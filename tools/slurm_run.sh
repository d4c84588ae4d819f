#!/usr/bin/env bash
# Usage: [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] [PYTHON=python] \
#     tools/slurm_run.sh PARTITION JOB_NAME TOOL [TOOL args...]
# One srun task per GPU running tools/TOOL (train.py, test.py), mmadn on PYTHONPATH; mmengine reads the ranks from
# slurm (--launcher slurm, which the callers pass), as in mmdet's scripts. What tools/slurm_train.sh and
# tools/slurm_test.sh start, each with its own arguments.
set -euo pipefail
if [[ $# -lt 3 ]]; then
    echo "usage: $0 PARTITION JOB_NAME TOOL [TOOL args...]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
TOOL=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(( GPUS < 8 ? GPUS : 8 ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PY=${PYTHON:-python}
TOOLS="$(cd "$(dirname "$0")" && pwd)"

set -x
# SRUN_ARGS is split into words on purpose: it holds several srun options
# shellcheck disable=SC2086
PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "$PY" -u "$TOOLS/$TOOL" "${@:4}"
