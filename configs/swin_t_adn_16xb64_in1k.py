# Swin-T-ADN on ImageNet-1k: mmpretrain's Swin-T recipe (300 epochs, AdamW, cosine, Mixup/CutMix, label smoothing,
# 16 GPUs x 64 images) with the Swin-T-ADN backbone and ADN's Algorithm 1: super-net task loss + KL pulling the
# base-net's logits and its stage-1..3 token features (mean token, softmax over channels) to the super-net's.
# Data in mmpretrain's layout: data/imagenet/{train,val} (+ meta/ annotation files).
#   tools/dist_train.sh configs/swin_t_adn_16xb64_in1k.py 16
# Evaluate any depth afterwards with --cfg-options model.backbone.skip=TTFF.
_base_ = 'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py'

custom_imports = dict(imports=['mmadn'], allow_failed_imports=False)

model = dict(backbone=dict(type='SwinTransformerADN', arch='tiny', skip='super'))

# The released ResNet-50 recipe restricts the logits KL to the top-500 classes; nothing is documented for Swin-T,
# so the full distribution is used (logits_topk=None).
custom_hooks = [dict(type='ADNDistillHook', alpha=0.5, temperature=1.0)]
