from .ddp_check import unused_parameters_reason  # noqa: F401
from .distill_config import distill_hooks, is_distill_hook, remove_distill_hook  # noqa: F401
from .hooks import *  # noqa: F401,F403
