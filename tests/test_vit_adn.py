"""VisionTransformerADN: equivalence with the released (torchvision) ViT-ADN, the blocks each sub-network runs,
twins, FLOPs / parameters of ViT-b/16-ADN, and the configs (the contract suite checks what every family must do:
equivalence with mmpretrain's ViT, frozen stages, plain checkpoints, Algorithm 1)."""
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from mmpretrain.registry import MODELS
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer as TorchvisionViT

from mmadn.analysis.measure import count_flops
from mmadn.models import SubPathDistillation, VisionTransformerADN
from mmadn.models.backbones.vit_adn import ADNTransformerEncoderLayer
from mmadn.models.backbones.vit_adn_layouts import (convert, detect_layout, mmpretrain_to_released,
                                                     released_to_mmpretrain)

from ._families import record_each_subnet
from ._torch_features import needs_compile_of_switches

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY = dict(embed_dims=32, num_layers=12, num_heads=2, feedforward_channels=64)
TINY_KW = dict(arch=TINY, img_size=32, patch_size=8)
# ADN spec section 3 (ViT-ADN), written out: 4 groups of 3 blocks, the last block of each group skippable.
SPEC_GROUPS = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (9, 10, 11)]
SPEC_SKIPPABLE = {2, 5, 8, 11}
MANDATORY = sorted(set(range(12)) - SPEC_SKIPPABLE)


