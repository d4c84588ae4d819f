"""SwinTransformerADN (Swin-T-ADN, spec section 3): equivalence with torchvision's swin_t, the blocks and norms
each sub-network runs, released checkpoints, FLOPs, configs and detection (the contract suite checks what every
family must do: equivalence with mmpretrain's Swin, frozen stages, plain checkpoints, Algorithm 1)."""
import copy
import os.path as osp
import re
from collections import OrderedDict

import pytest
import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from torch import nn

from mmadn.analysis.measure import count_flops
from mmadn.models import SwinTransformerADN, set_subnet
from mmadn.models.backbones import swin_adn_layouts as layouts

from ._families import record_each_subnet

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY = dict(embed_dims=24, depths=[2, 2, 6, 2], num_heads=[1, 1, 2, 2])
DEPTHS = (2, 2, 6, 2)
# spec section 3, written out: Swin-T-ADN's mandatory blocks per stage
SPEC_MANDATORY = (1, 1, 3, 1)
# spec section 7: mmengine's counter on the released classifiers (224x224, 1000 classes)
SPEC_GFLOPS = {'FFFF': 4.509, 'TTTT': 2.351}
SPEC_PARAMS_M = 28.303


def _tiny_kwargs(**kwargs):
    # img 64: stage maps 16, 8, 4, 2; the last is smaller than the window, which needs pad_small_map
    return dict(dict(arch=TINY, window_size=4, img_size=64, pad_small_map=True, drop_path_rate=0.), **kwargs)


