# Mask R-CNN with a ResNet-50-ADN backbone, trained with ADN's detection recipe (ADNDistillHook: super-net task loss
# x 0.7 + KL x 0.3 pulling the base-net's FPN outputs to the super-net's, and the base-net's own task losses at 0.5,
# this project's adaptation of Algorithm 1, chosen on four data sets, docs/adn.md "The detection recipe"; the
# paper's form: --cfg-options custom_hooks.0.alpha=0.5 custom_hooks.0.student_task_loss_weight=0). Evaluate any
# depth afterwards with
#   python tools/test.py THIS_CONFIG CKPT --cfg-options model.backbone.skip=TTFF
# COCO is expected where mmdet expects it: data/coco/{annotations,train2017,val2017}.
# On GPUs: `tools/train.py THIS_CONFIG --amp` trains in mixed precision (mmengine's AmpOptimWrapper; the KL terms
# stay in float32), and `--cfg-options sync_bn=torch` with a distributed launcher converts every norm, twins
# included, to SyncBatchNorm (tests/test_mixed_precision_and_sync_bn.py).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmadn'], allow_failed_imports=False)

# ImageNet-pretrained ResNet-50-ADN in mmpretrain's layout (configs/resnet50_adn_4xb64_in1k.py, or a released
# model converted by tools/model_converters/adn_converter.py --to mmpretrain). Local path: no downloads.
adn_imagenet_checkpoint = 'checkpoints/resnet50_adn_in1k.pth'

model = dict(
    backbone=dict(
        type='ResNetADN',
        skip='super',
        init_cfg=dict(type='Pretrained', checkpoint=adn_imagenet_checkpoint, prefix='backbone.')))

custom_hooks = [dict(type='ADNDistillHook', alpha=0.7, temperature=1.0, features=dict(neck='spatial'))]
