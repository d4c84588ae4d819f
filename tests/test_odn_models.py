"""ODN model and extraction: depth levels, per-level heads, warm-up loss, and the parameter counts of the issue."""
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmadn.odn import extract, extracted_model_cfg


def odn_cfg(depth=18, num_classes=10, **backbone):
    return dict(
        type='ODNClassifier',
        backbone=dict(type='ODNResNet', depth=depth, **backbone),
        head=dict(type='ODNClsHead', head=dict(type='LinearClsHead', num_classes=num_classes)))


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def extracted(cfg, model, level):
    small_cfg, state = extract(cfg, model.state_dict(), level)
    small = MODELS.build(small_cfg)
    small.load_state_dict(state, strict=True)  # exactly the kept weights, nothing missing or left over
    return small.eval()


@pytest.mark.parametrize('depth, level, params, full_params, reduction', [
    (18, 2, 0.150, 11.17, 98.65),   # the issue: ResNet-18 at depth 2, 10 classes
    (34, 5, 0.751, 21.28, 96.47),   # the issue: ResNet-34 at depth 5
])
def test_extracted_parameter_reduction_matches_the_issue(depth, level, params, full_params, reduction):
    cfg = odn_cfg(depth)
    model = MODELS.build(cfg)
    small = extracted(cfg, model, level)
    full = MODELS.build(extracted_model_cfg(cfg, model.num_levels))  # all blocks, one head: the plain network
    assert round(n_params(small) / 1e6, 3) == params
    assert round(n_params(full) / 1e6, 2) == full_params
    assert round(100 * (1 - n_params(small) / n_params(full)), 2) == reduction


def test_full_depth_is_mmpretrain_resnet_cifar():
    """Same weights, same names, same outputs as mmpretrain's CIFAR ResNet-18: nothing architectural is new."""
    ours = MODELS.build(dict(type='ODNResNet', depth=18)).eval()
    ref = MODELS.build(dict(type='ResNet_CIFAR', depth=18))
    ref.load_state_dict(ours.state_dict(), strict=True)
    ref.eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(ours(x)[-1], ref(x)[-1])
    plain = MODELS.build(extracted_model_cfg(odn_cfg(18), 8))
    assert n_params(plain) == n_params(ref) + 512 * 10 + 10 == 11_173_962


def test_forward_runs_only_the_blocks_up_to_the_level():
    backbone = MODELS.build(dict(type='ODNResNet', depth=34, base_channels=8, stem_channels=8)).eval()
    assert backbone.num_levels == 16 and backbone.level_channels == (8, ) * 3 + (16, ) * 4 + (32, ) * 6 + (64, ) * 3
    ran = []
    for name, block in backbone.named_modules():
        if name.count('.') == 1 and name.startswith('layer'):
            block.register_forward_hook(lambda m, i, o, name=name: ran.append(name))
    outs = backbone(torch.randn(1, 3, 32, 32), levels=(2, 5))
    assert ran == ['layer1.0', 'layer1.1', 'layer1.2', 'layer2.0', 'layer2.1']
    assert [o.shape[1:] for o in outs] == [torch.Size([8, 32, 32]), torch.Size([16, 16, 16])]
    bottleneck = MODELS.build(dict(type='ODNResNet', depth=50, num_levels=11))
    assert bottleneck.level_channels == (256, ) * 3 + (512, ) * 4 + (1024, ) * 4
    assert [len(getattr(bottleneck, n)) for n in bottleneck.res_layers] == [3, 4, 4]


@pytest.mark.parametrize('depth, levels', [(18, range(1, 9)), (50, (4, 11))])
def test_extracted_model_predicts_exactly_as_the_full_model_at_its_depth(depth, levels):
    cfg = odn_cfg(depth, base_channels=8, stem_channels=8)
    model = MODELS.build(cfg)
    model.init_weights()
    with torch.no_grad():  # non-trivial BN statistics, so a wrong or missing norm would show
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    x = torch.randn(3, 3, 32, 32)
    for level in levels:
        small = extracted(cfg, model, level)
        assert small.backbone.num_levels == level and small.head.fc.in_features == model.backbone.level_channels[
            level - 1]
        with torch.no_grad():
            assert torch.equal(small(x), model(x, level=level))
        model.level = level
        with torch.no_grad():
            assert torch.equal(model(x), model(x, level=level))


def test_warmup_loss_sums_every_levels_cross_entropy_with_the_gradients_of_one_forward_per_level():
    cfg = odn_cfg(18, num_classes=4, base_channels=8, stem_channels=8)
    model = MODELS.build(cfg)
    x = torch.randn(6, 3, 16, 16)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    samples = [DataSample().set_gt_label(int(y)) for y in labels]
    model.supervise_all_levels = True
    loss = model(x, samples, mode='loss')['loss']
    loss.backward()
    grad_one_forward = model.backbone.conv1.weight.grad.clone()
    model.zero_grad()
    separate = sum(F.cross_entropy(model(x, level=level), labels) for level in range(1, 9))
    separate.backward()
    assert loss.item() == pytest.approx(separate.item(), rel=1e-6)
    assert torch.allclose(grad_one_forward, model.backbone.conv1.weight.grad, rtol=1e-4, atol=1e-5)


def test_single_level_loss_trains_only_stem_blocks_and_head_of_that_level():
    model = MODELS.build(odn_cfg(18, num_classes=4, base_channels=8, stem_channels=8))
    model.level = 3
    samples = [DataSample().set_gt_label(i % 4) for i in range(4)]
    model(torch.randn(4, 3, 16, 16), samples, mode='loss')['loss'].backward()
    trained = {n.rsplit('.', 1)[0].split('.conv')[0].split('.bn')[0] for n, p in model.named_parameters()
               if p.grad is not None}
    assert trained == {'backbone', 'backbone.layer1.0', 'backbone.layer1.1', 'backbone.layer2.0',
                       'backbone.layer2.0.downsample.0', 'backbone.layer2.0.downsample.1', 'head.heads.2.fc'}


def test_bad_levels_and_configs_say_how_to_fix_them():
    model = MODELS.build(odn_cfg(18))
    for level in (0, 9):
        with pytest.raises(ValueError, match=r'must be in \[1, 8\]'):
            model.level = level
    with pytest.raises(TypeError, match='must be an int'):
        model.level = '2'
    with pytest.raises(KeyError, match='must be one of'):
        MODELS.build(dict(type='ODNResNet', depth=101))
    bad_head = odn_cfg(18)
    bad_head['head']['head']['in_channels'] = 512
    with pytest.raises(ValueError, match='without in_channels'):
        MODELS.build(bad_head)
    with pytest.raises(ValueError, match='ODNClassifier'):
        extracted_model_cfg(dict(type='ImageClassifier', backbone=dict(type='ResNet', depth=18)), 2)
