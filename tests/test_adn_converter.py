"""tools/model_converters/adn_converter.py: one command for every ADN architecture, layout detected, bit-exact."""
from collections import OrderedDict

import pytest
import torch

from mmadn.utils import safe_torch_load

from ._cli import load_tool, run_tool
from .test_mobilenet_v2_adn import _classifier as mobilenet_v2_classifier
from .test_swin_adn import _tiny_classifier as swin_classifier
from .test_vit_adn import _classifier as vit_classifier

TOOL = 'tools/model_converters/adn_converter.py'


def resnet_classifier():
    from mmpretrain.registry import MODELS
    return MODELS.build(
        dict(type='ImageClassifier', backbone=dict(type='ResNetADN', depth=18), neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=10, in_channels=512)))


CLASSIFIERS = {
    'resnet': resnet_classifier,
    'mobilenet_v2': lambda: mobilenet_v2_classifier(num_classes=10),
    'vit': vit_classifier,
    'swin': swin_classifier,
}


# ---- the release's real layouts --------------------------------------------------------------------------------
# tests/released_layouts/<model>.txt: the key, shape and dtype of every tensor of the authors' released models,
# produced from their code (github.com/wchkang/depth models/) by tests/released_layouts/make_manifests.py.
RELEASED_MODELS = {'resnet': 'resnet50', 'mobilenet_v2': 'mobilenet_v2', 'swin': 'swin_t', 'vit': 'vit_b_16'}


def released_manifest(model_name):
    """[(key, shape, dtype)] of a released model, in its state_dict() order."""
    from ._cli import ROOT
    rows = []
    with open(f'{ROOT}/tests/released_layouts/{model_name}.txt') as f:
        for line in f:
            if line.startswith('#'):
                continue
            key, shape, dtype = line.split()
            rows.append((key, () if shape == '-' else tuple(int(n) for n in shape.split(',')), getattr(torch, dtype)))
    return rows


def released_state(model_name, seed=0):
    """A state dict with exactly the keys, shapes and dtypes of the released model; every float tensor random (no
    two alike, so a tensor put in another's place would show)."""
    gen, state = torch.Generator().manual_seed(seed), OrderedDict()
    for key, shape, dtype in released_manifest(model_name):
        state[key] = (torch.randn(shape, generator=gen, dtype=dtype) if dtype.is_floating_point else
                      torch.randint(0, 100, shape, generator=gen, dtype=dtype))
    return state


def full_size_classifier(arch):
    """The mmpretrain classifier that a released ImageNet model converts to."""
    from mmpretrain.registry import MODELS
    backbone, neck, head = {
        'resnet': (dict(type='ResNetADN', depth=50), 'gap', dict(type='LinearClsHead', in_channels=2048)),
        'mobilenet_v2': (dict(type='MobileNetV2ADN'), 'gap', dict(type='LinearClsHead', in_channels=1280)),
        'swin': (dict(type='SwinTransformerADN', arch='tiny'), 'gap', dict(type='LinearClsHead', in_channels=768)),
        'vit': (dict(type='VisionTransformerADN', arch='b', img_size=224, patch_size=16), None,
                dict(type='VisionTransformerClsHead', in_channels=768)),
    }[arch]
    return MODELS.build(dict(type='ImageClassifier', backbone=backbone,
                             neck=dict(type='GlobalAveragePooling') if neck else None,
                             head=dict(head, num_classes=1000)))


