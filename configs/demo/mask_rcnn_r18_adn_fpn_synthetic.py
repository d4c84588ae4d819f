# The embedded demo detector: Mask R-CNN with a ResNet-18-ADN backbone on the generated shapes
# (tools/misc/make_synthetic_coco.py -> data/synthetic_coco/), fine-tuned with ADN's Algorithm 1 from a ResNet-18-ADN
# classifier pretrained with Algorithm 1 on crops of such scenes (configs/demo/resnet18_adn_shapes_cls.py, handed
# over by tools/model_converters/cls_to_det_backbone.py): the paper's pipeline at the scale of 2 CPU cores
# (scripts/demo.sh runs it). Everything else is mask_rcnn_r50_adn_fpn_1x_coco.py, hence mmdet's COCO config.
#
# Sized so that depth shows in cost: the heads are slimmed (64-channel FPN and heads, 50 proposals at test time: the
# scenes hold at most 6 objects) so that the backbone is a large share of the detector's FLOPs. Detections are kept
# from score 0.3: the mask head runs once per detection, and at mmdet's 0.05 the base-net, less sure of itself, kept
# 11.2 per image against the super-net's 7.9, so that its heads cost more than its backbone saved (docs/adn.md,
# "Latency of the demo detector").
_base_ = '../mask_rcnn_r50_adn_fpn_1x_coco.py'

data_root = 'data/synthetic_coco/'
classes = ('circle', 'square', 'triangle', 'cross', 'diamond')
metainfo = dict(classes=classes, palette=[(220, 20, 60), (0, 130, 230), (250, 170, 30), (0, 160, 80),
                                          (160, 60, 200)])
img_scale = (160, 160)
# written by scripts/demo.sh (cls_to_det_backbone.py); another path: --cfg-options model.backbone.init_cfg.checkpoint=
pretrained_backbone = 'work_dirs/demo/pretrain/backbone_for_detection.pth'
neck_channels = 64

model = dict(
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained_backbone, prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=neck_channels),
    rpn_head=dict(in_channels=neck_channels, feat_channels=neck_channels, anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=neck_channels),
        bbox_head=dict(in_channels=neck_channels, fc_out_channels=256, num_classes=len(classes)),
        mask_roi_extractor=dict(out_channels=neck_channels),
        mask_head=dict(in_channels=neck_channels, conv_out_channels=neck_channels, num_classes=len(classes))),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=600, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=50), rcnn=dict(score_thr=0.3, max_per_img=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

# AdamW: at this schedule it reached bbox / segm mAP 0.684 / 0.641, against 0.16 / 0.13 for SGD at lr 0.02
# (400 iterations: AdamW 0.288 / 0.184, SGD 0.162 / 0.128; docs/adn.md).
max_iters = 800
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[int(max_iters * 0.8)],
         gamma=0.1),
]
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=4e-4, weight_decay=0.05),
                     clip_grad=dict(max_norm=10, norm_type=2))
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=4)
