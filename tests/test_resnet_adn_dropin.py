"""Issue 13, item 10: ResNetADN as a drop-in for mmdet's and mmpretrain's ResNet.

The checks follow mmdet's and mmpretrain's own ResNet tests (argument order and validation, deep stem, plugins,
GroupNorm) and add what mmpretrain offers beyond mmdet: its ResNetV1c / V1d checkpoints, ``drop_path_rate`` and
``get_layer_depth`` for layer-wise LR decay.
"""
import copy

import pytest
import torch
from mmpretrain.models.backbones import ResNet as MMPretrainResNet
from mmpretrain.models.backbones import ResNetV1c, ResNetV1d
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

from mmadn.models import ResNetADN


def _randomise_norms(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)


def test_second_positional_argument_is_in_channels_as_in_mmdet():
    model = ResNetADN(18, 1, out_indices=(3, )).eval()
    assert model.conv1.in_channels == 1 and model.skip == 'FFFF'
    assert model(torch.randn(1, 1, 32, 32))[0].shape == (1, 512, 1, 1)
    assert ResNetADN(50, 3, 16).stem_channels == 16  # mmdet's order: depth, in_channels, stem_channels, ...
    with pytest.raises(TypeError, match='skip='):
        ResNetADN(18, 'TTFF')  # the old positional skip
    assert ResNetADN(18, skip='TTFF').skip == 'TTFF'


def test_mmdet_argument_checks_still_apply():
    with pytest.raises(KeyError):
        ResNetADN(20)
    for num_stages in (0, 5):
        with pytest.raises(AssertionError):
            ResNetADN(50, num_stages=num_stages)
    with pytest.raises(AssertionError):
        ResNetADN(50, style='tensorflow')
    with pytest.raises(TypeError):
        ResNetADN(50, pretrained=0)
    with pytest.raises(TypeError):
        ResNetADN(50, no_such_argument=1)


@pytest.mark.parametrize('skip', ['super', 'base'])
def test_mmdet_options_build_and_run_in_every_subnet(skip):
    x = torch.randn(1, 3, 32, 32)
    gn = ResNetADN(50, base_channels=4, norm_cfg=dict(type='GN', num_groups=2, requires_grad=True), skip=skip)
    assert isinstance(gn.layer1[0].gn1_skip, nn.GroupNorm)
    assert [f.shape[1] for f in gn.train()(x)] == [16, 32, 64, 128]
    plugins = [dict(cfg=dict(type='ContextBlock', ratio=1. / 16), stages=(False, True, True, False),
                    position='after_conv3')]
    with_plugins = ResNetADN(50, plugins=plugins, base_channels=8, skip=skip)
    assert with_plugins.layer2[0].context_block.in_channels == 64
    assert [f.shape[1] for f in with_plugins.train()(x)] == [32, 64, 128, 256]
    v1d = ResNetADN(50, deep_stem=True, avg_down=True, stem_channels=6, base_channels=2, frozen_stages=1, skip=skip)
    assert len(v1d.stem) == 9 and v1d.stem[7].num_features == 6
    assert isinstance(v1d.layer2[0].downsample[0], nn.AvgPool2d)
    v1d.train()
    assert not any(p.requires_grad for p in v1d.stem.parameters())
    assert not v1d.layer1[0].bn1_skip.training and not v1d.layer1[0].bn1_skip.weight.requires_grad
    assert [f.shape[1] for f in v1d(x)] == [8, 16, 32, 64]


