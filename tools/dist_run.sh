#!/usr/bin/env bash
# Usage: [NNODES=1] [NODE_RANK=0] [PORT=29500] [MASTER_ADDR=127.0.0.1] tools/dist_run.sh TOOL NPROC [TOOL args...]
# Runs tools/TOOL (train.py, test.py) in NPROC processes under torchrun, mmadn on PYTHONPATH: what
# tools/dist_train.sh and tools/dist_test.sh start, each with its own arguments; without GPUs the processes use gloo.
TOOL=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
python -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/$TOOL" \
    "${@:3}"
