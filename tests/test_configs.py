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


@pytest.mark.parametrize('name', ['faster_rcnn_r50_adn_fpn_1x_coco.py', 'mask_rcnn_r50_adn_fpn_1x_coco.py',
                                  'retinanet_r50_adn_fpn_1x_coco.py'])
def test_detection_config_takes_an_algorithm1_step_with_its_own_hook_settings(name):
    """Two-stage and single-stage stock detectors alike: the config's hook settings give a KL term per neck level
    on top of the task losses, and one backward reaches the base-net's twin norms."""
    import torch
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs

    from mmadn.models import SubPathDistillation
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    # zero-initialised residual branches make super- and base-net coincide (KL 0, no gradient): start apart
    cfg.model.backbone.update(init_cfg=None, zero_init_residual=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    hook = {k: v for k, v in cfg.custom_hooks[0].items() if k != 'type'}
    objective = SubPathDistillation(model, model.loss, **hook)
    torch.manual_seed(0)
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 128, 128)] * 2, num_items=[2, 2], num_classes=80,
                            with_mask='mask' in name)
    data = model.data_preprocessor(packed, True)
    losses = objective(data['inputs'], data['data_samples'])
    num_levels = cfg.model.neck.num_outs
    assert sorted(k for k in losses if k.startswith('loss_kl')) == [f'loss_kl_neck_{i}' for i in range(num_levels)]
    total = sum(v if isinstance(v, torch.Tensor) else sum(v) for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    with torch.no_grad():
        positions = [level.shape[-2:].numel() for level in model.extract_feat(data['inputs'])]
    for i in range(num_levels):  # a softmax over the positions of a 1x1 level (RetinaNet's P7 at 128 px) is 1
        assert losses[f'loss_kl_neck_{i}'] > 0 if positions[i] > 1 else losses[f'loss_kl_neck_{i}'] == 0
    total.backward()
    twin = model.backbone.layer3[0].bn1_skip.weight  # a twin is used by the base-net only
    assert twin.grad is not None and twin.grad.abs().sum() > 0
