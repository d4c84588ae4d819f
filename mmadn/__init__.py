"""mmadn: adaptive depth networks for MMDetection and MMPretrain.

Importing the package registers its backbones and hooks in the registries of both libraries and makes
mmengine load local checkpoints with torch's weights-only unpickler (see ``mmadn.utils.checkpoint``).
"""
from . import utils  # noqa: F401  (installs the safe checkpoint loader)
from . import models  # noqa: F401  (registers the models)
from . import engine  # noqa: F401  (registers the hooks)
from . import imta, odn  # noqa: F401  (the other two methods of the source papers)
from .version import __version__

__all__ = ['__version__']
