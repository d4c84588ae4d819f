"""ResNetADN checkpoint interop: released layouts convert bit-exactly both ways (plain checkpoints loading with
their twins filled is in the contract suite, for every family)."""
from collections import OrderedDict

import pytest
import torch
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

from mmadn.models import ResNetADN
from mmadn.models.backbones.resnet_adn_layouts import (convert, detect_layout, mmdet_to_released,
                                                       mmpretrain_to_released, released_to_mmdet,
                                                       released_to_mmpretrain)
from mmadn.models.utils.checkpoint_layout import unwrap_state_dict

from ._cli import run_main


def _randomise(state_dict):
    """Distinct random values everywhere (variances positive), so a misplaced tensor would show."""
    out = OrderedDict()
    for k, v in state_dict.items():
        if not v.is_floating_point():
            out[k] = v
        elif k.endswith('running_var'):
            out[k] = torch.rand_like(v) + 0.5
        else:
            out[k] = torch.randn_like(v) * 0.1
    return out


def _released_adn(depth=18, num_classes=10):
    """A state dict laid out as the ADN authors release it: torchvision names + bnK_skip twins + fc."""
    sd = ResNetADN(depth).state_dict()
    width = 512 if depth in (18, 34) else 2048
    sd['fc.weight'] = torch.randn(num_classes, width)
    sd['fc.bias'] = torch.randn(num_classes)
    return _randomise(sd)


def test_adn_checkpoint_keeps_its_own_twins():
    released = _released_adn(18)
    model = ResNetADN(18)
    model.load_state_dict(OrderedDict((k, v) for k, v in released.items() if not k.startswith('fc.')))
    sd = model.state_dict()
    assert torch.equal(sd['layer2.0.bn1_skip.weight'], released['layer2.0.bn1_skip.weight'])
    assert not torch.equal(sd['layer2.0.bn1_skip.weight'], sd['layer2.0.bn1.weight'])


@pytest.mark.parametrize('depth', [18, 50])
def test_released_layout_round_trips_bit_exactly(depth):
    released = _released_adn(depth)
    assert detect_layout(released) == 'released'
    cls_sd = released_to_mmpretrain(released)
    assert detect_layout(cls_sd) == 'mmpretrain'
    back = mmpretrain_to_released(cls_sd)
    assert list(back) == list(released)
    assert all(torch.equal(back[k], released[k]) for k in released)
    det_sd = released_to_mmdet(released)
    assert detect_layout(det_sd) == 'mmdet' and not any('fc.' in k for k in det_sd)
    det_back = mmdet_to_released(det_sd)
    assert all(torch.equal(det_back[k], released[k]) for k in det_back)
    assert set(released) - set(det_back) == {'fc.weight', 'fc.bias'}


def test_converted_checkpoint_builds_an_mmpretrain_classifier_with_identical_outputs():
    released = _released_adn(18, num_classes=10)
    classifier = MMPRETRAIN_MODELS.build(
        dict(type='ImageClassifier', backbone=dict(type='ResNetADN', depth=18, out_indices=(3, )),
             neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=10, in_channels=512)))
    missing, unexpected = classifier.load_state_dict(released_to_mmpretrain(released), strict=True)
    assert not missing and not unexpected
    classifier.eval()
    x = torch.randn(2, 3, 64, 64)
    # reference: the released network computed by hand from the same tensors, base-net path
    backbone = ResNetADN(18, out_indices=(3, ), skip='base').eval()
    backbone.load_state_dict(OrderedDict((k, v) for k, v in released.items() if not k.startswith('fc.')))
    with torch.no_grad():
        classifier.backbone.skip = 'base'
        logits = classifier(x, mode='tensor')
        expected = torch.nn.functional.linear(backbone(x)[0].mean((2, 3)), released['fc.weight'],
                                              released['fc.bias'])
    torch.testing.assert_close(logits, expected)


def test_unknown_layout_fails_clearly():
    with pytest.raises(ValueError, match='Unknown checkpoint layout'):
        detect_layout({'encoder.blocks.0.weight': torch.zeros(1)})
    with pytest.raises(ValueError, match='no classifier head'):
        convert(released_to_mmdet(_released_adn(18)), 'mmpretrain')
    with pytest.raises(ValueError, match='Not a checkpoint'):
        unwrap_state_dict(['not', 'a', 'dict'])


def test_converter_tool_round_trip(tmp_path, capsys):
    released = _released_adn(18)
    src = tmp_path / 'released.pth'
    torch.save(released, src)
    tool = 'tools/model_converters/adn_converter.py'
    for args in ((src, tmp_path / 'cls.pth', '--to', 'mmpretrain'),
                 (tmp_path / 'cls.pth', tmp_path / 'back.pth', '--to', 'released')):
        code, out = run_main(capsys, tool, *args)
        assert code == 0, out
    back = torch.load(tmp_path / 'back.pth', weights_only=True)
    assert list(back) == list(released) and all(torch.equal(back[k], released[k]) for k in released)
