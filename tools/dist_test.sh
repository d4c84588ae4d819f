#!/usr/bin/env bash
# Usage: tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py args...]
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
exec bash "$(dirname "$0")/dist_run.sh" test.py "$GPUS" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
