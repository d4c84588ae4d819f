"""MSDNet: the multi-scale dense network of Huang et al. (ICLR 2018), the backbone IMTA trains.

The network keeps S feature scales side by side. Every layer adds ``growth_rate * gr_factor[s]`` channels at each
scale s it keeps (half from a strided conv of scale s-1, half from a conv of scale s, densely concatenated), and
fine scales are dropped as depth grows so that late layers are cheap. Layers are grouped into k blocks; after every
block a classifier (see :class:`MultiExitClsHead`) reads the coarsest scale, so the backbone returns one feature
map per exit. Gradient Equilibrium is a backbone option because it acts where block outputs fork into "to the
classifier" and "to the next block".
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from mmengine.model import BaseModule, ModuleList, Sequential

from mmadn.models.utils.norm_eval import batch_norms_to_eval
from mmadn.registry import register_model
from .gradient_equilibrium import ge_factors, scale_gradient

Features = List[torch.Tensor]  # one tensor per kept scale, finest first


class MSDNConvUnit(BaseModule):
    """Optional 1x1 bottleneck (width ``min(in, bn_width * out)``), then a 3x3 conv, each with BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, bottleneck: bool, bn_width: int,
                 norm_cfg: dict, act_cfg: dict, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        layers = []
        inner = in_channels
        if bottleneck:
            inner = min(in_channels, bn_width * out_channels)
            layers.append(ConvModule(in_channels, inner, 1, norm_cfg=norm_cfg, act_cfg=act_cfg))
        layers.append(ConvModule(inner, out_channels, 3, stride=stride, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg))
        self.layers = Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MSDNScaleLayer(BaseModule):
    """One scale of an MSDN layer: ``cat(x_s, down(x_{s-1}), conv(x_s))``, or ``cat(x_s, conv(x_s))`` at the
    finest kept scale, where there is no finer input."""

    def __init__(self, in_channels: int, out_channels: int, finer_in_channels: Optional[int], bottleneck: bool,
                 bn_width: int, finer_bn_width: Optional[int], norm_cfg: dict, act_cfg: dict):
        super().__init__()
        if finer_in_channels is None:
            self.conv_down = None
            self.conv_normal = MSDNConvUnit(in_channels, out_channels, 1, bottleneck, bn_width, norm_cfg, act_cfg)
        else:
            self.conv_down = MSDNConvUnit(finer_in_channels, out_channels // 2, 2, bottleneck, finer_bn_width,
                                          norm_cfg, act_cfg)
            self.conv_normal = MSDNConvUnit(in_channels, out_channels // 2, 1, bottleneck, bn_width, norm_cfg,
                                            act_cfg)

    def forward(self, x: torch.Tensor, finer: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.conv_down is None:
            return torch.cat([x, self.conv_normal(x)], dim=1)
        return torch.cat([x, self.conv_down(finer), self.conv_normal(x)], dim=1)


class MSDNLayer(BaseModule):
    """A dense layer over the kept scales; drops the finest ``in_scales - out_scales`` of them."""

    def __init__(self, in_units: int, growth_rate: int, in_scales: int, out_scales: int, gr_factor: Sequence[int],
                 bn_factor: Sequence[int], bottleneck: bool, norm_cfg: dict, act_cfg: dict):
        super().__init__()
        num_scales = len(gr_factor)
        self.discard = in_scales - out_scales
        offset = num_scales - out_scales  # index of the finest scale this layer outputs
        self.scales = ModuleList()
        for s in range(offset, num_scales):
            own_input = s - (num_scales - in_scales)  # position of scale s in the input list
            has_finer = own_input - 1 >= 0
            self.scales.append(
                MSDNScaleLayer(
                    in_units * gr_factor[s],
                    growth_rate * gr_factor[s],
                    in_units * gr_factor[s - 1] if has_finer else None,
                    bottleneck,
                    bn_factor[s],
                    bn_factor[s - 1] if has_finer else None,
                    norm_cfg,
                    act_cfg))

    def forward(self, x: Features) -> Features:
        out = []
        for j, layer in enumerate(self.scales):
            own = j + self.discard
            out.append(layer(x[own], x[own - 1] if own >= 1 else None))
        return out


class MSDNTransition(BaseModule):
    """Per-scale 1x1 conv-BN-ReLU that shrinks the channels (``reduction``) after a scale is dropped."""

    def __init__(self, in_units: int, out_units: int, scales: Sequence[int], gr_factor: Sequence[int],
                 norm_cfg: dict, act_cfg: dict):
        super().__init__()
        self.convs = ModuleList([
            ConvModule(in_units * gr_factor[s], out_units * gr_factor[s], 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
            for s in scales
        ])

    def forward(self, x: Features) -> Features:
        return [conv(t) for conv, t in zip(self.convs, x)]


class MSDNStem(BaseModule):
    """The first layer: a conv stem at the finest scale, then a strided 3x3 conv down to every coarser scale.

    ``cifar``: 3x3 conv (32x32 stays 32x32). ``imagenet``: 7x7/2 conv (with bias, as the original) + 3x3/2 max
    pool, so a 224x224 image gives scales 56/28/14/7.
    """

    def __init__(self, stem: str, channels: int, gr_factor: Sequence[int], norm_cfg: dict, act_cfg: dict):
        super().__init__()
        first = channels * gr_factor[0]
        if stem == 'cifar':
            layers = [ConvModule(3, first, 3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg)]
        elif stem == 'imagenet':
            layers = [Sequential(
                nn.Conv2d(3, first, 7, stride=2, padding=3, bias=True),
                build_norm_layer(norm_cfg, first)[1],
                build_activation_layer(act_cfg),
                nn.MaxPool2d(3, stride=2, padding=1))]
        else:
            raise ValueError(f"MSDNet stem must be 'cifar' or 'imagenet', got {stem!r}")
        for s in range(1, len(gr_factor)):
            layers.append(ConvModule(channels * gr_factor[s - 1], channels * gr_factor[s], 3, stride=2, padding=1,
                                     norm_cfg=norm_cfg, act_cfg=act_cfg))
        self.layers = ModuleList(layers)

    def forward(self, x: torch.Tensor) -> Features:
        out = []
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out


@register_model
class MSDNet(BaseModule):
    """Multi-scale dense network with one output per exit (the coarsest scale after each block).

    Args:
        arch (str | dict): a preset of :attr:`arch_settings` or a dict of its keys; explicit keyword
            arguments below (when not None) override the preset.
        num_exits: number of blocks k (= classifiers).
        step_mode: ``'even'`` (every block after the first has ``step`` layers) or ``'lin_grow'`` (block i has
            ``step * i + 1`` layers); the first block has ``base`` layers.
        channels: channels of the finest scale after the stem (times ``gr_factor[s]`` at scale s).
        growth_rate: channels a layer adds (times ``gr_factor[s]`` at scale s).
        gr_factor / bn_factor: per-scale growth and bottleneck-width factors; their length is the number of scales.
        stem: ``'cifar'`` or ``'imagenet'``.
        prune: ``'max'`` (drop a scale every ceil(L / S) layers, the original's default) or ``'min'``.
        reduction: channel factor of the transition layers (0 disables them).
        bottleneck: use the 1x1 bottleneck in every conv unit.
        gradient_equilibrium: rescale gradients after every block (see :mod:`.gradient_equilibrium`).
        ge_scope: ``'coarsest'`` (default) rescales only the tensor the classifiers read: the authors' public
            code, with which the paper's results were produced (its ``msdnet_ge.py``); block i's parameters then
            get exactly 1/(k-i+1) of exit i's gradient but more than that of later exits', whose gradients come
            back partly through the finer, unscaled scales. ``'all'`` rescales every scale: the paper's eq. 5
            exactly, block i's *parameters* get 1/(k-i+1) of every exit j >= i (opt-in).
        frozen: freeze all weights and keep BN in eval mode (phase II of IMTA trains only the classifiers' ends).
    """

    arch_settings: Dict[str, dict] = {
        # the IMTA paper's CIFAR network (its Table 1 with 7 exits, 6.86 ... 137.28 MFLOPs; its budgeted
        # experiments with 4, 5, 6 or 8 exits: override num_exits): linear growth, step 1, base 1
        'cifar-lin_grow': dict(num_exits=7, step_mode='lin_grow', step=1, base=1, channels=16, growth_rate=6,
                               gr_factor=(1, 2, 4), bn_factor=(1, 2, 4), stem='cifar'),
        # MSDNet's own CIFAR anytime setting (step 2, base 4, even); not the network of IMTA's tables
        'cifar-even': dict(num_exits=7, step_mode='even', step=2, base=4, channels=16, growth_rate=6,
                           gr_factor=(1, 2, 4), bn_factor=(1, 2, 4), stem='cifar'),
        # ImageNet, as the public code's run_GE.sh (base = step = t): exit i after t * i MSDN layers
        'imagenet-step4': dict(num_exits=5, step_mode='even', step=4, base=4, channels=32, growth_rate=16,
                               gr_factor=(1, 2, 4, 4), bn_factor=(1, 2, 4, 4), stem='imagenet'),
        'imagenet-step6': dict(num_exits=5, step_mode='even', step=6, base=6, channels=32, growth_rate=16,
                               gr_factor=(1, 2, 4, 4), bn_factor=(1, 2, 4, 4), stem='imagenet'),
        'imagenet-step7': dict(num_exits=5, step_mode='even', step=7, base=7, channels=32, growth_rate=16,
                               gr_factor=(1, 2, 4, 4), bn_factor=(1, 2, 4, 4), stem='imagenet'),
    }
    # presets of earlier versions, whose names said "anytime" / "budgeted" of networks IMTA does not use that way
    renamed_archs: Dict[str, str] = {
        'cifar-anytime': "'cifar-even' (MSDNet's step-2 / base-4 network it was); the IMTA paper's anytime network "
                         "(Table 1) is 'cifar-lin_grow' with 7 exits",
        'cifar-budgeted': "'cifar-lin_grow' with num_exits=5 (the network it was)",
    }

    def __init__(self,
                 arch: Union[str, dict] = 'cifar-lin_grow',
                 num_exits: Optional[int] = None,
                 step_mode: Optional[str] = None,
                 step: Optional[int] = None,
                 base: Optional[int] = None,
                 channels: Optional[int] = None,
                 growth_rate: Optional[int] = None,
                 gr_factor: Optional[Sequence[int]] = None,
                 bn_factor: Optional[Sequence[int]] = None,
                 stem: Optional[str] = None,
                 prune: str = 'max',
                 reduction: float = 0.5,
                 bottleneck: bool = True,
                 gradient_equilibrium: bool = False,
                 ge_scope: str = 'coarsest',
                 frozen: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU', inplace=True),
                 init_cfg: Optional[Union[dict, List[dict]]] = (
                     dict(type='Kaiming', layer='Conv2d', mode='fan_out', nonlinearity='relu',
                          distribution='normal'),
                     dict(type='Constant', layer='_BatchNorm', val=1, bias=0))):
        super().__init__(init_cfg=list(init_cfg) if isinstance(init_cfg, tuple) else init_cfg)
        cfg = self._resolve_arch(arch, dict(num_exits=num_exits, step_mode=step_mode, step=step, base=base,
                                            channels=channels, growth_rate=growth_rate, gr_factor=gr_factor,
                                            bn_factor=bn_factor, stem=stem))
        self.num_exits = cfg['num_exits']
        self.gr_factor = tuple(cfg['gr_factor'])
        self.bn_factor = tuple(cfg['bn_factor'])
        self.num_scales = len(self.gr_factor)
        if prune not in ('max', 'min'):
            raise ValueError(f"prune must be 'max' or 'min', got {prune!r}")
        if ge_scope not in ('coarsest', 'all'):
            raise ValueError(f"ge_scope must be 'coarsest' (public IMTA code) or 'all', got {ge_scope!r}")
        self.gradient_equilibrium = gradient_equilibrium
        self.ge_scope = ge_scope
        self.frozen = frozen
        self.steps = self.block_steps(self.num_exits, cfg['step_mode'], cfg['step'], cfg['base'])

        total = sum(self.steps)
        units = cfg['channels']
        layer = 0
        self.blocks = ModuleList()
        self.exit_channels: List[int] = []
        for b, n_layers in enumerate(self.steps):
            modules = [MSDNStem(cfg['stem'], units, self.gr_factor, norm_cfg, act_cfg)] if b == 0 else []
            for _ in range(n_layers):
                layer += 1
                in_scales, out_scales = self._kept_scales(layer, total, prune)
                modules.append(MSDNLayer(units, cfg['growth_rate'], in_scales, out_scales, self.gr_factor,
                                         self.bn_factor, bottleneck, norm_cfg, act_cfg))
                units += cfg['growth_rate']
                transition = reduction > 0 and (
                    in_scales > out_scales if prune == 'max' else layer in (total // 3, 2 * total // 3))
                if transition:
                    reduced = math.floor(reduction * units)
                    kept = range(self.num_scales - out_scales, self.num_scales)
                    modules.append(MSDNTransition(units, reduced, kept, self.gr_factor, norm_cfg, act_cfg))
                    units = reduced
            self.blocks.append(Sequential(*modules))
            self.exit_channels.append(units * self.gr_factor[-1])
        self._freeze()

    # --- construction helpers -------------------------------------------------------------------------------

    @classmethod
    def _resolve_arch(cls, arch, overrides: dict) -> dict:
        if isinstance(arch, str):
            if arch in cls.renamed_archs:
                raise ValueError(f'MSDNet arch {arch!r} was renamed: use {cls.renamed_archs[arch]}')
            if arch not in cls.arch_settings:
                raise ValueError(f'Unknown MSDNet arch {arch!r}; choose one of {sorted(cls.arch_settings)} or pass '
                                 'a dict with keys ' + ', '.join(overrides))
            cfg = dict(cls.arch_settings[arch])
        elif isinstance(arch, dict):
            cfg = dict(arch)
        else:
            raise TypeError(f'arch must be a preset name or a dict, got {type(arch).__name__}')
        cfg.update({k: v for k, v in overrides.items() if v is not None})
        missing = [k for k in overrides if k not in cfg]
        if missing:
            raise ValueError(f'MSDNet arch is missing {missing}: give them in `arch` or as keyword arguments')
        if len(cfg['gr_factor']) != len(cfg['bn_factor']):
            raise ValueError(f"gr_factor {cfg['gr_factor']} and bn_factor {cfg['bn_factor']} must have one entry "
                             'per scale (same length)')
        for s in range(1, len(cfg['gr_factor'])):
            if (cfg['growth_rate'] * cfg['gr_factor'][s]) % 2:
                raise ValueError(f"growth_rate * gr_factor[{s}] = {cfg['growth_rate'] * cfg['gr_factor'][s]} must "
                                 'be even: a layer splits its new channels at scale s>0 into two halves')
        if cfg['num_exits'] < 1:
            raise ValueError(f"num_exits must be >= 1, got {cfg['num_exits']}")
        return cfg

    @staticmethod
    def block_steps(num_exits: int, step_mode: str, step: int, base: int) -> List[int]:
        """Layers per block: ``[base] + [step if even else step * i + 1 for i in 1..k-1]``."""
        if step_mode not in ('even', 'lin_grow'):
            raise ValueError(f"step_mode must be 'even' or 'lin_grow', got {step_mode!r}")
        return [base] + [step if step_mode == 'even' else step * i + 1 for i in range(1, num_exits)]

    def _kept_scales(self, layer: int, total: int, prune: str) -> Tuple[int, int]:
        """(input scales, output scales) of the ``layer``-th MSDN layer (1-based) of ``total``."""
        S = self.num_scales
        if prune == 'max':
            interval = math.ceil(total / S)
            return S - (max(0, layer - 2) // interval), S - ((layer - 1) // interval)
        return min(S, total - layer + 2), min(S, total - layer + 1)

    def _freeze(self):
        if self.frozen:
            for p in self.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True):
        """Keep a frozen backbone's BN layers in eval mode (their running statistics must not drift)."""
        super().train(mode)
        if mode and self.frozen:
            batch_norms_to_eval(self)
        return self

    # --- forward --------------------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the coarsest-scale feature map after every block (one per exit)."""
        outs = []
        use_ge = self.gradient_equilibrium and torch.is_grad_enabled() and not torch.jit.is_tracing()
        for i, block in enumerate(self.blocks):
            x = block(x)
            if use_ge:
                to_classifier, to_next = ge_factors(i, self.num_exits)
                outs.append(scale_gradient(x[-1], to_classifier))
                if self.ge_scope == 'all':
                    x = [scale_gradient(t, to_next) for t in x]
                else:
                    x = x[:-1] + [scale_gradient(x[-1], to_next)]
            else:
                outs.append(x[-1])
        return tuple(outs)
