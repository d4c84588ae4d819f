# IMTA phase I on ImageNet: MSDNet step 4 (5 exits) with Gradient Equilibrium, 90 epochs, batch 256.
#   tools/dist_train.sh configs/imta/msdnet-ge_step4-5exits_4xb64-90e_in1k.py 4
# Steps 6 / 7: --cfg-options model.backbone.arch=imagenet-step6 (or imagenet-step7).
_base_ = [
    './_base_/models/msdnet_imagenet.py', './_base_/datasets/imagenet_holdout_bs64.py',
    './_base_/schedules/msdnet_imagenet_90e.py', 'mmpretrain::_base_/default_runtime.py'
]

custom_imports = dict(imports=['mmadn'], allow_failed_imports=False)

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
