# ResNet-50-ADN on ImageNet-1k, following the authors' released recipe: 150 epochs, SGD, LR x0.1 at epochs
# 60/100/140, 4 GPUs x 64 images, no weight decay on norms and biases, label smoothing, and Algorithm 1 with the
# logits KL restricted to the super-net's top-500 classes plus the pooled stage features.
# Data in mmpretrain's layout: data/imagenet/{train,val} (+ meta/ annotation files).
#   tools/dist_train.sh configs/resnet50_adn_4xb64_in1k.py 4
_base_ = [
    'mmpretrain::_base_/models/resnet50_label_smooth.py', 'mmpretrain::_base_/datasets/imagenet_bs64.py',
    'mmpretrain::_base_/schedules/imagenet_bs256.py', 'mmpretrain::_base_/default_runtime.py'
]

custom_imports = dict(imports=['mmadn'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='ResNetADN',
        skip='super',
        frozen_stages=-1,
        norm_eval=False,
        zero_init_residual=False))

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[60, 100, 140], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=150, val_interval=1)

custom_hooks = [dict(type='ADNDistillHook', alpha=0.5, temperature=1.0, logits_topk=500)]

auto_scale_lr = dict(base_batch_size=256)

# A last batch of one image would stop BatchNorm training mid-run ("Expected more than 1 value per channel").
train_dataloader = dict(drop_last=True)
