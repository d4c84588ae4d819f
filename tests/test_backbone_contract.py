"""What every ADN backbone must do, checked on a tiny build of each family of ``_families.FAMILIES`` (after
timm's ``test_models.py``): its super-net is the upstream network, frozen stages and plain checkpoints reach the
twins, switching and export keep their promises, Algorithm 1 trains every twin.

The per-backbone test files keep only what is particular to a family: the released layouts and figures, the
blocks and norms of the spec, configs.
"""
import copy
import inspect
import pickle

import pytest
import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmpretrain.structures import DataSample
from torch import nn

from mmadn.models import SubPathDistillation

from ._families import FAMILIES, build_family, family_input, family_kwargs, perturb_norms

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
    cls, args = FAMILIES[family].adn, family_kwargs(family)
    for registry in (MMDET_MODELS, MMPRETRAIN_MODELS):
        assert isinstance(registry.build(dict(type=cls.__name__, **args)), cls)


@families
@pytest.mark.parametrize('bad', ['TTX', 'T', 110, None, [True]])
def test_invalid_skip_fails_at_build_and_at_switch(family, bad):
    cls, args = FAMILIES[family].adn, family_kwargs(family)
    with pytest.raises(ValueError, match='Invalid skip'):
        cls(**args, skip=bad)
    model = build_family(family)
    with pytest.raises(ValueError, match="'T' \\(skip\\) / 'F' \\(keep\\)"):
        model.skip = bad
    assert model.skip == 'F' * model.num_skip_flags  # a refused switch changes nothing


def _equivalence_cases():
    """The tiny build of each family and its variants (out_indices, output types, depths), each an id."""
    for name, family in FAMILIES.items():
        for variant in ({}, *family.variants):
            yield pytest.param(name, variant, id='-'.join([name, *(f'{k}={v}' for k, v in variant.items())]))


@pytest.mark.parametrize('family, variant', list(_equivalence_cases()))
@pytest.mark.parametrize('train', [False, True])
def test_super_net_equals_the_plain_network(family, variant, train):
    """Outputs, and in training the running statistics, are upstream's to the bit; the twins stay as they were."""
    noise = FAMILIES[family].train_noise if train else {}
    adn = build_family(family, **variant, **noise)
    plain = FAMILIES[family].upstream(**family_kwargs(family, **variant, **noise))
    twins = tuple(f'{t}.' for t, _ in adn.twin_norm_names())
    plain.load_state_dict({k: v for k, v in adn.state_dict().items() if not k.startswith(twins)})
    twin_state = {k: v.clone() for k, v in adn.state_dict().items() if k.startswith(twins)}
    adn.train(train), plain.train(train)
    x = family_input(family)
    torch.manual_seed(2)  # the same dropout masks: both run the same random ops in the same order
    expected = _outputs(plain, x)
    torch.manual_seed(2)
    _assert_same(_outputs(adn, x), expected)
    adn_state = adn.state_dict()
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(adn_state[key], value, atol=0, rtol=0)
    for key, value in twin_state.items():
        torch.testing.assert_close(adn_state[key], value, atol=0, rtol=0)


@families
def test_every_subnet_runs_its_blocks_and_the_base_net_is_smallest(family):
    model = build_family(family)
    blocks = model.blocks_per_subnet()
    assert list(blocks) == model.subnets() and len(blocks) == 2 ** model.num_skip_flags
    counts = {skip: len(names) for skip, names in blocks.items()}
    assert counts[model.subnets()[0]] > counts[model.subnets()[-1]] == min(counts.values())
    x = family_input(family, batch=1)
    outputs = {}
    for skip in (model.subnets()[0], model.subnets()[-1]):
        model.skip = skip
        outputs[skip] = _outputs(model, x)
    assert not torch.equal(outputs[model.subnets()[0]][-1], outputs[model.subnets()[-1]][-1])


@families
def test_switching_changes_no_tensor_and_builds_nothing(family):
    model = build_family(family)
    before = {k: v.data_ptr() for k, v in model.state_dict(keep_vars=True).items()}
    modules = [id(m) for m in model.modules()]
    for skip in model.subnets():
        model.skip = skip
    model.skip = 'super'
    assert {k: v.data_ptr() for k, v in model.state_dict(keep_vars=True).items()} == before
    assert [id(m) for m in model.modules()] == modules


