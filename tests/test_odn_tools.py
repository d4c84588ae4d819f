"""ODN's data tool: SVHN .mat files to CustomDataset folders with the held-out validation split."""
from glob import glob

import cv2
import numpy as np
from scipy.io import savemat

from ._cli import run_tool


def fake_svhn(path, n, rng):
    images = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    labels = rng.integers(1, 11, (n, 1)).astype(np.uint8)  # SVHN writes digit 0 as label 10
    savemat(path, dict(X=images, y=labels))
    return images, labels.reshape(-1) % 10


def test_svhn_converter_holds_out_validation_and_keeps_pixels_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    train_images, train_labels = fake_svhn(tmp_path / 'train_32x32.mat', 30, rng)
    fake_svhn(tmp_path / 'test_32x32.mat', 12, rng)
    _, out = run_tool('tools/odn/svhn_to_folder.py', tmp_path, tmp_path / 'svhn', '--val', 7)
    assert 'train 23, val 7, test 12' in out
    counts = {split: len(glob(str(tmp_path / 'svhn' / split / '*' / '*.png'))) for split in ('train', 'val', 'test')}
    assert counts == dict(train=23, val=7, test=12)
    # every training image is in train or val exactly once, under its digit, with its RGB pixels
    written = sorted((int(p.split('/')[-2]), cv2.imread(p)[..., ::-1].tobytes())
                     for split in ('train', 'val') for p in glob(str(tmp_path / 'svhn' / split / '*' / '*.png')))
    expected = sorted((int(label), np.ascontiguousarray(train_images[..., i]).tobytes())
                      for i, label in enumerate(train_labels))
    assert written == expected
