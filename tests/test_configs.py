"""Every shipped detection / classification config parses and builds a model with an ADN backbone and the hook."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmadn.models import ResNetADN
from mmadn.models.utils import AdaptiveDepthMixin

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DETECTION_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', '*coco*.py')) +
                           glob.glob(osp.join(ROOT, 'configs', 'demo', '*rcnn*.py')))


def test_there_are_configs():
    names = {osp.basename(p) for p in DETECTION_CONFIGS}
    assert {'mask_rcnn_r50_adn_fpn_1x_coco.py', 'faster_rcnn_r50_adn_fpn_1x_coco.py',
            'retinanet_r50_adn_fpn_1x_coco.py'} <= names


@pytest.mark.parametrize('path', DETECTION_CONFIGS, ids=osp.basename)
def test_detection_config_builds(path):
    from mmdet.registry import MODELS
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    assert 'mmadn' in cfg.custom_imports.imports
    assert [h.type for h in cfg.custom_hooks] == ['ADNDistillHook']
    if not path.endswith('synthetic.py'):
        assert cfg.train_dataloader.dataset.data_root == 'data/coco/'
    cfg.model.backbone.init_cfg = None  # the pretrained checkpoints are local files a user provides
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    assert isinstance(model.backbone, AdaptiveDepthMixin) and set(model.backbone.skip) == {'F'}
    if isinstance(model.backbone, ResNetADN):  # BN frozen as in mmdet's configs (LayerNorm backbones: n/a)
        assert model.backbone.norm_eval == ('synthetic' not in path)


CLASSIFICATION_CONFIGS = sorted([p for p in glob.glob(osp.join(ROOT, 'configs', '*_in1k.py')) if 'coco' not in p] +
                                glob.glob(osp.join(ROOT, 'configs', 'demo', '*_cls.py')))


def test_there_are_classification_configs():
    names = {osp.basename(p) for p in CLASSIFICATION_CONFIGS}
    assert {'resnet50_adn_4xb64_in1k.py', 'resnet101_adn_4xb64_in1k.py', 'mobilenet_v2_adn_8xb32_in1k.py',
            'vit_b16_adn_4xb256_in1k.py', 'vit_b32_adn_4xb256_in1k.py', 'swin_t_adn_16xb64_in1k.py',
            'resnet18_adn_synthetic_cls.py'} <= names


@pytest.mark.parametrize('path', CLASSIFICATION_CONFIGS, ids=osp.basename)
def test_classification_config_builds(path):
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    assert [h.type for h in cfg.custom_hooks if h.type == 'ADNDistillHook'] == ['ADNDistillHook']
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    assert isinstance(model.backbone, AdaptiveDepthMixin) and not getattr(model.backbone, 'norm_eval', False)
    if 'in1k' in path:
        assert cfg.train_dataloader.dataset.data_root == 'data/imagenet'
    if osp.basename(path).startswith('resnet') and 'in1k' in path:  # the released ResNet recipe
        assert cfg.param_scheduler.milestones == [60, 100, 140] and cfg.train_cfg.max_epochs == 150
        assert cfg.optim_wrapper.paramwise_cfg.norm_decay_mult == 0.0
        assert cfg.custom_hooks[0].logits_topk == 500
        assert cfg.model.head.loss.type == 'LabelSmoothLoss'