@families
def test_switch_context_restores_and_a_deep_copy_switches_alone(family):
    model = build_family(family)
    base = 'T' * model.num_skip_flags
    with model.switch(base):
        assert model.skip == base
    assert model.skip == 'F' * model.num_skip_flags
    model.skip = base
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert clone.skip == base
        x = family_input(family, batch=1)
        _assert_same(_outputs(clone, x), _outputs(model, x))
        clone.skip = 'super'
        assert model.skip == base and model.active_blocks() == model.active_blocks(base)
        _assert_same(_outputs(clone, x), _outputs(build_family(family), x))


@families
def test_only_the_active_norm_set_trains(family):
    model = build_family(family)
    model.train()
    twins = {t for t, _ in model.twin_norm_names()}
    shared = {s for _, s in model.twin_norm_names()}
    modules = dict(model.named_modules())

    def grads(skip):
        model.zero_grad()
        model.skip = skip
        sum(o.float().mean() for o in _outputs(model, family_input(family))).backward()
        return {name for name in twins | shared
                if modules[name].weight.grad is not None and modules[name].weight.grad.abs().sum() > 0}

    assert grads('super') == shared
    assert grads('base') == twins


@families
def test_twins_start_as_copies_and_init_does_not_depend_on_the_skip_at_build(family):
    cls, args = FAMILIES[family].adn, family_kwargs(family)
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
    model = build_family(family)
    x = family_input(family, batch=1)
    for skip in (model.subnets()[-1], model.subnets()[0]):
        model.skip = skip
        traced = torch.jit.trace(model, x, check_trace=False, strict=False)
        _assert_same(_outputs(traced, x), _outputs(model, x), atol=1e-5)


@families
def test_load_switch_export_gives_the_same_outputs(family, tmp_path):
    cls, args = FAMILIES[family].adn, family_kwargs(family)
    torch.save(build_family(family).state_dict(), tmp_path / 'adn.pth')
    model = cls(**args)
    model.load_state_dict(torch.load(tmp_path / 'adn.pth'))
    model.eval()
    x = family_input(family)
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


@families
def test_frozen_stages_and_norm_eval_hold_the_twins_with_their_shared_norms(family):
    """The upstream's frozen_stages / norm_eval reach the twins of the stages they reach, and nothing else."""
    upstream = FAMILIES[family].upstream
    has_norm_eval = 'norm_eval' in inspect.signature(upstream.__init__).parameters
    for settings in (dict(frozen_stages=1, norm_eval=True), dict(frozen_stages=-1, norm_eval=False)):
        if not has_norm_eval:
            settings.pop('norm_eval')
        model = build_family(family, **settings)
        assert model.train() is model  # mmdet's / mmpretrain's train() return None
        plain = upstream(**family_kwargs(family, **settings))
        plain.train()
        params = dict(model.named_parameters())
        assert {n: p.requires_grad for n, p in plain.named_parameters()} == \
            {n: params[n].requires_grad for n, _ in plain.named_parameters()}, settings
        modules = dict(model.named_modules())
        assert {n: m.training for n, m in plain.named_modules()} == \
            {n: modules[n].training for n, _ in plain.named_modules()}, settings
        frozen = set()
        for twin, shared in model.twin_norm_names():
            assert [p.requires_grad for p in modules[twin].parameters()] == \
                [p.requires_grad for p in modules[shared].parameters()], twin
            assert modules[twin].training == modules[shared].training, twin
            frozen.add(not modules[shared].weight.requires_grad)
        assert frozen == ({True, False} if settings['frozen_stages'] > 0 else {False}), settings


def _plain_checkpoint(family, tmp_path, prefix):
    """A checkpoint of the upstream network (norms perturbed), under ``prefix`` as in a classifier's file."""
    torch.manual_seed(0)
    plain = perturb_norms(FAMILIES[family].upstream(**family_kwargs(family)))
    state = {prefix + k: v for k, v in plain.state_dict().items()}
    if prefix:  # a whole classifier: its head is not the backbone's
        state['head.fc.weight'] = torch.zeros(3, 4)
    path = tmp_path / 'plain.pth'
    torch.save({'state_dict': state}, path)
    return plain.state_dict(), str(path)


