# ResNet-18-ADN classifier on the generated shapes data (tools/misc/make_synthetic_cls.py): trains on 2 CPU
# cores in minutes. Used by the tests and the README's classification example.
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['mmadn'], allow_failed_imports=False)

data_root = 'data/synthetic_cls'
num_classes = 6

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNetADN',
        depth=18,
        skip='super',
        out_indices=(3, ),
        norm_eval=False,
        zero_init_residual=False),
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

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(type='MultiStepLR', by_epoch=False, milestones=[160], gamma=0.1)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=200, val_interval=200)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=200, by_epoch=False, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)

# ADN's Algorithm 1: super-net cross-entropy x alpha + (1 - alpha) x KL of pooled stage features and logits.
custom_hooks = [dict(type='ADNDistillHook', alpha=0.5, temperature=1.0)]
