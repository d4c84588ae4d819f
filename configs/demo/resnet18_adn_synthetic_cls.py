# ResNet-18-ADN classifier trained with Algorithm 1 on the generated digits (10 classes, 32x32:
#   python tools/misc/make_synthetic_digits.py data/synthetic_digits), on 2 CPU cores in minutes.
# Used by the tests and the README's classification example.
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['mmadn'], allow_failed_imports=False)

data_root = 'data/synthetic_digits'
num_classes = 10

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNetADN',
        depth=18,
        skip='super',
        out_indices=(3, ),
        norm_eval=False,
        zero_init_residual=True),  # residual branches start as identities: stable from scratch
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))

data_preprocessor = dict(
    num_classes=num_classes,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=False,
    drop_last=True,  # a last batch of one image would stop BatchNorm training mid-run (1x1 maps at 32x32)
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='val', pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))
max_iters = 500
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=0.0),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)

# ADN's Algorithm 1: super-net cross-entropy x alpha + (1 - alpha) x KL of pooled stage features and logits.
custom_hooks = [dict(type='ADNDistillHook', alpha=0.5, temperature=1.0)]