@families
@pytest.mark.parametrize('route', ['Pretrained', "Pretrained prefix='backbone.'", 'load_state_dict'])
def test_a_plain_checkpoint_loads_with_the_twins_copied_and_one_line(family, route, tmp_path, log_capture):
    """A checkpoint of the plain network (ImageNet weights, a classifier) starts every twin as its shared norm."""
    cls, args = FAMILIES[family].adn, family_kwargs(family)
    prefix = 'backbone.' if 'prefix' in route else ''
    plain, path = _plain_checkpoint(family, tmp_path, prefix)
    if route == 'load_state_dict':
        model = cls(**args)
        model.load_state_dict(plain, strict=True)
    else:
        init = dict(type='Pretrained', checkpoint=path, **(dict(prefix=prefix) if prefix else {}))
        model = cls(**args, init_cfg=init)
        model.init_weights()
    got = model.state_dict()
    for key, value in plain.items():
        assert torch.equal(got[key], value), key
    for twin, shared in model.twin_norm_names():
        for key, value in plain.items():
            if key.startswith(shared + '.'):
                assert torch.equal(got[twin + key[len(shared):]], value), twin
    told = [m for m in log_capture if 'twin norms' in m]
    assert len(told) == 1 and f'initialised {len(model.twin_norm_names())} of them' in told[0], told
    assert not any('_skip' in m and 'missing' in m.lower() for m in log_capture)


@families
@pytest.mark.parametrize('route', ['Pretrained', 'load_state_dict'])
def test_a_checkpoint_under_another_prefix_is_refused_with_the_fix(family, route, tmp_path):
    cls, args = FAMILIES[family].adn, family_kwargs(family)
    plain, path = _plain_checkpoint(family, tmp_path, 'backbone.')
    with pytest.raises(ValueError, match="under prefix 'backbone.'.*prefix='backbone.'"):
        if route == 'load_state_dict':
            cls(**args).load_state_dict({'backbone.' + k: v for k, v in plain.items()})
        else:
            cls(**args, init_cfg=dict(type='Pretrained', checkpoint=path)).init_weights()


def _classifier(family):
    """An mmpretrain classifier on the family's tiny backbone: pooled maps or the class token, a linear head."""
    backbone = dict(type=FAMILIES[family].adn.__name__, **family_kwargs(family))
    with torch.no_grad():
        features = _outputs(MMPRETRAIN_MODELS.build(backbone).eval(), family_input(family, batch=1))[-1]
    model = MMPRETRAIN_MODELS.build(
        dict(type='ImageClassifier', backbone=backbone,
             neck=dict(type='GlobalAveragePooling') if features.dim() == 4 else None,
             head=dict(type='LinearClsHead', num_classes=10, in_channels=features.shape[1])))
    model.init_weights()
    perturb_norms(model.backbone)
    return model.train()


@families
def test_algorithm_1_distills_the_default_features_and_reaches_every_twin(family):
    model = _classifier(family)
    backbone = model.backbone
    objective = SubPathDistillation(model, model.loss)
    stages = backbone.distill_stage_features()
    assert objective.features == {
        **{f'backbone.{name}': [dict(mode=spec['mode'], levels=None, weight=1.0)] for name, spec in stages.items()},
        'head': [dict(mode='logits', levels=None, weight=1.0)]}
    losses = objective(family_input(family, batch=4), [DataSample().set_gt_label(i % 10) for i in range(4)])
    assert set(losses) == {'loss', 'loss_kl_head', *(f'loss_kl_backbone_{n.replace(".", "_")}' for n in stages)}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for twin, _ in backbone.twin_norm_names():
        grad = backbone.get_submodule(twin).weight.grad
        assert grad is not None and grad.abs().sum() > 0, twin
    skippable = set(backbone.active_blocks('super')) - set(backbone.active_blocks('base'))
    assert skippable
    grads = [p.grad for block in skippable for p in backbone.get_submodule(block).parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0  # the super-net's alone
    assert backbone.skip == 'F' * backbone.num_skip_flags  # the objective put the super-net back