def _randomise(module):
    """Non-trivial weights everywhere (LN weights around 1), so mixing up norm sets or layers would show."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() == 1 and ('ln' in name or 'norm' in name) and name.endswith('weight'):
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0, 0.2)
    return module


def _classifier():
    return MODELS.build(
        dict(type='ImageClassifier',
             backbone=dict(type='VisionTransformerADN', **TINY_KW),
             neck=None,
             head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=32,
                       loss=dict(type='CrossEntropyLoss'))))


def test_groups_skippable_blocks_and_twins_follow_the_spec():
    model = VisionTransformerADN(**TINY_KW)
    assert model.groups == SPEC_GROUPS and model.skippable_layers() == sorted(SPEC_SKIPPABLE)
    assert model.skip == 'FFFF' and len(model.subnets()) == 16
    assert model.twin_norm_names() == [(f'layers.{i}.{n}_skip', f'layers.{i}.{n}') for i in MANDATORY
                                       for n in ('ln1', 'ln2')]
    twins = {k for k in model.state_dict() if '_skip' in k}
    assert {int(k.split('.')[1]) for k in twins} == set(MANDATORY)
    assert not any(k.startswith('ln1') for k in twins)  # the final norm is shared
    assert [n for n, _ in model.named_modules() if n.startswith('group_outputs.')] == [
        f'group_outputs.{g}' for g in range(4)]
    assert not any('group_outputs' in k for k in model.state_dict())
    # the blocks are mmpretrain's, re-typed to read their norms by name: nothing else changes
    assert all(type(b) is ADNTransformerEncoderLayer and isinstance(b, TransformerEncoderLayer) for b in model.layers)


def test_each_skip_runs_the_blocks_of_the_spec_and_group_outputs_follow():
    model = _randomise(VisionTransformerADN(**TINY_KW)).eval()
    outputs = {}  # (skip, module name) -> output, of the blocks and the group outputs
    for name, module in model.named_modules():
        if name.count('.') == 1 and name.split('.')[0] in ('layers', 'group_outputs'):
            module.register_forward_hook(lambda m, i, o, n=name: outputs.__setitem__((model.skip, n), o))
    ran = record_each_subnet(model, torch.randn(1, 3, 32, 32),
                             is_block=lambda name, _: name.count('.') == 1 and name.startswith('layers.'),
                             is_norm=lambda name, m: isinstance(m, nn.LayerNorm) and name.startswith('layers.'))
    for skip, (ran_blocks, ran_norms) in ran.items():
        expected_blocks, expected_norms = [], []
        for flag, group in zip(skip, SPEC_GROUPS):
            for i in group:
                if flag == 'T' and i in SPEC_SKIPPABLE:
                    continue
                expected_blocks.append(f'layers.{i}')
                suffix = '_skip' if flag == 'T' else ''  # twins serve the mandatory blocks of a skipping group
                expected_norms += [f'layers.{i}.ln1{suffix}', f'layers.{i}.ln2{suffix}']
        assert ran_blocks == expected_blocks, skip
        assert ran_norms == expected_norms, skip
        assert model.active_blocks(skip) == expected_blocks
        # a group's output is its last active block's output, under one name in every sub-network
        for g, (flag, group) in enumerate(zip(skip, SPEC_GROUPS)):
            last = group[1] if flag == 'T' else group[2]
            assert outputs[skip, f'group_outputs.{g}'] is outputs[skip, f'layers.{last}']
    assert model.blocks_per_subnet()['FFFF'] == [f'layers.{i}' for i in range(12)]
    assert model.blocks_per_subnet()['TTTT'] == [f'layers.{i}' for i in MANDATORY]


def test_distill_stage_features_are_group_tokens():
    model = VisionTransformerADN(**TINY_KW)
    assert model.stage_module_names() == [f'group_outputs.{g}' for g in range(4)]
    assert model.distill_stage_features() == {f'group_outputs.{g}': dict(mode='tokens') for g in range(3)}


def test_out_indices_keep_their_number_of_outputs_in_every_subnet():
    model = VisionTransformerADN(**TINY_KW, out_type='raw', out_indices=[2, 5, 11]).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        for skip in ('FFFF', 'TFTF', 'TTTT'):
            model.skip = skip
            assert [o.shape for o in model(x)] == [torch.Size([1, 17, 32])] * 3


def test_blocks_per_group_sets_the_number_of_flags():
    model = VisionTransformerADN(**TINY_KW, blocks_per_group=4, skip='TFT')
    assert model.groups == [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11)]
    assert model.active_blocks() == [f'layers.{i}' for i in (0, 1, 2, 4, 5, 6, 7, 8, 9, 10)]
    model = VisionTransformerADN(arch=dict(TINY, num_layers=7), img_size=32, patch_size=8, skip='TTT')
    assert model.groups == [(0, 1, 2), (3, 4, 5), (6, )]  # a group of one block has nothing to skip
    assert model.active_blocks() == [f'layers.{i}' for i in (0, 1, 3, 4, 6)]


@needs_compile_of_switches
def test_jit_trace_and_compile_follow_the_active_subnet():
    model = _randomise(VisionTransformerADN(**TINY_KW)).eval()
    x = torch.randn(1, 3, 32, 32)
    outputs = {}
    with torch.no_grad():
        for skip in ('FFFF', 'TTTT'):
            model.skip = skip
            traced = torch.jit.trace(model, x, check_trace=False)
            outputs[skip] = model(x)[0]
            torch.testing.assert_close(traced(x)[0], outputs[skip])
        assert not torch.allclose(outputs['FFFF'], outputs['TTTT'])
        torch._dynamo.reset()
        compiled = torch.compile(model, backend='eager')
        for skip in ('FFFF', 'TTTT', 'FFFF'):  # a switch back must not reuse the other sub-network's graph
            model.skip = skip
            expected = model(x)[0]
            torch.testing.assert_close(compiled(x)[0], expected)
    torch._dynamo.reset()


# ---- the released layout (torchvision names + twins) ------------------------------------------------------------


def _released_vit():
    """A torchvision ViT with random weights, and its state dict with random twins added (released layout)."""
    tv = TorchvisionViT(image_size=32, patch_size=8, num_layers=12, num_heads=2, hidden_dim=32, mlp_dim=64,
                        num_classes=10)
    _randomise(tv).eval()
    released = dict(tv.state_dict())
    twins = {}
    for i in MANDATORY:
        pair = []
        for n in ('ln_1', 'ln_2'):
            ln = _randomise(nn.LayerNorm(32, eps=1e-6))
            pair.append(ln)
            for k, v in ln.state_dict().items():
                released[f'encoder.layers.encoder_layer_{i}.{n}_skip.{k}'] = v
        twins[i] = pair
    return tv, twins, released


def _released_forward(tv, twins, x, flags):
    """The release's forward (EncoderBlock / SkippableSequentialBlocks of the authors' ViT), on torchvision's
    modules: a skipping group leaves out its last block and normalises its other blocks with the twins."""
    x = tv._process_input(x)
    x = torch.cat([tv.class_token.expand(x.shape[0], -1, -1), x], dim=1) + tv.encoder.pos_embedding
    for i, block in enumerate(tv.encoder.layers):
        flag = flags[i // 3]
        if (i + 1) % 3 == 0:
            if not flag:
                x = block(x)
            continue
        ln_1, ln_2 = twins[i] if flag else (block.ln_1, block.ln_2)
        h = ln_1(x)
        x = x + block.self_attention(h, h, h, need_weights=False)[0]
        x = x + block.mlp(ln_2(x))
    return tv.heads(tv.encoder.ln(x)[:, 0])


def test_released_checkpoint_matches_the_released_model_in_every_subnet():
    tv, twins, released = _released_vit()
    assert detect_layout(released) == 'released' and detect_layout(tv.state_dict()) == 'torchvision'
    converted = released_to_mmpretrain(released)
    assert detect_layout(converted) == 'mmpretrain'
    model = _classifier().eval()
    model.load_state_dict(converted, strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x, mode='tensor'), tv(x))  # super-net = plain torchvision ViT
        for skip in model.backbone.subnets():
            model.backbone.skip = skip
            expected = _released_forward(tv, twins, x, [c == 'T' for c in skip])
            torch.testing.assert_close(model(x, mode='tensor'), expected, msg=skip)
    # round trip, exact to the bit
    back = mmpretrain_to_released(converted)
    assert list(back) == list(released)
    assert all(torch.equal(back[k], released[k]) for k in released)
    assert list(convert(released, 'mmpretrain')) == list(converted)
    assert list(convert(converted, 'released')) == list(released)


def test_plain_torchvision_and_legacy_mlp_names_convert():
    tv, _, _ = _released_vit()
    legacy = {k.replace('mlp.0.', 'mlp.linear_1.').replace('mlp.3.', 'mlp.linear_2.'): v
              for k, v in tv.state_dict().items()}
    model = _classifier()
    model.load_state_dict(released_to_mmpretrain(legacy), strict=True)  # twins filled from the shared norms
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x, mode='tensor'), tv(x))


def test_layout_functions_refuse_what_they_cannot_place():
    with pytest.raises(ValueError, match='Unknown checkpoint layout'):
        detect_layout({'foo.weight': torch.zeros(1)})
    with pytest.raises(ValueError, match='Cannot place'):
        conv_stem = {'conv_proj.weight': torch.zeros(1), 'conv_proj.conv_bn_relu_0.0.weight': torch.zeros(1)}
        released_to_mmpretrain(conv_stem)
    with pytest.raises(ValueError, match='Expected a checkpoint in the mmpretrain layout'):
        mmpretrain_to_released({'conv_proj.weight': torch.zeros(1)})
    with pytest.raises(ValueError, match='torchvision / released'):
        VisionTransformerADN(**TINY_KW).load_state_dict({'conv_proj.weight': torch.zeros(1)})


# ---- FLOPs, parameters ------------------------------------------------------------------------------------------


class _Attention(nn.Module):

    def __init__(self, fused):
        super().__init__()
        self.fused = fused

    def forward(self, q):
        k, v = q.new_ones(2, 3, 7, 4), q.new_ones(2, 3, 7, 6)
        if self.fused:
            return F.scaled_dot_product_attention(q, k, v)
        return torch.softmax(q @ k.transpose(-2, -1) / 2, dim=-1) @ v


def test_count_flops_counts_fused_attention_as_its_two_products():
    q = torch.randn(2, 3, 5, 4)
    expected = 2 * 3 * 5 * 7 * 4 + 2 * 3 * 5 * 7 * 6  # q @ k^T + attn @ v, multiply-adds
    fused, unfused = _Attention(True), _Attention(False)
    assert count_flops(fused, fused, q) == expected
    assert count_flops(unfused, unfused, q) == expected  # what mmengine gives the same products unfused
    analyzer = FlopAnalyzer(fused, (q, ))
    analyzer.unsupported_ops_warnings(False)
    assert analyzer.total() == 0  # mmengine alone skips the fused op


@pytest.fixture(scope='module')
def vit_b16_adn():
    with torch.no_grad():
        model = MODELS.build(
            dict(type='ImageClassifier',
                 backbone=dict(type='VisionTransformerADN', arch='b', img_size=224, patch_size=16),
                 neck=None,
                 head=dict(type='VisionTransformerClsHead', num_classes=1000, in_channels=768)))
    return model.eval()


def test_parameters_match_released_vit_b16_adn(vit_b16_adn):
    params = sum(p.numel() for p in vit_b16_adn.parameters())
    assert abs(params / 1e6 - 86.592) < 0.001, params
    twins = sum(p.numel() for n, p in vit_b16_adn.named_parameters() if '_skip' in n)
    assert twins == 8 * 2 * 2 * 768  # 86.592 M - 86.568 M (plain vit_b_16)


def test_flops_of_super_and_base_net_match_the_release(vit_b16_adn):
    inputs = torch.randn(1, 3, 224, 224)
    measured = {}
    with torch.no_grad():
        for skip in ('FFFF', 'TTTT'):
            vit_b16_adn.backbone.skip = skip
            measured[skip] = count_flops(vit_b16_adn, vit_b16_adn, inputs) / 1e9
            analyzer = FlopAnalyzer(vit_b16_adn, inputs)
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            measured[skip + ' (mmengine alone)'] = analyzer.total() / 1e9
    vit_b16_adn.backbone.skip = 'super'
    # spec section 7: 17.58 / 11.76 with attention counted, 16.867 / 11.284 read with mmengine's counter
    targets = {'FFFF': 17.58, 'TTTT': 11.76, 'FFFF (mmengine alone)': 16.867, 'TTTT (mmengine alone)': 11.284}
    for key, target in targets.items():
        assert abs(measured[key] - target) / target < 0.01, measured
    # the attention products alone: 2 * 12 heads * 197^2 tokens * 64 dims per block, 12 / 8 blocks
    attention = 2 * 12 * 197 * 197 * 64 / 1e9
    assert math.isclose(measured['FFFF'] - measured['FFFF (mmengine alone)'], 12 * attention, rel_tol=1e-9)
    assert math.isclose(measured['TTTT'] - measured['TTTT (mmengine alone)'], 8 * attention, rel_tol=1e-9)


# ---- configs --------------------------------------------------------------------------------------------------

CONFIGS = {'vit_b16_adn_4xb256_in1k.py': 16, 'vit_b32_adn_4xb256_in1k.py': 32}


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_imagenet_config_builds(name):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    assert cfg.default_scope == 'mmpretrain' and 'mmadn' in cfg.custom_imports.imports
    assert [h.type for h in cfg.custom_hooks] == ['ADNDistillHook', 'EMAHook']
    assert cfg.custom_hooks[0].logits_topk == 500
    assert cfg.train_dataloader.dataset.data_root == 'data/imagenet'
    assert cfg.train_dataloader.batch_size == 256 and cfg.auto_scale_lr.base_batch_size == 1024
    assert cfg.train_cfg.max_epochs == 300 and cfg.optim_wrapper.clip_grad.max_norm == 1.0
    with DefaultScope.overwrite_default_scope('mmpretrain'), torch.no_grad():
        model = MODELS.build(cfg.model)
    backbone = model.backbone
    assert isinstance(backbone, VisionTransformerADN) and backbone.skip == 'FFFF'
    assert backbone.patch_embed.projection.kernel_size == (CONFIGS[name], ) * 2
    assert model.head.hidden_dim is None  # torchvision's single Linear head, as released
    objective = SubPathDistillation(model, model.loss, logits_topk=500)  # the hook's default features resolve
    assert set(objective.features) == {'backbone.group_outputs.0', 'backbone.group_outputs.1',
                                       'backbone.group_outputs.2', 'head'}
