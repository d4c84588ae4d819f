# A 4-exit MSDNet small enough to train on 2 CPU cores in a few minutes, on generated 32x32 shapes
# (python tools/imta/make_synthetic_data.py writes them to data/imta_synthetic). Plain multi-exit training: no GE,
# no ISC, no OFA; the baseline the other *_synthetic configs each change.
#   python tools/train.py configs/imta/msdnet_tiny-4exits_synthetic.py
_base_ = ['./_base_/datasets/synthetic_holdout_bs64.py', 'mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['mmadn'], allow_failed_imports=False)

model = dict(
    type='MultiExitClassifier',
    backbone=dict(
        type='MSDNet',
        arch=dict(num_exits=4, step_mode='even', step=1, base=1, channels=8, growth_rate=4, gr_factor=(1, 2, 4),
                  bn_factor=(1, 2, 4), stem='cifar'),
        gradient_equilibrium=False),
    head=dict(type='MultiExitClsHead', num_classes=3, inter_channels=32))

# the IMTA schedule's shape (SGD 0.1 with Nesterov momentum, lr / 10 at 50 % and 75 %), shortened
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[4, 6], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=8, val_interval=4)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=4, max_keep_ckpts=1))
randomness = dict(seed=0)