# Written out from the release's code, one pair per kind of twin (and a few more): released key -> mmpretrain key.
RELEASED_KEY_PAIRS = {
    'resnet': {'conv1.weight': 'backbone.conv1.weight',
               'layer3.2.bn2_skip.weight': 'backbone.layer3.2.bn2_skip.weight',
               'layer1.0.downsample.1.running_var': 'backbone.layer1.0.downsample.1.running_var',
               'fc.bias': 'head.fc.bias'},
    'mobilenet_v2': {'features.0.norm_skip.running_mean': 'backbone.conv1.bn_skip.running_mean',
                     'features.1.conv.1.norm_skip.weight': 'backbone.layer1.0.conv.1.bn_skip.weight',
                     'features.4.1.conv.2.norm_skip.running_var': 'backbone.layer4.1.conv.2.bn_skip.running_var',
                     'features.7.conv.0.norm_skip.bias': 'backbone.layer7.0.conv.0.bn_skip.bias',
                     'features.8.norm_skip.weight': 'backbone.conv2.bn_skip.weight',
                     'classifier.1.weight': 'head.fc.weight'},
    'swin': {'pre.0.weight': 'backbone.patch_embed.projection.weight',
             'pre.2.bias': 'backbone.patch_embed.norm.bias',
             'features.0.0.norm1_skip.weight': 'backbone.stages.0.blocks.0.norm1_skip.weight',
             'features.4.2.norm2_skip.bias': 'backbone.stages.2.blocks.2.norm2_skip.bias',
             'features.6.1.mlp.3.weight': 'backbone.stages.3.blocks.1.ffn.layers.1.weight',
             'features.2.1.attn.qkv.weight': 'backbone.stages.1.blocks.1.attn.w_msa.qkv.weight',
             'norm.weight': 'backbone.norm3.weight', 'head.weight': 'head.fc.weight'},
    'vit': {'conv_proj.weight': 'backbone.patch_embed.projection.weight',
            'encoder.layers.encoder_layer_10.ln_2_skip.bias': 'backbone.layers.10.ln2_skip.bias',
            'encoder.layers.encoder_layer_0.ln_1_skip.weight': 'backbone.layers.0.ln1_skip.weight',
            'encoder.layers.encoder_layer_11.mlp.3.weight': 'backbone.layers.11.ffn.layers.1.weight',
            'heads.head.weight': 'head.layers.head.weight'},
}
# Swin's patch mergings (features.{1,3,5} in the release) hold the 2x2 sub-patches in another order: the same
# values, permuted (swin_adn_layouts.merging_permutation).
SWIN_MERGING_PAIRS = {'features.1.norm_skip.weight': 'backbone.stages.0.downsample.norm_skip.weight',
                      'features.3.norm.bias': 'backbone.stages.1.downsample.norm.bias',
                      'features.5.reduction.weight': 'backbone.stages.2.downsample.reduction.weight'}


def _load_converter():
    return load_tool(TOOL)


@pytest.mark.parametrize('arch', sorted(RELEASED_MODELS))
@torch.no_grad()
def test_the_released_models_real_layout_converts_both_ways_bit_exactly_with_the_twins_in_place(arch):
    converter = _load_converter()
    released = released_state(RELEASED_MODELS[arch])
    assert converter.detect_arch(released) == (arch, 'released')

    _, _, mm = converter.convert(released, 'mmpretrain')
    for old, new in RELEASED_KEY_PAIRS[arch].items():
        assert torch.equal(mm[new], released[old]), (old, new)
    if arch == 'swin':
        for old, new in SWIN_MERGING_PAIRS.items():
            assert mm[new].shape == released[old].shape and not torch.equal(mm[new], released[old])
            assert torch.equal(mm[new].flatten().sort().values, released[old].flatten().sort().values), (old, new)

    model = full_size_classifier(arch)
    model_twins = {k for k in model.state_dict() if '_skip.' in k}
    # every twin of the model comes from the release (the load hook would quietly fill a missing one), no other
    assert {k for k in mm if '_skip.' in k} == model_twins
    assert sum('_skip.' in k for k in released) == len(model_twins)
    model.load_state_dict(mm, strict=True)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in mm.items())

    _, _, back = converter.convert(mm, 'released')
    assert list(back) == list(released)  # the release's own key order
    for k, v in released.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v), k


@pytest.mark.parametrize('arch', ['mobilenet_v2', 'swin', 'vit'])
def test_a_torchvision_model_becomes_exactly_the_released_keys_with_twins_copied(arch):
    import torchvision
    name = RELEASED_MODELS[arch]
    plain = getattr(torchvision.models, name)().state_dict()
    converter = _load_converter()
    _, source, released = converter.convert(plain, 'released')
    assert source == 'torchvision'
    assert [(k, tuple(v.shape), v.dtype) for k, v in released.items()] == released_manifest(name)
    for key, value in released.items():
        if '_skip.' in key:
            shared = key.replace('_skip.', '.')
            assert torch.equal(value, released[shared]) and value.data_ptr() != released[shared].data_ptr(), key


