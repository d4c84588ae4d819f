"""What every ADN backbone must do, checked on a tiny build of each family (after timm's ``test_models.py``).

The per-backbone test files keep only what is particular to a family: the released layouts and figures, the
blocks and norms of the spec, configs.
"""
import copy
import pickle

import pytest
import torch
from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS as MMDET_MODELS
from mmpretrain.models.backbones import MobileNetV2, SwinTransformer, VisionTransformer
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from torch import nn

from mmadn.models import MobileNetV2ADN, ResNetADN, SwinTransformerADN, VisionTransformerADN

SWIN_ARCH = dict(embed_dims=16, depths=[2, 2, 4, 2], num_heads=[1, 1, 2, 2])
VIT_ARCH = dict(embed_dims=16, num_layers=6, num_heads=2, feedforward_channels=32)

# family: (ADN class, upstream class, constructor arguments, input size)
FAMILIES = {
    'resnet': (ResNetADN, ResNet, dict(depth=18, base_channels=8, out_indices=(0, 1, 2, 3)), 32),
    'mobilenet_v2': (MobileNetV2ADN, MobileNetV2, dict(widen_factor=0.25, out_indices=(2, 4, 7)), 32),
    'swin': (SwinTransformerADN, SwinTransformer,
             dict(arch=SWIN_ARCH, img_size=32, window_size=2, pad_small_map=True, out_indices=(0, 1, 2, 3), drop_path_rate=0.), 32),
    'vit': (VisionTransformerADN, VisionTransformer,
            dict(arch=VIT_ARCH, img_size=32, patch_size=8, out_indices=(2, 5), drop_path_rate=0.), 32),
}


def _build(family, **kwargs):
    cls, _, args, _ = FAMILIES[family]
    torch.manual_seed(0)
    model = cls(**args, **kwargs)
    model.init_weights()
    _perturb_norms(model)
    return model.eval()


