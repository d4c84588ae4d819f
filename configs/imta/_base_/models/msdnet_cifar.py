# MSDNet for 32x32 inputs (3 scales 32/16/8), the IMTA paper's CIFAR network: linear growth, step 1, base 1
# (block i has i layers), 16 channels, growth 6, factors 1-2-4; 7 exits (its Table 1: 6.86 ... 137.28 MFLOPs);
# the budgeted configs set num_exits. Classifiers with 128-channel convs. Phase I of IMTA: Gradient Equilibrium on.
model = dict(
    type='MultiExitClassifier',
    backbone=dict(type='MSDNet', arch='cifar-lin_grow', num_exits=7, gradient_equilibrium=True,
                  ge_scope='coarsest'),
    head=dict(
        type='MultiExitClsHead',
        num_classes=100,
        inter_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
