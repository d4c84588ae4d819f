# RetinaNet with a ResNet-50-ADN backbone and ADN's detection recipe over the FPN outputs it uses (P3-P7); see
# mask_rcnn_r50_adn_fpn_1x_coco.py.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmadn'], allow_failed_imports=False)

adn_imagenet_checkpoint = 'checkpoints/resnet50_adn_in1k.pth'

model = dict(
    backbone=dict(
        type='ResNetADN',
        skip='super',
        init_cfg=dict(type='Pretrained', checkpoint=adn_imagenet_checkpoint, prefix='backbone.')))

custom_hooks = [dict(type='ADNDistillHook', alpha=0.7, temperature=1.0, features=dict(neck='spatial'))]
