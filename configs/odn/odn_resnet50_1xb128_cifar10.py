# ODN on CIFAR-10 with ResNet-50 (16 depth levels), target 94.5 %: the paper reports depth 11 of 16, 93.35 %
# test accuracy.
_base_ = [
    './_base_/models/resnet50_odn.py',
    './_base_/datasets/cifar10_bs128.py',
    './_base_/schedule_odn.py',
]

# The CIFAR-10 notebook: no warm-up (so no warm-up schedule; every new depth restarts from the initial
# weights) and 0.01 for every depth, the later ones included (it does not halve the rate as the others do)
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = []
train_cfg = dict(target=94.5, warmup_epochs=0, expansion_lr=0.01, deeper_lr_factor=1.0)
