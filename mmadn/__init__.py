"""mmadn: adaptive depth networks for MMDetection and MMPretrain.

Importing the package registers its modules in the registries of both libraries (``mmadn.registry``) and, for
the whole process, makes mmengine load local checkpoints weights-only and refuse a load that does not fit; it logs
so once, and ``MMADN_NO_CHECKPOINT_LOADER=1`` opts out (``mmadn.utils.checkpoint``).
"""
from . import utils  # noqa: F401  (installs the safe checkpoint loader unless MMADN_NO_CHECKPOINT_LOADER=1)
from . import models  # noqa: F401  (registers the models)
from . import engine  # noqa: F401  (registers the hooks)
from . import imta, odn  # noqa: F401  (the other two methods of the source papers)
from .version import __version__

__all__ = ['__version__']
