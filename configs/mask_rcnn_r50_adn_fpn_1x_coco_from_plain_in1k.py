# Variant of mask_rcnn_r50_adn_fpn_1x_coco.py for when only a plain ImageNet ResNet-50 is at hand (torchvision
# layout, e.g. resnet50-0676ba61.pth saved locally). Its checkpoint has no twin norms: they start as copies of
# the shared ones (ResNetADN says so in one log line), i.e. with the super-net's statistics, which the base-net
# does not have. mmdet's detection configs freeze norm statistics (norm_eval=True); here the shared statistics
# stay frozen at their ImageNet values while the twins' statistics are learnt from the detection data
# (train_twin_stats=True). Alternative: re-estimate them before training (norm recalibration of the benchmark
# tool) and keep everything frozen.
_base_ = './mask_rcnn_r50_adn_fpn_1x_coco.py'

plain_imagenet_checkpoint = 'checkpoints/resnet50_torchvision.pth'

model = dict(
    backbone=dict(
        train_twin_stats=True,
        init_cfg=dict(_delete_=True, type='Pretrained', checkpoint=plain_imagenet_checkpoint)))
