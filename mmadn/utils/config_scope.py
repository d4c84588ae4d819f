"""``mmadn::`` base configs: a config anywhere can inherit mmadn's, as it inherits ``mmdet::`` or ``mmpretrain::``
ones::

    _base_ = 'mmadn::mask_rcnn_r50_adn_fpn_1x_coco.py'     # configs/ of the installed package
    _base_ = 'mmadn::demo/resnet18_adn_synthetic_cls.py'

Where the configs are: mmadn's wheel carries ``configs/``, ``tools/`` and ``model-index.yml`` in
``mmadn/.mim/`` (``setup.py``, the layout of mmpretrain's and mmdet's wheels, which ``mim train`` / ``mim test``
read); a source checkout (``pip install -e .``) uses the repository's ``configs/``.

Why mmengine's own lookup is not enough (mmengine 0.10, ``Config._get_cfg_path``): it takes ``pkg::`` only for the
packages of its table ``MODULE2PACKAGE``, only for a path with a folder (``pkg::dir/name.py``; mmadn's main configs
lie at the top of ``configs/``), and it tags every typed dict of such a base with ``_scope_='pkg'``. mmadn has no
registry scope of its own: its modules are registered in mmdet's and mmpretrain's registries and its configs build
in the scope of their task library (the ``default_scope`` they inherit), so a ``_scope_='mmadn'`` dict would find no
registry. For the ``mmadn::`` prefix only, the lookup is therefore replaced by :func:`resolve`, which returns the
file and no scope: the base's dicts build in the ``default_scope`` it sets, as when the config is run directly.
Every other prefix goes to mmengine unchanged. :func:`install_config_scope` is what importing this module does
(it must happen before a config is read: ``tools/*.py`` import mmadn first, and so must a script of your own).
"""
import difflib
import glob
import os.path as osp
from typing import Optional, Tuple

from mmengine.config import Config
from mmengine.config import utils as config_utils

PREFIX = 'mmadn::'
_PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def configs_root() -> str:
    """The folder that ``mmadn::`` paths are relative to: the installed package's ``.mim/configs``, or the
    repository's ``configs/`` for a source checkout."""
    installed = osp.join(_PACKAGE_DIR, '.mim', 'configs')
    if osp.isdir(installed):
        return installed
    checkout = osp.dirname(_PACKAGE_DIR)
    if osp.isfile(osp.join(checkout, 'pyproject.toml')) and osp.isdir(osp.join(checkout, 'configs')):
        return osp.join(checkout, 'configs')
    raise FileNotFoundError(
        f'mmadn at {_PACKAGE_DIR} carries no configs (no .mim/configs inside it, no source checkout around it): '
        'install mmadn from its wheel or sdist (pip install mmadn-*.whl), or from a checkout (pip install -e .).')


def resolve(cfg_path: str) -> str:
    """The file of an ``mmadn::`` config path, e.g. ``'mmadn::demo/resnet18_adn_synthetic_cls.py'``."""
    if not cfg_path.startswith(PREFIX):
        raise ValueError(f'{cfg_path!r} is not an mmadn config path (it starts with {PREFIX!r})')
    relative = cfg_path[len(PREFIX):].lstrip('/')
    root = osp.normpath(configs_root())
    path = osp.normpath(osp.join(root, relative))
    if not path.startswith(root + osp.sep):
        raise ValueError(f'{cfg_path!r} points outside mmadn\'s configs ({root})')
    if osp.isfile(path):
        return path
    known = sorted(osp.relpath(p, root) for p in glob.glob(osp.join(root, '**', '*.py'), recursive=True))
    close = difflib.get_close_matches(relative, known, n=3, cutoff=0.5)
    hint = ('Did you mean ' + ' or '.join(PREFIX + c for c in close) + '?') if close else \
        f'mmadn\'s configs are listed by: ls {root}'
    raise FileNotFoundError(f'{cfg_path}: no such config in {root}. {hint}')


_mmengine_get_cfg_path = Config._get_cfg_path


def _get_cfg_path(cfg_path: str, filename: str) -> Tuple[str, Optional[str]]:
    if cfg_path.startswith(PREFIX):
        return resolve(cfg_path), None  # no scope: the base builds in the default_scope it sets (see above)
    return _mmengine_get_cfg_path(cfg_path, filename)


def install_config_scope() -> None:
    """Make mmengine resolve ``mmadn::`` base configs (idempotent); mmadn is also entered in mmengine's
    ``MODULE2PACKAGE`` table of OpenMMLab packages (module name -> pip name), as mmdet and mmpretrain are."""
    config_utils.MODULE2PACKAGE.setdefault('mmadn', 'mmadn')
    Config._get_cfg_path = staticmethod(_get_cfg_path)


def uninstall_config_scope() -> None:
    """Give mmengine back its own base-config lookup."""
    Config._get_cfg_path = staticmethod(_mmengine_get_cfg_path)


install_config_scope()
