#!/usr/bin/env bash
# The README's main job, on the embedded generated data:
#   1. generate data/synthetic_coco if missing;
#   2. train Mask R-CNN with a ResNet-18-ADN backbone and ADN's Algorithm 1 (ADNDistillHook);
#   3. evaluate four of its sub-networks with tools/test.py --cfg-options model.backbone.skip=...
#   4. print their bbox and segm AP.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
CONFIG=configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py
WORK=${WORK_DIR:-work_dirs/demo_mask_rcnn_r18_adn}
SKIPS=${SKIPS:-"FFFF TTTT TTFF FFTT"}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

if [[ ! -f data/synthetic_coco/annotations/instances_val2017.json ]]; then
    echo "[demo] generating data/synthetic_coco"
    $PY tools/misc/make_synthetic_coco.py data/synthetic_coco
fi

CKPT=$(ls -t "$WORK"/iter_*.pth 2>/dev/null | head -1 || true)
if [[ -z "$CKPT" || -n "${RETRAIN:-}" ]]; then
    echo "[demo] training $CONFIG with ADNDistillHook (full log: $WORK/train_console.log)"
    mkdir -p "$WORK"
    set +e
    $PY tools/train.py "$CONFIG" --work-dir "$WORK" 2>&1 | tee "$WORK/train_console.log" \
        | grep --line-buffered -E "Iter\(train\)|ADNDistillHook: training"
    rc=${PIPESTATUS[0]}
    set -e
    if [[ $rc -ne 0 ]]; then
        echo "[demo] training failed (exit code $rc); the end of $WORK/train_console.log:"
        tail -30 "$WORK/train_console.log"
        exit "$rc"
    fi
    CKPT=$(ls -t "$WORK"/iter_*.pth | head -1)
fi
echo "[demo] evaluating $CKPT"

printf '\n%-8s %-10s %-10s\n' skip bbox_mAP segm_mAP > "$WORK/subnet_ap.txt"
for skip in $SKIPS; do
    out=$($PY tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK/test_$skip" --cfg-options model.backbone.skip=$skip 2>&1) \
        || { echo "$out" | tail -30; exit 1; }
    bbox=$(echo "$out" | grep -o 'coco/bbox_mAP: [0-9.]*' | tail -1 | awk '{print $2}')
    segm=$(echo "$out" | grep -o 'coco/segm_mAP: [0-9.]*' | tail -1 | awk '{print $2}')
    printf '%-8s %-10s %-10s\n' "$skip" "$bbox" "$segm" | tee -a "$WORK/subnet_ap.txt"
done
echo "[demo] AP of each sub-network (FFFF = super-net, TTTT = base-net):"
cat "$WORK/subnet_ap.txt"
