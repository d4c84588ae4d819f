#!/usr/bin/env bash
# The README's main job: the ADN paper's detection pipeline at small scale, on generated data.
#   1. generate data/synthetic_coco (the detection set) and data/synthetic_crops (crops of its kind of scenes);
#   2. pretrain a ResNet-18-ADN classifier with Algorithm 1 on the crops (the paper's ImageNet step);
#   3. hand its backbone, twins included, to the detector (tools/model_converters/cls_to_det_backbone.py);
#   4. train Mask R-CNN from it with Algorithm 1 over the FPN outputs (ADNDistillHook);
#   5. measure all 16 sub-networks (tools/analysis_tools/benchmark_subnets.py): bbox / segm AP, GFLOPs, latency,
#      the table printed and written with the Pareto plot to $WORK/subnets/.
# Finished steps are reused on a re-run (RETRAIN=1 trains again). From the environment: WORK_DIR, SKIPS (default:
# all 16), PRETRAIN_OPTIONS / DETECTOR_OPTIONS (extra --cfg-options of the two trainings, e.g. custom_hooks=[]),
# BENCH_ARGS (benchmark_subnets.py arguments, default --runs 20).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CLS_CONFIG=configs/demo/resnet18_adn_shapes_cls.py
DET_CONFIG=configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py
WORK=${WORK_DIR:-work_dirs/demo}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
log() { echo "[demo $(date +%H:%M:%S)] $*"; }

# train CONFIG WORK_DIR [args...]: progress lines on screen, the whole log in WORK_DIR/train_console.log; the
# final checkpoint's path in WORK_DIR/done once training has finished (a re-run then skips it).
train() {
    local config=$1 work=$2
    shift 2
    if [[ -f "$work/done" && -z "${RETRAIN:-}" ]]; then
        log "reusing $(cat "$work/done") (RETRAIN=1 trains again)"
        return
    fi
    mkdir -p "$work"
    rm -f "$work/done"
    log "training $config (full log: $work/train_console.log)"
    set +e
    $PY tools/train.py "$config" --work-dir "$work" "$@" 2>&1 | tee "$work/train_console.log" \
        | grep --line-buffered -E "Iter\(train\)|Iter\(val\)|ADNDistillHook: training|Error"
    local rc=${PIPESTATUS[0]}
    set -e
    if [[ $rc -ne 0 ]]; then
        log "training $config failed (exit code $rc); the end of $work/train_console.log:"
        tail -30 "$work/train_console.log"
        exit "$rc"
    fi
    cat "$work/last_checkpoint" > "$work/done"
}

if [[ ! -f data/synthetic_coco/annotations/instances_val2017.json ]]; then
    log "generating data/synthetic_coco"
    $PY tools/misc/make_synthetic_coco.py data/synthetic_coco
fi
if [[ ! -d data/synthetic_crops/val ]]; then
    log "generating data/synthetic_crops"
    $PY tools/misc/make_synthetic_crops.py data/synthetic_crops
fi

train "$CLS_CONFIG" "$WORK/pretrain" ${PRETRAIN_OPTIONS:+--cfg-options $PRETRAIN_OPTIONS}

INIT=$WORK/pretrain/backbone_for_detection.pth
if [[ ! -f "$INIT" || "$INIT" -ot "$WORK/pretrain/done" ]]; then
    $PY tools/model_converters/cls_to_det_backbone.py "$(cat "$WORK/pretrain/done")" "$DET_CONFIG" "$INIT"
fi

train "$DET_CONFIG" "$WORK/detector" --cfg-options model.backbone.init_cfg.checkpoint="$INIT" ${DETECTOR_OPTIONS:-}

log "measuring the sub-networks of $(cat "$WORK/detector/done")"
$PY tools/analysis_tools/benchmark_subnets.py "$DET_CONFIG" "$(cat "$WORK/detector/done")" \
    --out-dir "$WORK/subnets" ${SKIPS:+--skips $SKIPS} ${BENCH_ARGS:---runs 20}
