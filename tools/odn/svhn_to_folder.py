"""Turn the official SVHN .mat files into mmpretrain CustomDataset folders, with the ODN validation split.

``python tools/odn/svhn_to_folder.py SRC_DIR [OUT_DIR] [--val 5000] [--seed 0]``

SRC_DIR holds ``train_32x32.mat`` and ``test_32x32.mat`` (http://ufldl.stanford.edu/housenumbers/, cropped
digits). Writes ``OUT_DIR/{train,val,test}/<digit>/<n>.png``: ``--val`` training images chosen by ``--seed`` are
held out for validation (the spec's 68,257 / 5,000 split), the test set is kept whole. Label 10 is digit 0.
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np
from scipy.io import loadmat


def load_split(path: str):
    """Images (N, 32, 32, 3) RGB uint8 and labels 0-9 of one SVHN .mat file."""
    if not osp.isfile(path):
        raise SystemExit(f'{path} does not exist: download train_32x32.mat and test_32x32.mat from '
                         'http://ufldl.stanford.edu/housenumbers/ into that folder')
    mat = loadmat(path)
    images = np.transpose(mat['X'], (3, 0, 1, 2))
    labels = mat['y'].reshape(-1).astype(np.int64) % 10
    if len(images) != len(labels):
        raise SystemExit(f'{path}: {len(images)} images but {len(labels)} labels')
    return images, labels


def write(out_dir: str, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    for digit in range(10):
        os.makedirs(osp.join(out_dir, split, str(digit)), exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels)):
        cv2.imwrite(osp.join(out_dir, split, str(label), f'{i:06d}.png'), image[..., ::-1])  # RGB -> BGR


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src_dir')
    parser.add_argument('out_dir', nargs='?', default='data/svhn')
    parser.add_argument('--val', type=int, default=5000, help='training images held out for validation')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()

    images, labels = load_split(osp.join(args.src_dir, 'train_32x32.mat'))
    if not 0 < args.val < len(images):
        raise SystemExit(f'--val must be in [1, {len(images) - 1}], got {args.val}')
    order = np.random.default_rng(args.seed).permutation(len(images))
    val, train = order[:args.val], order[args.val:]
    write(args.out_dir, 'train', images[train], labels[train])
    write(args.out_dir, 'val', images[val], labels[val])
    test_images, test_labels = load_split(osp.join(args.src_dir, 'test_32x32.mat'))
    write(args.out_dir, 'test', test_images, test_labels)
    print(f'wrote {args.out_dir}: train {len(train)}, val {len(val)}, test {len(test_images)} images')


if __name__ == '__main__':
    main()
