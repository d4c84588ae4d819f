# IMTA phase I on CIFAR-100: the IMTA paper's anytime network (its Table 1: 7 exits, linear growth, step 1, base 1;
# 6.86 ... 137.28 MFLOPs with MSDNet's counter) trained from scratch with Gradient Equilibrium, plain
# cross-entropy summed over the exits.
#   python tools/train.py configs/imta/msdnet-ge_anytime-7exits_1xb64-300e_cifar100.py
# Phase II: imta_anytime-7exits_1xb64-180e_cifar100.py. Without GE: --cfg-options
# model.backbone.gradient_equilibrium=False
_base_ = [
    './_base_/models/msdnet_cifar.py', './_base_/datasets/cifar100_holdout_bs64.py',
    './_base_/schedules/msdnet_cifar_300e.py', 'mmpretrain::_base_/default_runtime.py'
]

custom_imports = dict(imports=['mmadn'], allow_failed_imports=False)

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
