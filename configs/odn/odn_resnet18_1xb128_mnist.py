# ODN on MNIST with ResNet-18 (8 depth levels), target 99.5 %: the paper reports depth 2 of 8, 99.31 % test
# accuracy, 98.64 % fewer parameters. MNIST is 1-channel, so the stem takes in_channels=1.
_base_ = [
    './_base_/models/resnet18_odn.py',
    './_base_/datasets/mnist_bs128.py',
    './_base_/schedule_odn.py',
]

model = dict(backbone=dict(in_channels=1))
train_cfg = dict(target=99.5)