def _randomise_layer_norms(model):
    """LayerNorms away from (1, 0) and twins different from their shared norm, so a mix-up would show."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            if hasattr(m, 'relative_position_bias_table'):
                m.relative_position_bias_table.normal_(0, 0.5)


def _tiny_classifier(num_classes=5, **kwargs):
    model = MMPRETRAIN_MODELS.build(
        dict(type='ImageClassifier',
             backbone=dict(type='SwinTransformerADN', **_tiny_kwargs(**kwargs)),
             neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=192,
                       loss=dict(type='CrossEntropyLoss'))))
    model.init_weights()
    return model


# ---- structure, sub-networks -------------------------------------------------------------------------------


def test_default_split_is_the_released_one():
    model = SwinTransformerADN(**_tiny_kwargs())
    assert model.mandatory_depths == SPEC_MANDATORY
    assert [s.num_mandatory for s in model.stages] == list(SPEC_MANDATORY)
    assert model.skip == 'FFFF' and model.num_skip_flags == 4 and len(model.subnets()) == 16


def test_each_skip_runs_the_blocks_and_norms_of_the_spec():
    model = SwinTransformerADN(**_tiny_kwargs(out_indices=(3, ))).eval()
    ran = record_each_subnet(model, torch.randn(1, 3, 64, 64),
                             is_block=lambda name, _: name.count('.') == 3 and name.split('.')[2] == 'blocks',
                             is_norm=lambda _, m: isinstance(m, nn.LayerNorm))
    for skip, (ran_blocks, ran_norms) in ran.items():
        blocks, norms = [], ['patch_embed.norm']
        for s, (flag, n, mandatory) in enumerate(zip(skip, DEPTHS, SPEC_MANDATORY)):
            suffix = '_skip' if flag == 'T' else ''  # twins: mandatory blocks of a skipping stage only
            for b in range(mandatory if flag == 'T' else n):
                blocks.append(f'stages.{s}.blocks.{b}')
                norms += [f'stages.{s}.blocks.{b}.norm1{suffix}', f'stages.{s}.blocks.{b}.norm2{suffix}']
            if s == 3:
                norms.append('norm3')  # the out norm is shared
            else:  # the merging norm feeds stage s + 1 and follows its flag
                norms.append(f'stages.{s}.downsample.norm' + ('_skip' if skip[s + 1] == 'T' else ''))
        assert ran_blocks == blocks, skip
        assert ran_norms == norms, skip
        assert model.active_blocks(skip) == blocks
    model.skip = 'FTFF'
    assert model.stages[0].downsample.norm is model.stages[0].downsample.norm_skip  # feeds stage 1, which skips
    assert model.stages[1].downsample.norm is model.stages[1].downsample._modules['norm']


def test_twins_are_the_released_ones():
    model = SwinTransformerADN(**_tiny_kwargs())
    twins = [t for t, _ in model.twin_norm_names()]
    assert twins == [
        'stages.0.blocks.0.norm1_skip', 'stages.0.blocks.0.norm2_skip', 'stages.0.downsample.norm_skip',
        'stages.1.blocks.0.norm1_skip', 'stages.1.blocks.0.norm2_skip', 'stages.1.downsample.norm_skip',
        *[f'stages.2.blocks.{b}.{n}_skip' for b in range(3) for n in ('norm1', 'norm2')],
        'stages.2.downsample.norm_skip', 'stages.3.blocks.0.norm1_skip', 'stages.3.blocks.0.norm2_skip'
    ]
    assert {k.rsplit('.', 1)[0] for k in model.state_dict() if '_skip' in k} == set(twins)
    assert not any('patch_embed' in t or t.startswith('norm') for t in twins)


def test_mandatory_depths_override():
    model = SwinTransformerADN(**_tiny_kwargs(mandatory_depths=(2, 1, 4, 1), skip='base'))
    assert model.active_blocks() == ['stages.0.blocks.0', 'stages.0.blocks.1', 'stages.1.blocks.0',
                                     *[f'stages.2.blocks.{b}' for b in range(4)], 'stages.3.blocks.0']
    names = [t for t, _ in model.twin_norm_names()]
    assert not any(n.startswith('stages.0.') and 'blocks' in n for n in names)  # stage 0 cannot skip: no twins
    assert 'stages.0.downsample.norm_skip' in names and 'stages.2.blocks.3.norm1_skip' in names


def test_layer_wise_depth_of_twins():
    model = SwinTransformerADN(**_tiny_kwargs())
    for twin, shared in model.twin_norm_names():
        assert model.get_layer_depth(f'backbone.{twin}.weight', 'backbone.') == \
            model.get_layer_depth(f'backbone.{shared}.weight', 'backbone.')


def test_distill_stage_features_are_tokens_of_stages_0_to_2():
    model = SwinTransformerADN(**_tiny_kwargs())
    assert model.stage_module_names() == ['stages.0', 'stages.1', 'stages.2', 'stages.3']
    assert model.distill_stage_features() == {f'stages.{i}': dict(mode='tokens') for i in range(3)}


# ---- checkpoints ---------------------------------------------------------------------------------------------


def test_an_unconverted_released_checkpoint_is_refused_with_the_converter_named():
    released = layouts.mmpretrain_to_released(_tiny_classifier().state_dict())
    assert layouts.detect_layout(released) == 'released'
    torchvision_names = {(k.replace('pre.', 'features.0.', 1) if k.startswith('pre.') else re.sub(
        r'^features\.(\d+)', lambda m: f'features.{int(m.group(1)) + 1}', k)): v for k, v in released.items()}
    assert layouts.detect_layout(torchvision_names) == 'torchvision'
    for state in (released, torchvision_names):
        with pytest.raises(ValueError, match='torchvision / released Swin-ADN names.*adn_converter.py'):
            SwinTransformerADN(**_tiny_kwargs()).load_state_dict(state)


def test_merging_permutation_maps_torchvision_concat_to_unfold_order():
    c, x = 3, torch.randn(1, 4, 4, 3)  # (N, H, W, C)
    tv = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
    mm = nn.Unfold(2, stride=2)(x.permute(0, 3, 1, 2)).transpose(1, 2).reshape(1, 2, 2, 4 * c)
    assert torch.equal(tv[..., layouts.merging_permutation(c)], mm)


def _released_names(tv_state):
    """torchvision swin_t names -> the release's (models/swin_transformer.py of github.com/wchkang/depth), written
    out: the patch embedding features.0.{0,2} is pre.{0,2}; every other features.K is features.(K-1), so the stages
    are features.{0,2,4,6} and the patch mergings features.{1,3,5}."""
    out = OrderedDict()
    for key, value in tv_state.items():
        parts = key.split('.')
        if parts[0] == 'features':
            parts = ['pre'] + parts[2:] if parts[1] == '0' else ['features', str(int(parts[1]) - 1)] + parts[2:]
        out['.'.join(parts)] = value
    return out


@pytest.fixture(scope='module')
def torchvision_swin_t():
    """torchvision's swin_t (weights=None: no download) with distinct values, and a state dict of the released
    Swin-T-ADN: its names (the release is torchvision's code regrouped, plus twins) with random twins."""
    import torchvision

    from .test_adn_converter import released_manifest
    torch.manual_seed(1)
    tv = torchvision.models.swin_t(weights=None).eval()
    _randomise_layer_norms(tv)
    released = _released_names(tv.state_dict())
    for s, mandatory in enumerate(SPEC_MANDATORY):
        for b in range(mandatory):
            for n in ('norm1', 'norm2'):
                for k in ('weight', 'bias'):
                    shared = released[f'features.{2 * s}.{b}.{n}.{k}']
                    released[f'features.{2 * s}.{b}.{n}_skip.{k}'] = shared + 0.1 * torch.randn_like(shared)
    for index in (1, 3, 5):
        for k in ('weight', 'bias'):
            shared = released[f'features.{index}.norm.{k}']
            released[f'features.{index}.norm_skip.{k}'] = shared + 0.1 * torch.randn_like(shared)
    # exactly the keys and shapes of the release's swin_t (order aside: the release puts twins last in a module)
    assert {k: tuple(v.shape) for k, v in released.items()} == {k: s for k, s, _ in released_manifest('swin_t')}
    return tv, released


def _classifier(**backbone):
    return MMPRETRAIN_MODELS.build(
        dict(type='ImageClassifier',
             backbone=dict(type='SwinTransformerADN', arch='tiny', **backbone),
             neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=1000, in_channels=768))).eval()


