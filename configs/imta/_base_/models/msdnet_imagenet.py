# MSDNet for 224x224 inputs (4 scales 56/28/14/7), ImageNet step-4 setting: 5 exits, 32 channels, growth 16,
# factors 1-2-4-4; classifier convs keep their input's channels. Phase I of IMTA: Gradient Equilibrium on.
model = dict(
    type='MultiExitClassifier',
    backbone=dict(type='MSDNet', arch='imagenet-step4', gradient_equilibrium=True, ge_scope='coarsest'),
    head=dict(
        type='MultiExitClsHead',
        num_classes=1000,
        inter_channels=None,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
