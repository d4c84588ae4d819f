# Generated 32x32 shapes (3 classes, 1500 training and 100 test images each), no download:
#   python tools/imta/make_synthetic_data.py
# 300 of the 4500 training images are held out for the budgeted-evaluation thresholds; val/ is the test set.
dataset_type = 'CustomDataset'
data_root = 'data/imta_synthetic'
num_holdout = 300
data_preprocessor = dict(
    num_classes=3,
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
    batch_size=64,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='HoldoutSplit',
        num_holdout=num_holdout,
        holdout=False,
        seed=0,
        dataset=dict(type=dataset_type, data_root=data_root, data_prefix='train', pipeline=train_pipeline)))
holdout_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='HoldoutSplit',
        num_holdout=num_holdout,
        holdout=True,
        seed=0,
        dataset=dict(type=dataset_type, data_root=data_root, data_prefix='train', pipeline=test_pipeline)))
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='val', pipeline=test_pipeline))
val_evaluator = [dict(type='Accuracy', topk=(1, )), dict(type='AnytimeAccuracy', topk=(1, ))]
test_dataloader = val_dataloader
test_evaluator = val_evaluator
