# ODN on SVHN with ResNet-34 (16 depth levels), target 96.0 %: the paper reports depth 5 of 16, 96.08 % test
# accuracy, 96.44 % fewer parameters.
_base_ = [
    './_base_/models/resnet34_odn.py',
    './_base_/datasets/svhn_bs128.py',
    './_base_/schedule_odn.py',
]

train_cfg = dict(target=96.0)
