# ODN on Fashion-MNIST with ResNet-34 (16 depth levels), target 94.5 %: the paper reports depth 6 of 16,
# 93.54 % test accuracy, about 95 % fewer parameters.
_base_ = [
    './_base_/models/resnet34_odn.py',
    './_base_/datasets/fashion-mnist_bs128.py',
    './_base_/schedule_odn.py',
]

model = dict(backbone=dict(in_channels=1))
# The Fashion-MNIST notebook's rates: warm-up 0.001 (3 epochs, cosine per epoch), depth 1 0.01, every later
# depth 0.005
optim_wrapper = dict(optimizer=dict(lr=0.001))
train_cfg = dict(target=94.5, expansion_lr=0.01, deeper_lr_factor=0.5)
