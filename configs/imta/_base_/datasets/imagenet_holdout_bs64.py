# ImageNet in mmpretrain's format under data/imagenet; 50000 training images held out (fixed seed) for the
# budgeted-evaluation thresholds, as in MSDNet / IMTA; the official val split is the test set.
dataset_type = 'ImageNet'
data_root = 'data/imagenet'
num_holdout = 50000
data_preprocessor = dict(
    num_classes=1000,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='HoldoutSplit',
        num_holdout=num_holdout,
        holdout=False,
        seed=0,
        dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline)))
holdout_dataloader = dict(
    batch_size=64,
    num_workers=8,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='HoldoutSplit',
        num_holdout=num_holdout,
        holdout=True,
        seed=0,
        dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=test_pipeline)))
val_dataloader = dict(
    batch_size=64,
    num_workers=8,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline))
val_evaluator = [dict(type='Accuracy', topk=(1, 5)), dict(type='AnytimeAccuracy', topk=(1, 5))]
test_dataloader = val_dataloader
test_evaluator = val_evaluator