def _torchvision_base_net(tv, released):
    """torchvision's swin_t cut by hand to the base-net: mandatory blocks only, twins in place of their norms."""
    base = copy.deepcopy(tv)
    for s, mandatory in enumerate(SPEC_MANDATORY):  # torchvision's stage s is features.{2s+1}, released features.{2s}
        stage = base.features[2 * s + 1]
        base.features[2 * s + 1] = nn.Sequential(*list(stage)[:mandatory])
        for b in range(mandatory):
            for n in ('norm1', 'norm2'):
                getattr(base.features[2 * s + 1][b], n).load_state_dict(
                    {k: released[f'features.{2 * s}.{b}.{n}_skip.{k}'] for k in ('weight', 'bias')})
    for index in (2, 4, 6):  # torchvision's patch mergings; released features.{index - 1}
        base.features[index].norm.load_state_dict(
            {k: released[f'features.{index - 1}.norm_skip.{k}'] for k in ('weight', 'bias')})
    return base


@torch.no_grad()
def test_released_swin_t_converts_and_matches_torchvision(torchvision_swin_t):
    tv, released = torchvision_swin_t
    assert layouts.detect_layout(released) == 'released'
    assert layouts.detect_layout(tv.state_dict()) == 'torchvision'
    mm = layouts.released_to_mmpretrain(released)
    assert layouts.detect_layout(mm) == 'mmpretrain'
    model = _classifier()
    # torchvision's relative position index is mmpretrain's, flattened: the same bias reaches the same pair
    fresh = model.state_dict()
    for key in (k for k in mm if k.endswith('relative_position_index')):
        assert torch.equal(mm[key], fresh[key])
    model.load_state_dict(mm, strict=True)
    x = torch.randn(1, 3, 224, 224)
    torch.testing.assert_close(model(x, mode='tensor'), tv(x), rtol=0, atol=1e-5)
    model.backbone.skip = 'base'
    torch.testing.assert_close(model(x, mode='tensor'), _torchvision_base_net(tv, released)(x), rtol=0, atol=1e-5)


def test_released_layout_round_trips_bit_exactly(torchvision_swin_t):
    _, released = torchvision_swin_t
    back = layouts.mmpretrain_to_released(layouts.released_to_mmpretrain(released))
    assert list(back) == list(released)
    assert all(torch.equal(back[k], released[k]) for k in released)
    assert list(layouts.convert(released, 'released')) == list(released)
    det = layouts.convert(released, 'mmdet')
    assert layouts.detect_layout(det) == 'mmdet' and not any(k.startswith('head') for k in det)


@torch.no_grad()
def test_plain_torchvision_swin_t_and_mmadns_earlier_released_files_convert(torchvision_swin_t):
    tv, released = torchvision_swin_t
    x = torch.randn(1, 3, 224, 224)
    model = _classifier()
    model.load_state_dict(layouts.convert(tv.state_dict(), 'mmpretrain'), strict=True)  # twins: shared copies
    torch.testing.assert_close(model(x, mode='tensor'), tv(x), rtol=0, atol=1e-5)
    assert all(torch.equal(model.backbone.state_dict()[f'{t}.weight'], model.backbone.state_dict()[f'{s}.weight'])
               for t, s in model.backbone.twin_norm_names())
    # before it knew the release, mmadn wrote "released" files in torchvision's names with twins: still read
    earlier = OrderedDict((k.replace('pre.', 'features.0.', 1) if k.startswith('pre.') else re.sub(
        r'^features\.(\d+)', lambda m: f'features.{int(m.group(1)) + 1}', k), v) for k, v in released.items())
    assert layouts.detect_layout(earlier) == 'torchvision'
    again = layouts.convert(earlier, 'released')
    assert list(again) == list(released) and all(torch.equal(again[k], v) for k, v in released.items())


