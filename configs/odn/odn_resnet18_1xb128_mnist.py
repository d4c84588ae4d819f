# ODN on MNIST with ResNet-18 (8 depth levels), target 99.5 %: the paper reports depth 2 of 8, 99.31 % test
# accuracy, 98.64 % fewer parameters. MNIST is 1-channel, so the stem takes in_channels=1.
_base_ = [
    './_base_/models/resnet18_odn.py',
    './_base_/datasets/mnist_bs128.py',
    './_base_/schedule_odn.py',
]

model = dict(backbone=dict(in_channels=1))
# The MNIST notebook's rates: warm-up 0.001 (3 epochs, cosine per epoch), depth 1 0.01, every later depth 0.005
optim_wrapper = dict(optimizer=dict(lr=0.001))
train_cfg = dict(target=99.5, expansion_lr=0.01, deeper_lr_factor=0.5)
