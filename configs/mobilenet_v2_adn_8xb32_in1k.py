# MobileNetV2-ADN on ImageNet-1k: mmpretrain's MobileNetV2 recipe (data, 8 GPUs x 32 images) with the optimiser
# and schedule of the authors' release for this network (4 GPUs x 64 images, the same 256 per step): 300 epochs,
# SGD lr 0.1, weight decay 1e-5 (none on norms and biases), LR x0.1 at epochs 150/225/285, and Algorithm 1 with the
# logits KL restricted to the super-net's top-500 classes plus the pooled features of the skippable stages.
# Data in mmpretrain's layout: data/imagenet/{train,val} (+ meta/ annotation files).
#   tools/dist_train.sh configs/mobilenet_v2_adn_8xb32_in1k.py 8
_base_ = ['mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py']

custom_imports = dict(imports=['mmadn'], allow_failed_imports=False)

model = dict(backbone=dict(type='MobileNetV2ADN', widen_factor=1.0, skip='super'))

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = dict(_delete_=True, type='MultiStepLR', by_epoch=True, milestones=[150, 225, 285], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)

custom_hooks = [dict(type='ADNDistillHook', alpha=0.5, temperature=1.0, logits_topk=500)]

auto_scale_lr = dict(base_batch_size=256)

# A last batch of one image would stop BatchNorm training mid-run ("Expected more than 1 value per channel").
train_dataloader = dict(drop_last=True)
