# The demo's pretraining step (the paper's ImageNet step, at small scale): a ResNet-18-ADN classifier trained with
# Algorithm 1 on crops of the generated detection shapes
#   python tools/misc/make_synthetic_crops.py data/synthetic_crops     (5 classes, 32x32 crops of instances of
#                                                                       scenes like those of data/synthetic_coco)
# Its backbone, twins included, initialises the demo detector (tools/model_converters/cls_to_det_backbone.py).
# AdamW at 2e-3, not the digits recipe's SGD (resnet18_adn_synthetic_cls.py): the crops are solid shapes whose only
# cue is their outline, which that SGD did not learn within the CPU budget (issue 12, on a 64-px folder of the same
# shapes: 21 % top-1 after 500 iterations). The residual branches do not start at zero, as in the paper's ImageNet
# recipe (configs/resnet50_adn_4xb64_in1k.py): with the digits recipe's zero_init_residual they stayed so small in
# 600 iterations that skipping them cost little even without ADN, and nothing showed what ADN buys (BENCHMARKS.md,
# "The earlier recipe").
_base_ = './resnet18_adn_synthetic_cls.py'

data_root = 'data/synthetic_crops'
num_classes = 5

model = dict(backbone=dict(zero_init_residual=False), head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)

train_dataloader = dict(batch_size=32, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=64, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=2e-3, weight_decay=0.05))
max_iters = 600
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, eta_min=0.0),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