@pytest.mark.slow
def test_a_released_swin_t_file_converts_with_the_cli(tmp_path):
    # the CLI once refused it: "expected ... 'features.1.0.attn.relative_position_bias_table'"
    released = released_state('swin_t')
    torch.save(released, tmp_path / 'swin_t_adn.pth')  # the release's files are bare state dicts
    _, log = run_tool(TOOL, tmp_path / 'swin_t_adn.pth', tmp_path / 'mm.pth', '--to', 'mmpretrain')
    assert '(swin, released layout, 215 tensors)' in log
    mm = safe_torch_load(str(tmp_path / 'mm.pth'))
    assert mm['meta']['converted_from'] == 'released' and len(mm['state_dict']) == 215
    back = _load_converter().convert(mm['state_dict'], 'released')[2]
    assert list(back) == list(released) and all(torch.equal(back[k], v) for k, v in released.items())


def _randomised_state(model):
    out = OrderedDict()
    for k, v in model.state_dict().items():
        out[k] = (torch.rand_like(v) + 0.5) if v.is_floating_point() else v
    return out


@pytest.mark.parametrize('arch', sorted(CLASSIFIERS))
def test_mmpretrain_to_released_and_back_is_bit_exact_with_the_arch_detected(arch, tmp_path, capsys):
    """The tool's main() in this process (the CLI itself is run by the two tests around this one)."""
    state = _randomised_state(CLASSIFIERS[arch]())
    torch.save(dict(meta=dict(), state_dict=state), tmp_path / 'cls.pth')
    converter = _load_converter()

    def convert(*argv):
        converter.main([str(a) for a in argv])
        return capsys.readouterr().out

    log = convert(tmp_path / 'cls.pth', tmp_path / 'released.pth', '--to', 'released')
    assert f'({arch}, mmpretrain layout' in log
    released = safe_torch_load(str(tmp_path / 'released.pth'))
    assert not any(k.startswith('backbone.') for k in released)
    assert any('_skip' in k for k in released)  # the twins travel in the released names

    convert(tmp_path / 'released.pth', tmp_path / 'back.pth', '--to', 'mmpretrain')
    back = safe_torch_load(str(tmp_path / 'back.pth'))['state_dict']
    assert set(back) == set(state)
    for k, v in state.items():
        assert torch.equal(back[k], v), k

    convert(tmp_path / 'released.pth', tmp_path / 'det.pth', '--to', 'mmdet', '--arch', arch)
    det = safe_torch_load(str(tmp_path / 'det.pth'))['state_dict']
    assert set(det) == {k for k in state if k.startswith('backbone.')}
    for k, v in det.items():
        assert torch.equal(v, state[k]), k


@pytest.mark.slow
def test_an_unknown_checkpoint_is_refused_naming_every_architecture(tmp_path):
    torch.save({'encoder.weight': torch.zeros(2)}, tmp_path / 'odd.pth')
    code, log = run_tool(TOOL, tmp_path / 'odd.pth', tmp_path / 'x.pth', '--to', 'mmpretrain', check=False)
    assert code != 0 and 'No ADN architecture recognises' in log
    assert all(arch in log for arch in CLASSIFIERS)
    assert not (tmp_path / 'x.pth').exists()


@pytest.mark.parametrize('arch, build', [('resnet', 'resnet18'), ('mobilenet_v2', 'mobilenet_v2'),
                                         ('swin', 'swin_t'), ('vit', 'vit_b_32')])
def test_plain_torchvision_models_are_told_apart(arch, build):
    # torchvision's MobileNetV2 and Swin both number their modules features.N: a probe shared by two
    # architectures once sent a released Swin to the MobileNetV2 converter.
    import torchvision
    converter = _load_converter()
    state = getattr(torchvision.models, build)().state_dict()
    assert converter.detect_arch(state) == (arch, 'torchvision')
