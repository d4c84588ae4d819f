# ViT-b/32-ADN on ImageNet-1k: the ViT-b/16-ADN recipe with 32x32 patches (the release builds vit_b_32 with the
# same 4 groups of 3 blocks; it publishes a recipe and weights for b/16 only).
#   tools/dist_train.sh configs/vit_b32_adn_4xb256_in1k.py 4
_base_ = './vit_b16_adn_4xb256_in1k.py'

model = dict(backbone=dict(patch_size=32))
