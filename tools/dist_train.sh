#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG NPROC [train.py args...]; on a CPU-only machine the processes use gloo.
CONFIG=$1
GPUS=$2
exec bash "$(dirname "$0")/dist_run.sh" train.py "$GPUS" "$CONFIG" --launcher pytorch "${@:3}"
