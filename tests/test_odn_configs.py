"""The ODN dataset configs: the paper's model, target and splits, and a real MNIST batch through the pipeline."""
import struct

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmpretrain.registry import DATASETS, MODELS

# config -> (ResNet depth, input channels, target accuracy from the spec's table)
CONFIGS = {
    'configs/odn/odn_resnet18_1xb128_mnist.py': (18, 1, 99.5),
    'configs/odn/odn_resnet34_1xb128_fashion-mnist.py': (34, 1, 94.5),
    'configs/odn/odn_resnet34_1xb128_svhn.py': (34, 3, 96.0),
    'configs/odn/odn_resnet50_1xb128_cifar10.py': (50, 3, 94.5),
}


@pytest.mark.parametrize('path', sorted(CONFIGS))
def test_dataset_config_is_the_papers_setup(path):
    depth, channels, target = CONFIGS[path]
    cfg = Config.fromfile(path)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
    assert (model.backbone.depth, model.backbone.conv1.in_channels, model.num_levels) == (
        depth, channels, 8 if depth == 18 else 16)
    assert model.head.heads[0].num_classes == 10
    loop = cfg.train_cfg
    assert (loop.type, loop.target, loop.tolerance, loop.patience, loop.lr_patience, loop.lr_factor) == (
        'ODNTrainLoop', target, 0.5, 23, 5, 0.6)
    if loop.warmup_epochs:  # the rates themselves: tests/test_odn_learning_rates.py
        assert cfg.param_scheduler.end == loop.warmup_epochs == 3
    else:
        assert cfg.param_scheduler == [] and path.endswith('cifar10.py')  # the CIFAR-10 notebook has no warm-up
    assert cfg.optim_wrapper.optimizer.momentum == 0.9 and cfg.optim_wrapper.optimizer.weight_decay == 5e-4


def write_idx(folder, prefix, images, labels):
    n, h, w = images.shape
    (folder / f'{prefix}-images-idx3-ubyte').write_bytes(struct.pack('>IIII', 2051, n, h, w) + images.tobytes())
    (folder / f'{prefix}-labels-idx1-ubyte').write_bytes(struct.pack('>II', 2049, n) + labels.tobytes())


def test_mnist_config_holds_out_one_sixth_for_validation_and_trains_on_one_channel(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path, 'train', rng.integers(0, 256, (60, 28, 28), dtype=np.uint8),
              rng.integers(0, 10, 60, dtype=np.uint8))
    write_idx(tmp_path, 't10k', rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
              rng.integers(0, 10, 12, dtype=np.uint8))
    cfg = Config.fromfile('configs/odn/odn_resnet18_1xb128_mnist.py')
    cfg.merge_from_dict({f'{s}_dataloader.dataset.{"dataset." if s != "test" else ""}data_root': str(tmp_path)
                         for s in ('train', 'val', 'test')})
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        train, val, test = (DATASETS.build(cfg[f'{s}_dataloader'].dataset) for s in ('train', 'val', 'test'))
        # the spec's 50k / 10k split of MNIST's 60k training images, at 1/1000 scale, disjoint
        assert (len(train), len(val), len(test)) == (50, 10, 12)
        assert not set(train._ori_indices) & set(val._ori_indices)
        model = MODELS.build(dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
    batch = pseudo_collate([train[i] for i in range(4)])
    assert batch['inputs'][0].shape == (1, 28, 28)
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    losses = model.train_step(batch, optim_wrapper=optim_wrapper)
    assert torch.isfinite(losses['loss'])

