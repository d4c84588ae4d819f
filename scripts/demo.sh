#!/usr/bin/env bash
# The README's main job, on the embedded generated data:
#   1. generate data/synthetic_coco if missing;
#   2. train Mask R-CNN with a ResNet-18-ADN backbone and Algorithm 1 (ADNDistillHook) on it;
#   3. evaluate four of its sub-networks with tools/test.py --cfg-options model.backbone.skip=... and print
#      their bbox and segm AP.
# Finished steps are reused on a re-run (RETRAIN=1 forces training again); WORK_DIR, SKIPS and EXTRA_TRAIN_ARGS
# (extra tools/train.py arguments for the detector) can be set from the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
CONFIG=configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py
WORK=${WORK_DIR:-work_dirs/demo_mask_rcnn_r18_adn}
SKIPS=${SKIPS:-"FFFF TTTT TTFF FFTT"}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
log() { echo "[demo $(date +%H:%M:%S)] $*"; }

# train CONFIG WORK_DIR [args...]: progress lines on screen, the whole log in WORK_DIR/train_console.log
train() {
    local config=$1 work=$2
    shift 2
    mkdir -p "$work"
    set +e
    $PY tools/train.py "$config" --work-dir "$work" "$@" 2>&1 | tee "$work/train_console.log" \
        | grep --line-buffered -E "Iter\(train\)|Iter\(val\)|ADNDistillHook: training"
    local rc=${PIPESTATUS[0]}
    set -e
    if [[ $rc -ne 0 ]]; then
        log "training $config failed (exit code $rc); the end of $work/train_console.log:"
        tail -30 "$work/train_console.log"
        exit "$rc"
    fi
}

if [[ ! -f data/synthetic_coco/annotations/instances_val2017.json ]]; then
    log "generating data/synthetic_coco"
    $PY tools/misc/make_synthetic_coco.py data/synthetic_coco
fi

CKPT=$(ls -t "$WORK"/iter_*.pth 2>/dev/null | head -1 || true)
if [[ -z "$CKPT" || -n "${RETRAIN:-}" ]]; then
    log "training $CONFIG with Algorithm 1"
    train "$CONFIG" "$WORK" ${EXTRA_TRAIN_ARGS:-}
    CKPT=$(ls -t "$WORK"/iter_*.pth | head -1)
fi

log "evaluating $CKPT"
printf '%-8s %-10s %-10s\n' skip bbox_mAP segm_mAP > "$WORK/subnet_ap.txt"
for skip in $SKIPS; do
    out=$($PY tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK/test_$skip" \
        --cfg-options model.backbone.skip=$skip 2>&1) \
        || { echo "$out" | tail -30; exit 1; }
    bbox=$(echo "$out" | grep -o 'coco/bbox_mAP: [0-9.]*' | tail -1 | awk '{print $2}')
    segm=$(echo "$out" | grep -o 'coco/segm_mAP: [0-9.]*' | tail -1 | awk '{print $2}')
    printf '%-8s %-10s %-10s\n' "$skip" "$bbox" "$segm" >> "$WORK/subnet_ap.txt"
done
log "AP of each sub-network (FFFF = super-net, TTTT = base-net, T = that stage skips its skippable blocks):"
cat "$WORK/subnet_ap.txt"
