# Mask R-CNN with a Swin-T-ADN backbone (mmpretrain's SwinTransformer + skippable blocks), trained with ADN's
# detection recipe (see mask_rcnn_r50_adn_fpn_1x_coco.py): super-net task loss + KL pulling the base-net's FPN
# outputs to the super-net's, and the base-net's own task losses. Evaluate any depth
# afterwards with
#   python tools/test.py THIS_CONFIG CKPT --cfg-options model.backbone.skip=TTFF
# COCO is expected where mmdet expects it: data/coco/{annotations,train2017,val2017}.
#
# mmdet's Swin config builds mmdet's own SwinTransformer (embed_dims/depths/mlp_ratio/convert_weights, ...); this
# backbone is mmpretrain's, so the backbone dict is replaced, not merged.
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'

custom_imports = dict(imports=['mmadn'], allow_failed_imports=False)

# ImageNet-pretrained Swin-T-ADN in mmpretrain's layout (configs/swin_t_adn_16xb64_in1k.py, or a released model
# converted with mmadn.models.backbones.swin_adn_layouts.convert(..., to='mmpretrain')). Local path: no downloads.
pretrained = 'checkpoints/swin_t_adn_in1k.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformerADN',
        arch='tiny',
        skip='super',
        window_size=7,
        drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3),
        pad_small_map=True,  # mmpretrain's setting for dense prediction: pad maps smaller than a window
        with_cp=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=[96, 192, 384, 768]))

custom_hooks = [dict(type='ADNDistillHook', alpha=0.7, temperature=1.0, features=dict(neck='spatial'))]
