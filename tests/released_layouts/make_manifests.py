"""Write the key manifests of the ADN authors' released models (one ``<model>.txt`` per model, beside this file).

    python tests/released_layouts/make_manifests.py PATH/TO/wchkang-depth COMMIT

PATH is a checkout of github.com/wchkang/depth: its ``models`` package is imported from there and builds each
model with random weights; nothing of it is copied here. A manifest line is ``key shape dtype`` (shape ``-`` for a
scalar), in the model's ``state_dict()`` order, after a ``#`` line naming the source. tests/test_adn_converter.py
builds state dicts with exactly these keys, shapes and dtypes, which checks the converters against the release's
real layout without its code in the repository. (Not under tests/data/: .gitignore ignores every data/ folder.)
"""
import os.path as osp
import sys

import torch

MODELS = ('resnet50', 'mobilenet_v2', 'swin_t', 'vit_b_16')


def main(release_root: str, commit: str) -> None:
    sys.path.insert(0, release_root)
    import models as release  # the release's package
    for name in MODELS:
        state = getattr(release, name)().state_dict()
        lines = [f'# {name}().state_dict() of github.com/wchkang/depth models/ at {commit} (make_manifests.py)']
        lines += [f'{k} {",".join(map(str, v.shape)) or "-"} {str(v.dtype).replace("torch.", "")}'
                  for k, v in state.items()]
        with open(osp.join(osp.dirname(osp.abspath(__file__)), f'{name}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        print(f'{name}: {len(state)} tensors')


if __name__ == '__main__':
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
