"""The ADN backbone families the tests build, one tiny configuration each, and the helpers the family tests share.

The contract suite (``test_backbone_contract.py``) and the gradient-checkpointing tests parametrise over this one
table, so a new family is added here once and every check of the contract runs on it.
"""
import copy
from typing import Callable, Dict, List, NamedTuple, Tuple

import torch
from mmdet.models.backbones import ResNet
from mmpretrain.models.backbones import MobileNetV2, SwinTransformer, VisionTransformer
from torch import nn

from mmadn.models import MobileNetV2ADN, ResNetADN, SwinTransformerADN, VisionTransformerADN


class Family(NamedTuple):
    adn: type  # the ADN backbone
    upstream: type  # the library's network it extends: its super-net computes what this one computes
    kwargs: dict  # a tiny build
    size: int  # input height and width
    with_cp: bool  # offers gradient checkpointing (mmpretrain's ViT has no with_cp)
    variants: Tuple[dict, ...] = ()  # more constructor arguments the super-net is checked against upstream with
    train_noise: dict = {}  # arguments that make training random (dropout), for a train-mode check with one seed


_SWIN_ARCH = dict(embed_dims=16, depths=[2, 2, 4, 2], num_heads=[1, 1, 2, 2])
_VIT_ARCH = dict(embed_dims=16, num_layers=6, num_heads=2, feedforward_channels=32)

FAMILIES: Dict[str, Family] = {
    'resnet': Family(
        ResNetADN, ResNet, dict(depth=18, base_channels=8, out_indices=(0, 1, 2, 3)), 32, with_cp=True,
        # norm_eval=False: batch statistics in training, and running statistics that must update as upstream's
        variants=tuple(dict(depth=depth, out_indices=out, norm_eval=False) for depth in (18, 50)
                       for out in ((0, 1, 2, 3), (3, ), (1, 3), (0, )))),
    'mobilenet_v2': Family(
        MobileNetV2ADN, MobileNetV2, dict(widen_factor=0.25, out_indices=(2, 4, 7)), 32, with_cp=True,
        variants=(dict(out_indices=(7, )), dict(out_indices=tuple(range(8))), dict(out_indices=(1, 4)))),
    'swin': Family(
        SwinTransformerADN, SwinTransformer,
        dict(arch=_SWIN_ARCH, img_size=32, window_size=2, pad_small_map=True, out_indices=(0, 1, 2, 3),
             drop_path_rate=0.), 32, with_cp=True,
        variants=(dict(out_indices=(3, )), )),
    'vit': Family(
        VisionTransformerADN, VisionTransformer,
        dict(arch=_VIT_ARCH, img_size=32, patch_size=8, out_indices=(2, 5), drop_path_rate=0.), 32, with_cp=False,
        variants=(dict(out_type='raw', out_indices=(1, 3, 5)), dict(out_type='featmap', out_indices=[-1]),
                  dict(out_type='avg_featmap', out_indices=(2, 5)), dict(final_norm=False, out_type='raw')),
        train_noise=dict(drop_rate=0.1, drop_path_rate=0.2)),
}


def perturb_norms(model: nn.Module) -> nn.Module:
    """Norms away from their init (twins too, each its own), so that any mix-up of norm sets shows."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def family_kwargs(family: str, **overrides) -> dict:
    """The table's constructor arguments with ``overrides``, copied (mmpretrain's ViT rewrites its out_indices)."""
    return copy.deepcopy({**FAMILIES[family].kwargs, **overrides})


def build_family(family: str, **kwargs) -> nn.Module:
    """The family's tiny backbone (``kwargs`` override the table's), initialised, norms perturbed, in eval mode."""
    torch.manual_seed(0)
    model = FAMILIES[family].adn(**family_kwargs(family, **kwargs))
    model.init_weights()
    return perturb_norms(model).eval()


def family_input(family: str, batch: int = 2) -> torch.Tensor:
    torch.manual_seed(1)
    size = FAMILIES[family].size
    return torch.randn(batch, 3, size, size)


def record_each_subnet(model: nn.Module, x: torch.Tensor, is_block: Callable[[str, nn.Module], bool],
                       is_norm: Callable[[str, nn.Module], bool]) -> Dict[str, Tuple[List[str], List[str]]]:
    """Run ``x`` through every sub-network: skip -> (the blocks, the norms that ran, in order), as forward hooks
    on the modules ``is_block`` / ``is_norm`` pick by name and module see them."""
    ran_blocks, ran_norms = [], []
    handles = []
    for name, module in model.named_modules():
        if is_block(name, module):
            handles.append(module.register_forward_hook(lambda m, i, o, n=name: ran_blocks.append(n)))
        if is_norm(name, module):
            handles.append(module.register_forward_hook(lambda m, i, o, n=name: ran_norms.append(n)))
    ran = {}
    try:
        for skip in model.subnets():
            model.skip = skip
            ran_blocks.clear()
            ran_norms.clear()
            with torch.no_grad():
                model(x)
            ran[skip] = (list(ran_blocks), list(ran_norms))
    finally:
        for handle in handles:
            handle.remove()
    return ran
