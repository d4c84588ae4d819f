# ODN end to end on generated digits (10 classes, 32x32, see mmadn/datasets/synthetic_digits.py) on 2 CPU cores in minutes:
#   python tools/misc/make_synthetic_digits.py data/synthetic_digits
#   python tools/train.py configs/odn/odn_resnet18_synthetic.py
#   python tools/odn/extract_subnet.py configs/odn/odn_resnet18_synthetic.py \
#       work_dirs/odn_resnet18_synthetic/best_depth<D>.pth --shape 32 32
# The dataset configs' procedure with a short warm-up and patience, ResNet-18's 8 levels at quarter width, no
# random augmentation and a fixed seed (an interrupted run resumed with --resume ends as an uninterrupted one).
_base_ = [
    './_base_/models/resnet18_odn.py',
    './_base_/schedule_odn.py',
]

data_root = 'data/synthetic_digits'
warmup_epochs = 3

model = dict(backbone=dict(stem_channels=16, base_channels=16))

data_preprocessor = dict(num_classes=10, mean=[60.0, 60.0, 60.0], std=[60.0, 60.0, 60.0], to_rgb=True)

pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train', pipeline=pipeline))
val_dataloader = dict(
    batch_size=100,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='val', pipeline=pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

# One rate, 0.05 at batch 32, for the warm-up and every depth: the notebooks' rates belong to their datasets (0.001
# to 0.1 for the same procedure, halved for later depths on all but CIFAR-10) and none was set for generated data.
# The warm-up cosine steps per epoch, as theirs (docs/odn.md, "Defaults").
optim_wrapper = dict(optimizer=dict(lr=0.05))
param_scheduler = dict(end=warmup_epochs, T_max=warmup_epochs)
train_cfg = dict(target=95.0, warmup_epochs=warmup_epochs, patience=4, lr_patience=2, max_epochs=100)

default_hooks = dict(logger=dict(interval=20))
auto_scale_lr = dict(base_batch_size=32)
randomness = dict(seed=0, deterministic=True)
