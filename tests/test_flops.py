"""ResNet-50-ADN classifier: FLOPs of each sub-network and parameters against the ADN paper (spec section 7)."""
import pytest
import torch
from mmengine.analysis import FlopAnalyzer
from mmpretrain.registry import MODELS

PAPER_GFLOPS = {'FFFF': 4.11, 'TFFF': 3.90, 'TTFF': 3.46, 'TTTF': 2.80, 'TTTT': 2.58}


@pytest.fixture(scope='module')
def classifier():
    model = MODELS.build(
        dict(type='ImageClassifier',
             backbone=dict(type='ResNetADN', depth=50, out_indices=(3, ), norm_eval=False),
             neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048)))
    return model.eval()


def test_parameters_match_released_resnet50_adn(classifier):
    params = sum(p.numel() for p in classifier.parameters())
    assert abs(params / 1e6 - 25.583) < 0.001, params


def test_flops_of_each_subnet_match_the_paper(classifier):
    inputs = torch.randn(1, 3, 224, 224)
    measured = {}
    for skip, paper in PAPER_GFLOPS.items():
        classifier.backbone.skip = skip
        analyzer = FlopAnalyzer(classifier, inputs)
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        measured[skip] = analyzer.total() / 1e9
    for skip, paper in PAPER_GFLOPS.items():
        assert abs(measured[skip] - paper) / paper < 0.01, measured
