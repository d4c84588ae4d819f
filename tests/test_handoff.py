"""Issue 6: an ADN classifier trained with Algorithm 1 hands its backbone, twins included, to Mask R-CNN."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmadn.datasets import make_classification_folder
from mmadn.models.utils import check_backbone_fits, classifier_backbone_state
from mmadn.utils import safe_torch_load

from ._cli import run_tool

CLS_CONFIG = 'configs/demo/resnet18_adn_synthetic_cls.py'
DET_CONFIG = 'configs/mask_rcnn_r50_adn_fpn_1x_coco.py'
R50_HEAD = ['model.backbone.depth=50', 'model.head.in_channels=2048']


@pytest.fixture(scope='module')
def trained_r50_classifier(tmp_path_factory):
    """ResNet-50-ADN classifier trained 3 iterations on generated shapes with ADNDistillHook."""
    root = str(tmp_path_factory.mktemp('cls_data'))
    make_classification_folder(root, classes=('circle', 'square'), train_per_class=6, val_per_class=2, size=32)
    work_dir = tmp_path_factory.mktemp('cls_work')
    _, out = run_tool(
        'tools/train.py', CLS_CONFIG, '--work-dir', work_dir, '--cfg-options', *R50_HEAD,
        f'train_dataloader.dataset.data_root={root}', f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}', 'model.head.num_classes=2', 'data_preprocessor.num_classes=2',
        'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
        'test_dataloader.num_workers=0', 'train_cfg.max_iters=3', 'train_cfg.val_interval=3',
        'default_hooks.checkpoint.interval=3', 'default_hooks.logger.interval=1')
    assert 'ADNDistillHook: training' in out and 'loss_kl_head' in out, out[-3000:]
    return osp.join(work_dir, 'iter_3.pth')


def _build_detector(checkpoint, config=DET_CONFIG):
    from mmdet.registry import MODELS
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
        model.init_weights()
    return model


@pytest.mark.slow
def test_mask_rcnn_starts_from_the_handed_over_backbone(trained_r50_classifier, tmp_path):
    out = tmp_path / 'r50_adn_backbone.pth'
    _, log = run_tool('tools/model_converters/cls_to_det_backbone.py', trained_r50_classifier, DET_CONFIG, out)
    assert f'model.backbone.init_cfg.checkpoint={out}' in log

    classifier = safe_torch_load(trained_r50_classifier)['state_dict']
    handed = safe_torch_load(str(out))['state_dict']
    assert set(handed) == {k for k in classifier if k.startswith('backbone.')}

    detector = _build_detector(str(out))
    det_state = detector.backbone.state_dict()
    assert set(det_state) == {k[len('backbone.'):] for k in handed}
    for key, value in det_state.items():
        assert torch.equal(value, classifier['backbone.' + key]), key
    # The twins carry their own statistics from Algorithm 1 (base-net passes), not copies of the shared norms
    twin_mean = det_state['layer3.0.bn1_skip.running_mean']
    assert not torch.equal(twin_mean, det_state['layer3.0.bn1.running_mean'])


@pytest.mark.slow
def test_the_classifier_checkpoint_itself_works_as_the_backbone_init(trained_r50_classifier):
    classifier = safe_torch_load(trained_r50_classifier)['state_dict']
    detector = _build_detector(trained_r50_classifier)  # init_cfg prefix='backbone.' picks the backbone
    for key, value in detector.backbone.state_dict().items():
        assert torch.equal(value, classifier['backbone.' + key]), key


@pytest.mark.slow
def test_a_backbone_of_another_depth_is_refused_before_training(trained_r50_classifier, tmp_path):
    code, log = run_tool('tools/model_converters/cls_to_det_backbone.py', trained_r50_classifier, DET_CONFIG,
                         tmp_path / 'x.pth', '--cfg-options', 'model.backbone.depth=101', check=False)
    assert code != 0 and 'does not fit' in log and 'missing' in log and 'model.backbone.depth' in log
    assert not (tmp_path / 'x.pth').exists()


def test_check_backbone_fits_names_mis_shaped_tensors():
    from mmadn.models import ResNetADN
    state = {'backbone.' + k: v for k, v in ResNetADN(18).state_dict().items()}
    check_backbone_fits(ResNetADN(18), state)  # fits
    state['backbone.conv1.weight'] = torch.zeros(1)
    with pytest.raises(ValueError, match=r'conv1.weight: checkpoint \(1,\)'):
        check_backbone_fits(ResNetADN(18), state)
    with pytest.raises(ValueError, match='No .backbone'):
        classifier_backbone_state({'fc.weight': torch.zeros(1)})


@pytest.mark.slow
def test_swin_classifier_hands_over_and_detection_only_output_norms_keep_their_init(tmp_path):
    """Swin's detection backbone has output norms norm0..2 that no classifier has: they may be missing."""
    from mmpretrain.registry import MODELS
    swin_det = 'configs/mask_rcnn_swin_t_adn_fpn_1x_coco.py'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        classifier = MODELS.build(
            dict(type='ImageClassifier', backbone=dict(type='SwinTransformerADN', arch='tiny'),
                 neck=dict(type='GlobalAveragePooling'), head=dict(type='LinearClsHead', num_classes=10,
                                                                   in_channels=768)))
    state = {k: torch.rand_like(v) + 0.5 if v.is_floating_point() else v for k, v in classifier.state_dict().items()}
    torch.save(dict(meta=dict(), state_dict=state), tmp_path / 'swin_cls.pth')
    out = tmp_path / 'swin_backbone.pth'
    _, log = run_tool('tools/model_converters/cls_to_det_backbone.py', tmp_path / 'swin_cls.pth', swin_det, out)
    assert '6 detection-only output-norm tensors keep their init' in log

    detector = _build_detector(str(out), swin_det)
    det_state = detector.backbone.state_dict()
    for key, value in det_state.items():
        if key.split('.')[0] in ('norm0', 'norm1', 'norm2'):
            continue
        assert torch.equal(value, state['backbone.' + key]), key
    assert torch.equal(det_state['stages.2.blocks.0.norm1_skip.weight'],
                       state['backbone.stages.2.blocks.0.norm1_skip.weight'])