def test_model_state_dict_round_trips_through_the_released_layout():
    model = _tiny_classifier()
    sd = model.state_dict()
    released = layouts.mmpretrain_to_released(sd)
    assert 'features.1.norm_skip.weight' in released and 'features.4.2.norm2_skip.bias' in released
    assert 'pre.0.weight' in released and released['features.0.0.attn.relative_position_index'].dim() == 1
    back = layouts.released_to_mmpretrain(released)
    assert list(back) == list(sd) and all(torch.equal(back[k], sd[k]) for k in sd)


# ---- cost ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def swin_t_classifier():
    with torch.no_grad():
        return _classifier()


def test_parameters_match_released_swin_t_adn(swin_t_classifier):
    params = sum(p.numel() for p in swin_t_classifier.parameters())
    twins = sum(p.numel() for n, p in swin_t_classifier.named_parameters() if '_skip' in n)
    assert twins == 14208  # 8832 in mandatory blocks + 5376 in the three merging norms
    assert abs(params / 1e6 - SPEC_PARAMS_M) < 0.001, params


def test_flops_of_super_and_base_net_match_the_spec(swin_t_classifier):
    x = torch.randn(1, 3, 224, 224)
    measured = {}
    for skip in SPEC_GFLOPS:
        swin_t_classifier.backbone.skip = skip
        measured[skip] = count_flops(swin_t_classifier, lambda i: swin_t_classifier(i, mode='tensor'), x) / 1e9
    swin_t_classifier.backbone.skip = 'super'
    for skip, spec in SPEC_GFLOPS.items():
        assert abs(measured[skip] - spec) / spec < 0.01, measured


# ---- configs and detection -----------------------------------------------------------------------------------


def test_imagenet_config_builds():
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'swin_t_adn_16xb64_in1k.py'))
    assert cfg.default_scope == 'mmpretrain' and 'mmadn' in cfg.custom_imports.imports
    assert [h.type for h in cfg.custom_hooks] == ['ADNDistillHook']
    assert cfg.train_dataloader.dataset.data_root == 'data/imagenet'
    with DefaultScope.overwrite_default_scope('mmpretrain'), torch.no_grad():
        model = MMPRETRAIN_MODELS.build(cfg.model)
    assert isinstance(model.backbone, SwinTransformerADN) and model.backbone.skip == 'FFFF'
    assert model.backbone.stages[0].blocks[1].ffn.dropout_layer.drop_prob == pytest.approx(0.2 / 11)


def test_mask_rcnn_config_builds_trains_and_switches():
    from mmdet.testing import demo_mm_inputs
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'mask_rcnn_swin_t_adn_fpn_1x_coco.py'))
    assert cfg.default_scope == 'mmdet' and 'mmadn' in cfg.custom_imports.imports
    assert [h.type for h in cfg.custom_hooks] == ['ADNDistillHook'] and cfg.custom_hooks[0].features == dict(
        neck='spatial')
    backbone_cfg = cfg.model.backbone
    assert backbone_cfg.init_cfg == dict(type='Pretrained', checkpoint='checkpoints/swin_t_adn_in1k.pth',
                                         prefix='backbone.')
    assert 'embed_dims' not in backbone_cfg and 'convert_weights' not in backbone_cfg  # mmdet's Swin keys are gone
    assert not any('http' in str(v) for v in cfg.values() if isinstance(v, str))
    backbone_cfg.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MMDET_MODELS.build(cfg.model)
    assert isinstance(model.backbone, SwinTransformerADN) and model.backbone.out_indices == (0, 1, 2, 3)
    model.init_weights()
    model.train()
    torch.manual_seed(0)
    packed = demo_mm_inputs(batch_size=1, image_shapes=[(3, 224, 224)], num_items=[2], num_classes=80,
                            with_mask=True)
    data = model.data_preprocessor(packed, True)
    feats = {}
    model.backbone.register_forward_hook(lambda m, i, o: feats.__setitem__(m.skip, o))
    for skip in ('super', 'base'):
        set_subnet(model, skip)
        losses = model(**data, mode='loss')
        total = sum(v if isinstance(v, torch.Tensor) else sum(v) for k, v in losses.items() if 'loss' in k)
        assert torch.isfinite(total) and {'loss_mask', 'loss_rpn_cls'} <= set(losses), skip
    assert set(feats) == {'FFFF', 'TTTT'}  # set_subnet reached the detector's backbone
    for outs in feats.values():  # NCHW, one per out index
        assert [tuple(o.shape[1:]) for o in outs] == [(96, 56, 56), (192, 28, 28), (384, 14, 14), (768, 7, 7)]
    assert not torch.allclose(feats['FFFF'][3], feats['TTTT'][3])
