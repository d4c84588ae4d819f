# IMTA phase I on CIFAR-10: the IMTA paper's network (linear growth, step 1, base 1) with 6 exits (its CIFAR-10
# experiments use 6 and 8), Gradient Equilibrium on.
_base_ = [
    './_base_/models/msdnet_cifar.py', './_base_/datasets/cifar10_holdout_bs64.py',
    './_base_/schedules/msdnet_cifar_300e.py', 'mmpretrain::_base_/default_runtime.py'
]

custom_imports = dict(imports=['mmadn'], allow_failed_imports=False)

model = dict(backbone=dict(num_exits=6), head=dict(num_classes=10))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
