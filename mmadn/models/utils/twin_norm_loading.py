"""Loading a checkpoint into an ADN backbone: what every backbone's ``load_state_dict`` pre-hook does.

A plain checkpoint (mmdet / mmpretrain / torchvision-converted) has no twin norms: they are filled from their
shared norms and the user is told once, in one line, instead of getting one missing key per twin. A checkpoint
holding the backbone under another prefix, or in a foreign layout, is refused with the fix.
"""
from typing import Dict, Sequence

from mmengine.logging import print_log
from torch import nn

from .adaptive_depth import TWIN_SUFFIX

CONVERTER = 'tools/model_converters/adn_converter.py'


class TwinNormLoadHook:
    """``load_state_dict`` pre-hook of an ADN backbone (``module.twin_norm_names()`` names the twins).

    Args:
        probe: a key every checkpoint of this backbone has (relative to the backbone), to find its prefix.
        family: the plain network's name for messages ('ResNet', 'Swin', ...).
        foreign_keys: keys that give away an unconverted released / torchvision checkpoint.
    """

    def __init__(self, probe: str, family: str, foreign_keys: Sequence[str] = ()) -> None:
        self.probe = probe
        self.family = family
        self.foreign_keys = tuple(foreign_keys)

    def __call__(self, module: nn.Module, state_dict: Dict, prefix: str, local_metadata, strict, missing_keys,
                 unexpected_keys, error_msgs) -> None:
        if self.holds_backbone(module, state_dict, prefix):
            self.upgrade(module, state_dict, prefix, local_metadata)
            self.fill_twins(module, state_dict, prefix)

    def holds_backbone(self, module: nn.Module, state_dict: Dict, prefix: str) -> bool:
        """True when the backbone's weights sit at ``prefix``; raises when they sit elsewhere or are foreign."""
        if prefix + self.probe in state_dict:
            return True
        other = sorted(k[:-len(self.probe)] for k in state_dict if k.endswith(self.probe))
        if other:
            raise ValueError(
                f'The checkpoint loaded into {type(module).__name__} (at prefix {prefix!r}) holds its weights '
                f"under prefix {other[0]!r}. For a backbone init use init_cfg=dict(type='Pretrained', "
                f'checkpoint=..., prefix={other[0]!r}); to convert a checkpoint, see {CONVERTER}.')
        if self.foreign_keys and any(k.endswith(self.foreign_keys) for k in state_dict):
            raise ValueError(
                f'The checkpoint loaded into {type(module).__name__} has torchvision / released {self.family}-ADN '
                f'names ({", ".join(self.foreign_keys)}, ...); convert it first: python {CONVERTER} SRC DST '
                '--to mmpretrain.')
        return False  # not this backbone's weights (e.g. a partial state dict): leave it to torch

    def upgrade(self, module: nn.Module, state_dict: Dict, prefix: str, local_metadata) -> None:
        """Rename keys of older checkpoint versions (nothing by default)."""

    def fill_twins(self, module: nn.Module, state_dict: Dict, prefix: str) -> None:
        filled = 0
        for twin, shared in module.twin_norm_names():
            twin_prefix, shared_prefix = f'{prefix}{twin}.', f'{prefix}{shared}.'
            if any(k.startswith(twin_prefix) for k in state_dict):
                continue
            shared_keys = [k for k in state_dict if k.startswith(shared_prefix)]
            for key in shared_keys:
                state_dict[twin_prefix + key[len(shared_prefix):]] = state_dict[key]
            filled += bool(shared_keys)
        if filled:
            print_log(
                f'{type(module).__name__}: the checkpoint has no skip-aware twin norms (*{TWIN_SUFFIX}); '
                f'initialised {filled} of them as copies of their shared norms (expected for a plain '
                f'{self.family} checkpoint: train them with ADN (norm_eval=False) or recalibrate them).',
                logger='current',
                level=30)
