# ODN on CIFAR-10 with ResNet-50 (16 depth levels), target 94.5 %: the paper reports depth 11 of 16, 93.35 %
# test accuracy.
_base_ = [
    './_base_/models/resnet50_odn.py',
    './_base_/datasets/cifar10_bs128.py',
    './_base_/schedule_odn.py',
]

train_cfg = dict(target=94.5)
