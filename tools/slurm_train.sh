#!/usr/bin/env bash
# Usage: [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#     tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
# One srun task per GPU (tools/slurm_run.sh); mmengine reads the ranks from slurm, as in mmdet's script.
set -euo pipefail
if [[ $# -lt 4 ]]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/slurm_run.sh" "$1" "$2" train.py "$3" --work-dir="$4" --launcher=slurm "${@:5}"
