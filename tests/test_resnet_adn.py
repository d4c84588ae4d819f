"""ResNetADN: the blocks each sub-network runs, switching, norms (the contract suite checks what every family
must do: equivalence with mmdet's ResNet, frozen stages, checkpoints, Algorithm 1)."""
import copy

import pytest
import torch

from mmadn.models import ResNetADN
from mmadn.models.backbones.resnet_adn import num_mandatory_blocks

from ._families import record_each_subnet
from ._torch_features import needs_compile_of_switches

# ADN spec section 2, written out rather than computed: the skippable block indices per stage.
SPEC_SKIPPABLE = {
    18: [{1}, {1}, {1}, {1}],
    50: [{2}, {2, 3}, {3, 4, 5}, {2}],
    101: [{2}, {2, 3}, set(range(12, 23)), {2}],
}
STAGE_BLOCKS = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


@pytest.mark.parametrize('n, mandatory', [(1, 1), (2, 1), (3, 2), (4, 2), (6, 3), (23, 12), (36, 18)])
def test_split_rule(n, mandatory):
    assert num_mandatory_blocks(n) == mandatory


@pytest.mark.parametrize('depth', [18, 50, 101])
def test_each_skip_runs_the_blocks_of_the_spec(depth):
    model = ResNetADN(depth).eval()
    ran = record_each_subnet(
        model, torch.randn(1, 3, 32, 32),
        is_block=lambda name, _: len(name.split('.')) == 2 and name.startswith('layer'),
        is_norm=lambda name, m: isinstance(m, torch.nn.BatchNorm2d) and name.startswith('layer') and
        'downsample' not in name)
    assert len(ran) == 16
    for skip, (ran_blocks, ran_norms) in ran.items():
        expected_blocks, expected_norms = [], []
        for stage, (flag, n) in enumerate(zip(skip, STAGE_BLOCKS[depth])):
            skippable = SPEC_SKIPPABLE[depth][stage]
            for block in range(n):
                if flag == 'T' and block in skippable:
                    continue
                expected_blocks.append(f'layer{stage + 1}.{block}')
                norms = ('bn1', 'bn2') if depth == 18 else ('bn1', 'bn2', 'bn3')
                # twins are used by the mandatory blocks of a skipping stage only
                suffix = '_skip' if flag == 'T' else ''
                expected_norms += [f'layer{stage + 1}.{block}.{bn}{suffix}' for bn in norms]
        assert ran_blocks == expected_blocks, skip
        assert ran_norms == expected_norms, skip
        assert model.active_blocks(skip) == expected_blocks
    assert model.blocks_per_subnet()['FFFF'] == [
        f'layer{s + 1}.{b}' for s, n in enumerate(STAGE_BLOCKS[depth]) for b in range(n)
    ]


def test_twins_exist_only_in_mandatory_blocks_and_match_released_names():
    model = ResNetADN(50)
    twins = {k for k in model.state_dict() if '_skip' in k}
    assert 'layer3.2.bn2_skip.running_mean' in twins
    blocks_with_twins = {'.'.join(k.split('.')[:2]) for k in twins}
    assert blocks_with_twins == {
        'layer1.0', 'layer1.1', 'layer2.0', 'layer2.1', 'layer3.0', 'layer3.1', 'layer3.2', 'layer4.0', 'layer4.1'
    }
    assert not any('downsample' in k for k in twins)
    extra = sum(p.numel() for n, p in model.named_parameters() if '_skip' in n)
    assert extra == 26112  # 25.583 M - 25.557 M, spec section 3


@pytest.mark.parametrize('depth, last', [(18, 'bn2'), (50, 'bn3')])
@pytest.mark.parametrize('skip', ['base', 'TFTF'])
def test_zero_init_residual_holds_whatever_the_skip_at_init(depth, last, skip):
    """mmdet zero-inits a block's last norm by its name (norm2 / norm3), which a skipping stage points at the twin."""
    model = ResNetADN(depth, zero_init_residual=True, skip=skip)
    model.init_weights()
    assert model.skip == ('TTTT' if skip == 'base' else skip)
    for stage in model.stages:
        for index, block in enumerate(stage):
            norms = [block._modules[n] for n in (last, last + '_skip') if n in block._modules]
            for norm in norms:
                assert torch.all(norm.weight == 0) and torch.all(norm.bias == 0)
            assert len(norms) == (2 if index < stage.num_mandatory else 1)  # the twin too, where there is one
            assert torch.all(block.bn1.weight == 1)


def test_num_stages_sets_the_number_of_flags():
    model = ResNetADN(18, num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(2, ), skip='TFT')
    assert model.skip == 'TFT' and len(model.subnets()) == 8
    with pytest.raises(ValueError, match='3 skippable stages'):
        model.skip = 'TFTF'


@needs_compile_of_switches
def test_torch_compile_does_not_run_a_stale_path_after_a_switch():
    torch._dynamo.reset()
    model = ResNetADN(18, out_indices=(2, 3)).eval()
    compiled = torch.compile(model, backend='eager')
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        for skip in ('FFFF', 'TTTT', 'TFTF', 'FFFF'):
            model.skip = skip
            with model.switch(skip):
                expected = model(x)
            got = compiled(x)
            for e, g in zip(expected, got):
                torch.testing.assert_close(g, e)
        model.skip = 'FFFF'
        super_out = compiled(x)[1]
        model.skip = 'TTTT'
        assert not torch.allclose(compiled(x)[1], super_out)
    torch._dynamo.reset()


def test_train_twin_stats_updates_only_twin_statistics_under_norm_eval():
    model = ResNetADN(18, norm_eval=True, frozen_stages=1, train_twin_stats=True, skip='base')
    model.train()
    assert model.layer2[0].bn1_skip.training and not model.layer2[0].bn1.training
    assert not model.layer1[0].bn1_skip.training  # frozen stage: frozen twins
    before = copy.deepcopy(model.state_dict())
    model(torch.randn(2, 3, 32, 32))
    after = model.state_dict()
    assert not torch.equal(after['layer3.0.bn2_skip.running_mean'], before['layer3.0.bn2_skip.running_mean'])
    for key in before:
        if 'running' in key and '_skip' not in key:
            assert torch.equal(after[key], before[key]), key

