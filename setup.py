"""Build hook of mmadn's wheel; the metadata is in pyproject.toml.

The wheel carries the configs and the tools the way mmpretrain's and mmdet's do: ``configs/``, ``tools/`` and
``model-index.yml`` are copied into ``mmadn/.mim/``, where mmengine resolves ``mmadn::`` base configs
(``mmadn.utils.config_scope``) and ``mim train mmadn CONFIG`` / ``mim test mmadn ...`` find the config and
``.mim/tools/train.py``. The copy is made in the build folder only, never in the source tree; an editable install
(``pip install -e .``) reads the repository's own ``configs/`` and ``tools/`` instead.
"""
import os
import os.path as osp
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
# what goes into mmadn/.mim: folder or file -> the file patterns kept (None: the file itself)
MIM_CONTENT = {
    'configs': ('.py', '.yml', '.md'),
    'tools': ('.py', '.sh'),
    'model-index.yml': None,
}


def copy_mim_content(dest: str) -> list:
    """Copy :data:`MIM_CONTENT` from the source tree into ``dest`` (``<build_lib>/mmadn/.mim``); returns the files."""
    shutil.rmtree(dest, ignore_errors=True)
    written = []
    for name, suffixes in MIM_CONTENT.items():
        src = osp.join(ROOT, name)
        if suffixes is None:
            if not osp.isfile(src):
                raise FileNotFoundError(f'{src} is missing: it goes into the wheel as mmadn/.mim/{name}')
            os.makedirs(dest, exist_ok=True)
            written.append(shutil.copy2(src, osp.join(dest, name)))
            continue
        for folder, dirs, files in os.walk(src):
            dirs[:] = sorted(d for d in dirs if d != '__pycache__')
            for file in sorted(files):
                if file.endswith(suffixes):
                    target = osp.join(dest, osp.relpath(folder, ROOT), file)
                    os.makedirs(osp.dirname(target), exist_ok=True)
                    written.append(shutil.copy2(osp.join(folder, file), target))
    return written


class BuildPyWithMim(build_py):
    """setuptools' build_py, plus the ``mmadn/.mim`` folder of configs and tools (not for editable installs)."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        copy_mim_content(osp.join(self.build_lib, 'mmadn', '.mim'))


setup(cmdclass={'build_py': BuildPyWithMim})
