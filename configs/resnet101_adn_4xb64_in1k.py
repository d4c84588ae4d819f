# ResNet-101-ADN on ImageNet-1k with the ResNet-50-ADN recipe (skippable blocks per stage: 1, 2, 11, 1).
_base_ = './resnet50_adn_4xb64_in1k.py'

model = dict(backbone=dict(depth=101))
