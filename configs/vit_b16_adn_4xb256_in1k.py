# ViT-b/16-ADN on ImageNet-1k, following the authors' released recipe (torchvision's ViT reference recipe):
# 300 epochs, 4 GPUs x 256 images, AdamW (lr 7.5e-4, weight decay 0.2 on every parameter), 30 warm-up epochs
# from 0.033 x lr then cosine, AMP, label smoothing 0.11, Mixup 0.2 / CutMix 1.0, RandAugment, repeated
# augmentation, gradient clipping at 1, EMA weights for evaluation; Algorithm 1 with the logits KL restricted to
# the super-net's top-500 classes. The release distils the logits only for ViT; this config adds the group
# outputs (token features of groups 1-3), the project's default; features=dict(head='logits') in the
# ADNDistillHook below trains exactly as released.
# Data in mmpretrain's layout: data/imagenet/{train,val} (+ meta/ annotation files).
#   tools/dist_train.sh configs/vit_b16_adn_4xb256_in1k.py 4
_base_ = 'mmpretrain::vision_transformer/vit-base-p16_64xb64_in1k.py'

custom_imports = dict(imports=['mmadn'], allow_failed_imports=False)

model = dict(
    backbone=dict(type='VisionTransformerADN', skip='super', drop_rate=0.0),  # torchvision's vit_b_16: no dropout
    head=dict(
        hidden_dim=None,  # torchvision's head is a single Linear (86.592 M parameters with the twins)
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.11, mode='original')),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.2), dict(type='CutMix', alpha=1.0)]))

# torchvision's reference pipeline: bilinear crops, RandAugment (2 ops, magnitude 9 of 31 levels)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bilinear'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=31,
        magnitude_level=9,
        magnitude_std=0,
        hparams=dict(pad_val=[104, 116, 124], interpolation='bilinear')),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bilinear'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=256,
    dataset=dict(pipeline=train_pipeline),
    sampler=dict(type='RepeatAugSampler', num_repeats=3, shuffle=True))
val_dataloader = dict(batch_size=256, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=0.00075, weight_decay=0.2),
    paramwise_cfg=dict(_delete_=True),  # the release decays every parameter, cls_token and pos_embed included
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.033, by_epoch=True, begin=0, end=30, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=270, by_epoch=True, begin=30, end=300),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)

custom_hooks = [
    dict(type='ADNDistillHook', alpha=0.5, temperature=1.0, logits_topk=500),
    # torchvision's EMA as released: every 32 iterations, decay 1 - 2e-5 * (1024 * 32 / 300); copied during warm-up
    dict(type='EMAHook', momentum=0.0022, interval=32, begin_epoch=30, priority='ABOVE_NORMAL'),
]

auto_scale_lr = dict(base_batch_size=1024)