def _perturb_norms(model):
    """Norms away from their init and twins different from their shared norm, so that any mix-up shows."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)


def _input(family, batch=2):
    torch.manual_seed(1)
    return torch.randn(batch, 3, FAMILIES[family][3], FAMILIES[family][3])


def _outputs(model, x):
    out = model(x)
    return [o if torch.is_tensor(o) else o[0] for o in (out if isinstance(out, (tuple, list)) else [out])]


def _assert_same(a, b, atol=0.0):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, atol=atol, rtol=0 if atol == 0 else 1e-5)


families = pytest.mark.parametrize('family', list(FAMILIES))


@families
def test_registered_in_both_libraries(family):
    cls, _, args, _ = FAMILIES[family]
    for registry in (MMDET_MODELS, MMPRETRAIN_MODELS):
        assert isinstance(registry.build(dict(type=cls.__name__, **args)), cls)


@families
@pytest.mark.parametrize('bad', ['TTX', 'T', 110, None, [True]])
def test_invalid_skip_fails_at_build_and_at_switch(family, bad):
    cls, _, args, _ = FAMILIES[family]
    with pytest.raises(ValueError, match='Invalid skip'):
        cls(**args, skip=bad)
    model = _build(family)
    with pytest.raises(ValueError, match="'T' \\(skip\\) / 'F' \\(keep\\)"):
        model.skip = bad
    assert model.skip == 'F' * model.num_skip_flags  # a refused switch changes nothing


@families
@pytest.mark.parametrize('train', [False, True])
def test_super_net_equals_the_plain_network(family, train):
    _, upstream, args, _ = FAMILIES[family]
    adn = _build(family)
    plain = upstream(**args)
    twins = {f'{t}.' for t, _ in adn.twin_norm_names()}
    plain.load_state_dict({k: v for k, v in adn.state_dict().items() if not k.startswith(tuple(twins))})
    adn.train(train), plain.train(train)
    x = _input(family)
    _assert_same(_outputs(adn, x), _outputs(plain, x))


@families
def test_every_subnet_runs_its_blocks_and_the_base_net_is_smallest(family):
    model = _build(family)
    blocks = model.blocks_per_subnet()
    assert list(blocks) == model.subnets() and len(blocks) == 2 ** model.num_skip_flags
    counts = {skip: len(names) for skip, names in blocks.items()}
    assert counts[model.subnets()[0]] > counts[model.subnets()[-1]] == min(counts.values())
    x = _input(family, batch=1)
    outputs = {}
    for skip in (model.subnets()[0], model.subnets()[-1]):
        model.skip = skip
        outputs[skip] = _outputs(model, x)
    assert not torch.equal(outputs[model.subnets()[0]][-1], outputs[model.subnets()[-1]][-1])


@families
def test_switching_changes_no_tensor_and_builds_nothing(family):
    model = _build(family)
    before = {k: v.data_ptr() for k, v in model.state_dict(keep_vars=True).items()}
    modules = [id(m) for m in model.modules()]
    for skip in model.subnets():
        model.skip = skip
    model.skip = 'super'
    assert {k: v.data_ptr() for k, v in model.state_dict(keep_vars=True).items()} == before
    assert [id(m) for m in model.modules()] == modules


@families
def test_switch_context_restores_and_a_deep_copy_switches_alone(family):
    model = _build(family)
    base = 'T' * model.num_skip_flags
    with model.switch(base):
        assert model.skip == base
    assert model.skip == 'F' * model.num_skip_flags
    model.skip = base
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert clone.skip == base
        x = _input(family, batch=1)
        _assert_same(_outputs(clone, x), _outputs(model, x))
        clone.skip = 'super'
        assert model.skip == base and model.active_blocks() == model.active_blocks(base)
        _assert_same(_outputs(clone, x), _outputs(_build(family), x))


@families
def test_only_the_active_norm_set_trains(family):
    model = _build(family)
    model.train()
    twins = {t for t, _ in model.twin_norm_names()}
    shared = {s for _, s in model.twin_norm_names()}
    modules = dict(model.named_modules())

    def grads(skip):
        model.zero_grad()
        model.skip = skip
        sum(o.float().mean() for o in _outputs(model, _input(family))).backward()
        return {name for name in twins | shared
                if modules[name].weight.grad is not None and modules[name].weight.grad.abs().sum() > 0}

    assert grads('super') == shared
    assert grads('base') == twins


@families
def test_twins_start_as_copies_and_init_does_not_depend_on_the_skip_at_build(family):
    cls, _, args, _ = FAMILIES[family]
    states = []
    for skip in ('super', 'base'):
        torch.manual_seed(0)
        model = cls(**args, skip=skip)
        model.init_weights()
        states.append(model.state_dict())
        for twin, shared in model.twin_norm_names():
            for key, value in model.state_dict().items():
                if key.startswith(shared + '.'):
                    torch.testing.assert_close(model.state_dict()[twin + key[len(shared):]], value, atol=0, rtol=0)
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        torch.testing.assert_close(states[0][key], states[1][key], atol=0, rtol=0)


@families
def test_jit_trace_follows_the_active_subnet(family):
    model = _build(family)
    x = _input(family, batch=1)
    for skip in (model.subnets()[-1], model.subnets()[0]):
        model.skip = skip
        traced = torch.jit.trace(model, x, check_trace=False, strict=False)
        _assert_same(_outputs(traced, x), _outputs(model, x), atol=1e-5)


@families
def test_load_switch_export_gives_the_same_outputs(family, tmp_path):
    cls, _, args, _ = FAMILIES[family]
    torch.save(_build(family).state_dict(), tmp_path / 'adn.pth')
    model = cls(**args)
    model.load_state_dict(torch.load(tmp_path / 'adn.pth'))
    model.eval()
    x = _input(family)
    skip = ''.join('TF'[i % 2] for i in range(model.num_skip_flags))
    for skip in (skip, 'T' * model.num_skip_flags):
        model.skip = skip
        cfg, static = model.to_static()
        assert not any(p.endswith('_skip') for p in dict(static.named_modules()))
        _assert_same(_outputs(static, x), _outputs(model, x))
        rebuilt = MMPRETRAIN_MODELS.build(cfg)
        rebuilt.load_state_dict(static.state_dict())
        rebuilt.eval()
        _assert_same(_outputs(rebuilt, x), _outputs(model, x))
        if model.norms_fold:
            _, fused = model.to_static(fuse=True)
            assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
            _assert_same(_outputs(fused, x), _outputs(model, x), atol=1e-5)
        else:
            with pytest.raises(ValueError, match='fuse=False'):
                model.to_static(fuse=True)
    assert model.skip == skip  # export leaves the adaptive model as it was
