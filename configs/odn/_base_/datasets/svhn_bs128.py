# SVHN (cropped digits) as mmpretrain CustomDataset folders: 68,257 train / 5,000 validation (held out of the
# 73,257 training images, the spec's split) / 26,032 test. Make them from the official .mat files with
#   python tools/odn/svhn_to_folder.py DIR_WITH_train_32x32.mat_AND_test_32x32.mat data/svhn
dataset_type = 'CustomDataset'
data_root = 'data/svhn'

data_preprocessor = dict(
    num_classes=10,
    mean=[111.61, 113.16, 120.57],
    std=[50.50, 51.26, 50.24],
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=4),  # no flip: digits are not mirror-symmetric
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='val', pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=256,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='test', pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
