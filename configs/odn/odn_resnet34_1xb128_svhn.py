# ODN on SVHN with ResNet-34 (16 depth levels), target 96.0 %: the paper reports depth 5 of 16, 96.08 % test
# accuracy, 96.44 % fewer parameters.
_base_ = [
    './_base_/models/resnet34_odn.py',
    './_base_/datasets/svhn_bs128.py',
    './_base_/schedule_odn.py',
]

# The SVHN notebook's rates: warm-up 0.01 (3 epochs, cosine per epoch), depth 1 0.1, every later depth 0.05
optim_wrapper = dict(optimizer=dict(lr=0.01))
train_cfg = dict(target=96.0, expansion_lr=0.1, deeper_lr_factor=0.5)
