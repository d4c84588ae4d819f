# MSDNet for 32x32 inputs (3 scales 32/16/8), CIFAR anytime setting: 7 exits, step 2, base 4, 16 channels,
# growth 6, factors 1-2-4; classifiers with 128-channel convs. Phase I of IMTA: Gradient Equilibrium on.
model = dict(
    type='MultiExitClassifier',
    backbone=dict(type='MSDNet', arch='cifar-anytime', gradient_equilibrium=True, ge_scope='coarsest'),
    head=dict(
        type='MultiExitClsHead',
        num_classes=100,
        inter_channels=128,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
