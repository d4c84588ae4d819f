from .ddp_check import unused_parameters_reason  # noqa: F401
from .hooks import *  # noqa: F401,F403
