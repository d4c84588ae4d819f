# CIFAR-100 in mmpretrain's format under data/cifar100. 5000 training images are held out (fixed seed) for
# fitting the budgeted-evaluation thresholds (`holdout_dataloader`, read by tools/imta/evaluate_budgets.py);
# the model trains on the other 45000 and is tested on the official test split.
dataset_type = 'CIFAR100'
data_root = 'data/cifar100'
num_holdout = 5000
data_preprocessor = dict(
    num_classes=100,
    mean=[129.304, 124.070, 112.434],
    std=[68.170, 65.392, 70.418],
    to_rgb=False)

train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='HoldoutSplit',
        num_holdout=num_holdout,
        holdout=False,
        seed=0,
        dataset=dict(type=dataset_type, data_root=data_root, split='train', download=False,
                     pipeline=train_pipeline)))
holdout_dataloader = dict(
    batch_size=64,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='HoldoutSplit',
        num_holdout=num_holdout,
        holdout=True,
        seed=0,
        dataset=dict(type=dataset_type, data_root=data_root, split='train', download=False,
                     pipeline=test_pipeline)))
val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='test', download=False, pipeline=test_pipeline))
# final exit (pred_score) and every exit
val_evaluator = [dict(type='Accuracy', topk=(1, 5)), dict(type='AnytimeAccuracy', topk=(1, 5))]
test_dataloader = val_dataloader
test_evaluator = val_evaluator