@pytest.mark.parametrize('mmpretrain_cls, depth', [(ResNetV1c, 18), (ResNetV1d, 50)])
def test_mmpretrain_deep_stem_checkpoint_loads(tmp_path, mmpretrain_cls, depth):
    """mmpretrain's deep stem is three ConvModules (stem.i.conv / stem.i.bn), mmdet's one flat Sequential."""
    source = mmpretrain_cls(depth=depth, out_indices=(3, ))
    _randomise_norms(source)
    state = source.state_dict()
    assert 'stem.0.conv.weight' in state and 'stem.2.bn.running_var' in state
    model = ResNetADN(depth, deep_stem=True, avg_down=mmpretrain_cls is ResNetV1d, out_indices=(3, ))
    model.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 32, 32)
    source.eval()  # mmpretrain's train() returns None
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x)[0], source(x)[0])
        assert torch.equal(model.layer1[0].bn1_skip.running_var, state['layer1.0.bn1.running_var'])
    # the usual path: an mmpretrain classifier checkpoint as a backbone init
    path = tmp_path / 'v1.pth'
    torch.save({'state_dict': {'backbone.' + k: v for k, v in state.items()}}, path)
    init = ResNetADN(depth, deep_stem=True, avg_down=mmpretrain_cls is ResNetV1d, out_indices=(3, ),
                     init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    init.init_weights()
    assert torch.equal(init.stem[6].weight, state['stem.2.conv.weight'])
    assert torch.equal(init.stem[7].running_mean, state['stem.2.bn.running_mean'])


def test_drop_path_rate_is_mmpretrains_stochastic_depth():
    source = MMPretrainResNet(50, stem_channels=8, base_channels=8, drop_path_rate=0.3, out_indices=(3, ))
    _randomise_norms(source)
    model = ResNetADN(50, stem_channels=8, base_channels=8, drop_path_rate=0.3, out_indices=(3, ),
                      norm_eval=False)  # mmpretrain's default; mmdet's is True
    model.load_state_dict(source.state_dict(), strict=True)  # drop path adds nothing to the state dict
    rates = [getattr(b.drop_path, 'drop_prob', 0.0) for layer in source.res_layers for b in getattr(source, layer)]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.3)
    assert [getattr(getattr(b, 'drop_path', None), 'drop_prob', 0.0) for s in model.stages for b in s] == rates
    x = torch.randn(4, 3, 32, 32)
    source.train()
    torch.manual_seed(3)
    expected = source(x)[0]
    torch.manual_seed(3)
    torch.testing.assert_close(model.train()(x)[0], expected)
    source.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x)[0], source(x)[0])  # no drop path in eval
    # the base-net drops its twins' branches too, and a deep copy drops with its own modules
    model.train()
    with model.switch('base'):
        torch.manual_seed(5)
        first = model(x)[0]
        torch.manual_seed(5)
        assert torch.equal(model(x)[0], first)
        torch.manual_seed(6)
        assert not torch.equal(model(x)[0], first)
    clone = copy.deepcopy(model).eval()
    with torch.no_grad():
        torch.testing.assert_close(clone(x)[0], model.eval()(x)[0])


def _classifier(backbone):
    return MMPRETRAIN_MODELS.build(
        dict(type='ImageClassifier', backbone=backbone, neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=3, in_channels=2048)))


def test_get_layer_depth_matches_mmpretrain_and_drives_layer_decay():
    model = _classifier(dict(type='ResNetADN', depth=50, out_indices=(3, )))
    reference = MMPretrainResNet(50)
    for name, _ in model.named_parameters():
        shared = name.replace('_skip.', '.')  # a twin sits at its block's depth
        assert model.get_layer_depth(name) == reference.get_layer_depth(shared, 'backbone.'), name
    assert model.backbone.get_layer_depth('backbone.layer3.5.bn2_skip.weight', 'backbone.') == (5, 8)
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='LearningRateDecayOptimWrapperConstructor',
        optim_wrapper_cfg=dict(optimizer=dict(type='SGD', lr=1.0, weight_decay=0.0)),
        paramwise_cfg=dict(layer_decay_rate=0.5)))
    wrapper = constructor(model)
    scales = {g['param_name']: g['lr_scale'] for g in wrapper.optimizer.param_groups for _ in g['params']}
    assert scales['backbone.layer1.0.bn1_skip.weight'] == scales['backbone.layer1.0.bn1.weight'] == 0.5**6
    assert scales['head.fc.weight'] == 1.0
    with pytest.raises(NotImplementedError, match='stage_blocks'):
        ResNetADN(18).get_layer_depth('backbone.layer1.0.conv1.weight', 'backbone.')
