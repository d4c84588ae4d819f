# CIFAR-style ResNet-18 that can stop after any residual block, with one linear head per depth level.
model = dict(
    type='ODNClassifier',
    backbone=dict(type='ODNResNet', depth=18),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='ODNClsHead',
        # the head of one level; each level gets its block's output width as in_channels
        head=dict(
            type='LinearClsHead',
            num_classes=10,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, ))))
