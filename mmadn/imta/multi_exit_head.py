"""One classifier per exit of a multi-exit backbone, with IMTA's Inline Subnetwork Collaboration and OFA loss.

Each exit reads its block's coarsest feature map: two 3x3 stride-2 conv-BN-ReLU, a 2x2 average pool and a linear
layer (MSDNet's classifier). With ISC, exit i+1 also sees exit i's prediction, so later exits refine rather than
restart: concatenated to its pooled feature through a transfer path g_i (``'learned'``: Linear + BN1d + ReLU, the
public code; ``'identity'``: the logits themselves), or, as the paper writes it, added to its logits through an
identity whose gradients are discarded (``'residual'``: z_{i+1} = fc(h_{i+1}) + stopgrad(z_i)). The training loss
is the sum of the exits' losses, plain cross-entropy or OFA distillation from the last exit (or from a frozen
phase-I final exit in the two-phase schedule).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.logging import print_log
from mmengine.model import BaseModule, ModuleList, Sequential
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmadn.models.losses import KL_REDUCTIONS
from mmadn.models.utils.norm_eval import batch_norms_to_eval
from mmadn.registry import register_model
from .one_for_all import one_for_all_losses

ISC_TRANSFERS = ('learned', 'identity', 'residual')
OFA_TEACHERS = ('last_exit', 'phase1')


class ExitClassifier(BaseModule):
    """MSDNet's classifier of one exit, plus the ISC transfer path that feeds it the previous exit's logits."""

    def __init__(self, in_channels: int, inter_channels: int, num_classes: int, transfer: Optional[str],
                 norm_cfg: dict, act_cfg: dict):
        super().__init__()
        self.pre_logits = Sequential(
            ConvModule(in_channels, inter_channels, 3, stride=2, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg),
            ConvModule(inter_channels, inter_channels, 3, stride=2, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg),
            nn.AvgPool2d(2))
        fc_in = inter_channels
        self.transfer = None
        if transfer == 'learned':
            self.transfer = Sequential(nn.Linear(num_classes, inter_channels), nn.BatchNorm1d(inter_channels),
                                       nn.ReLU(inplace=True))
            fc_in += inter_channels
        elif transfer == 'identity':
            fc_in += num_classes
        self.uses_previous = transfer is not None
        self.residual = transfer == 'residual'
        self.fc = nn.Linear(fc_in, num_classes)

    def pooled(self, x: torch.Tensor, exit_index: int) -> torch.Tensor:
        x = self.pre_logits(x)
        if not torch.jit.is_tracing() and x.shape[-2:] != (1, 1):
            raise ValueError(
                f'Exit {exit_index + 1}: the classifier reduces its feature map to {tuple(x.shape[-2:])} instead of '
                '1x1. MSDNet classifiers expect a 7x7 or 8x8 coarsest scale: 32x32 inputs with the CIFAR stem, '
                '224x224 with the ImageNet stem (resize or crop the images in the pipeline).')
        return x.flatten(1)

    def forward(self, x: torch.Tensor, exit_index: int,
                previous: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """(logits, pooled feature) of this exit; ``previous``: the previous exit's logits (used with ISC)."""
        pooled = self.pooled(x, exit_index)
        if self.residual:
            return self.fc(pooled) + previous, pooled
        feat = pooled
        if self.uses_previous:
            inline = previous if self.transfer is None else self.transfer(previous)
            feat = torch.cat([pooled, inline], dim=1)
        return self.fc(feat), pooled


@register_model
class MultiExitClsHead(BaseModule):
    """Classifiers for every exit of a multi-exit backbone (e.g. :class:`MSDNet`).

    Args:
        num_classes: number of categories.
        in_channels: channels of each exit's input feature map (``MSDNet.exit_channels``; filled in by
            :class:`MultiExitClassifier` when omitted).
        inter_channels: channels of the classifier convs; 128 on CIFAR, None = the input's channels (ImageNet).
        isc: Inline Subnetwork Collaboration, e.g. ``dict(transfer='learned', detach=False)``; ``transfer`` is
            ``'learned'`` (Linear + BN1d + ReLU, concatenated to the pooled feature: the public code),
            ``'identity'`` (the logits themselves, concatenated) or ``'residual'`` (the paper's variant: identity
            transfer, gradients discarded, the previous logits added to this exit's: always detached);
            ``detach=True`` stops gradients along a concatenated path. None disables ISC.
        ofa: One-for-all distillation, e.g. ``dict(gamma=0.9, temperature=3.0, teacher='last_exit')``;
            ``teacher='phase1'`` distills from a frozen copy of the phase-I final classifier (IMTA's phase II,
            needs ``frozen_pre_logits=True`` and a frozen backbone); ``kl_reduction`` is ``'mean'`` (default: the
            KL averaged over samples and classes, ``nn.KLDivLoss()`` of the public code, which the default gamma
            and T were tuned with) or ``'batchmean'`` (over samples only: C times heavier, needs its own gamma).
            None: plain CE per exit.
        frozen_pre_logits: freeze the classifiers' convs (phase II trains only the linear layers and ISC paths).
        predict_exit: which exit fills ``pred_score`` at test time (default: the last); every exit's scores are
            in the data sample's ``exit_scores`` (num_exits x num_classes) anyway.
        loss: the cross-entropy loss module config.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: Sequence[int],
                 inter_channels: Optional[int] = 128,
                 isc: Optional[dict] = None,
                 ofa: Optional[dict] = None,
                 frozen_pre_logits: bool = False,
                 predict_exit: int = -1,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU', inplace=True),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if not in_channels:
            raise ValueError('MultiExitClsHead needs in_channels, one entry per exit (MSDNet.exit_channels)')
        self.num_classes = num_classes
        self.num_exits = len(in_channels)
        if not -self.num_exits <= predict_exit < self.num_exits:
            raise ValueError(f'predict_exit={predict_exit} is out of range for {self.num_exits} exits')
        self.predict_exit = predict_exit
        self.isc = self._check_isc(isc)
        self.ofa = self._check_ofa(ofa)
        self.frozen_pre_logits = frozen_pre_logits
        if self.ofa and self.ofa['teacher'] == 'phase1' and not frozen_pre_logits:
            raise ValueError("ofa.teacher='phase1' distills from the phase-I final classifier on frozen features: "
                             'set frozen_pre_logits=True in the head and frozen=True in the backbone')
        self.loss_module = loss if isinstance(loss, nn.Module) else MODELS.build(loss)

        self.exits = ModuleList()
        self.pooled_channels = []
        for i, c in enumerate(in_channels):
            inter = inter_channels or c
            transfer = self.isc['transfer'] if (self.isc and i > 0) else None
            self.exits.append(ExitClassifier(c, inter, num_classes, transfer, norm_cfg, act_cfg))
            self.pooled_channels.append(inter)
        # the frozen phase-I final classifier, the teacher of phase II (loaded from a phase-I checkpoint)
        self.teacher_fc = None
        self._teacher_loaded = False  # set when a checkpoint provides the teacher's weights
        if self.ofa and self.ofa['teacher'] == 'phase1':
            self.teacher_fc = nn.Linear(self.pooled_channels[-1], num_classes)
            self.teacher_fc.requires_grad_(False)
        if frozen_pre_logits:
            for exit_ in self.exits:
                exit_.pre_logits.requires_grad_(False)

    @staticmethod
    def _check_isc(isc: Optional[dict]) -> Optional[dict]:
        if isc is None:
            return None
        unknown = set(isc) - {'transfer', 'detach'}
        if unknown:
            raise ValueError(f'Unknown ISC option(s) {sorted(unknown)}; use transfer={ISC_TRANSFERS} and detach')
        isc = dict(dict(transfer='learned', detach=isc.get('transfer') == 'residual'), **isc)
        if isc['transfer'] not in ISC_TRANSFERS:
            raise ValueError(f"isc.transfer must be one of {ISC_TRANSFERS}, got {isc['transfer']!r}")
        if isc['transfer'] == 'residual' and not isc['detach']:
            raise ValueError("isc.transfer='residual' is the paper's identity transfer whose gradients are "
                             "discarded: drop detach=False (or use transfer='identity' to concatenate the logits "
                             'with gradients)')
        return isc

    @staticmethod
    def _check_ofa(ofa: Optional[dict]) -> Optional[dict]:
        if ofa is None:
            return None
        unknown = set(ofa) - {'gamma', 'temperature', 'teacher', 'kl_reduction'}
        if unknown:
            raise ValueError(f'Unknown OFA option(s) {sorted(unknown)}; use gamma, temperature, teacher, '
                             'kl_reduction')
        ofa = dict(dict(gamma=0.9, temperature=3.0, teacher='last_exit', kl_reduction='mean'), **ofa)
        if ofa['teacher'] not in OFA_TEACHERS:
            raise ValueError(f"ofa.teacher must be one of {OFA_TEACHERS}, got {ofa['teacher']!r}")
        if ofa['kl_reduction'] not in KL_REDUCTIONS:
            raise ValueError(f"ofa.kl_reduction must be one of {KL_REDUCTIONS}, got {ofa['kl_reduction']!r}")
        if not 0.0 <= ofa['gamma'] <= 1.0 or ofa['temperature'] <= 0:
            raise ValueError(f"OFA needs 0 <= gamma <= 1 and temperature > 0, got {ofa}")
        return ofa

    def train(self, mode: bool = True):
        """Frozen parts keep their BN statistics (eval mode) while the rest trains."""
        super().train(mode)
        if mode and self.frozen_pre_logits:
            for exit_ in self.exits:
                batch_norms_to_eval(exit_.pre_logits)
        return self

    # --- forward --------------------------------------------------------------------------------------------

    def _check_feats(self, feats: Sequence[torch.Tensor]):
        if len(feats) != self.num_exits:
            raise ValueError(f'MultiExitClsHead has {self.num_exits} exits but got {len(feats)} feature maps; '
                             'in_channels must list one entry per backbone exit')

    def exit_forward(self, index: int, x: torch.Tensor,
                     previous: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """(logits, pooled feature) of exit ``index`` from its feature map and the previous exit's logits (None
        for the first). One exit at a time, so that early-exit inference can stop after any of them."""
        if previous is not None and self.isc and self.isc['detach']:
            previous = previous.detach()
        return self.exits[index](x, index, previous)

    def _run_exits(self, feats: Sequence[torch.Tensor]):
        self._check_feats(feats)
        logits, pooled, previous = [], [], None
        for i, x in enumerate(feats):
            previous, p = self.exit_forward(i, x, previous)
            logits.append(previous)
            pooled.append(p)
        return tuple(logits), pooled

    def forward(self, feats: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        """Logits of every exit, earliest first."""
        return self._run_exits(feats)[0]

    def _teacher_logits(self, last_pooled: torch.Tensor) -> Optional[torch.Tensor]:
        """The frozen phase-I final classifier on the last exit's (frozen) pooled feature."""
        if self.teacher_fc is None:
            return None
        if not self._teacher_loaded:
            raise RuntimeError("ofa.teacher='phase1' distills from the phase-I final classifier, but no checkpoint "
                               'has been loaded into the model: set load_from to the phase-I checkpoint')
        with torch.no_grad():
            return self.teacher_fc(last_pooled.detach())

    def loss(self, feats: Sequence[torch.Tensor], data_samples: List[DataSample], **kwargs) -> Dict[str, torch.Tensor]:
        """``loss_exit{i}`` per exit (1-based); mmengine sums them, so the total is the plain sum over exits."""
        logits, pooled = self._run_exits(feats)
        if 'gt_score' in data_samples[0]:
            target = torch.stack([ds.gt_score for ds in data_samples])
        else:
            target = torch.cat([ds.gt_label for ds in data_samples])

        def cross_entropy(z):
            return self.loss_module(z, target, avg_factor=z.size(0), **kwargs)

        if self.ofa:
            losses = one_for_all_losses(logits, cross_entropy, self.ofa['gamma'], self.ofa['temperature'],
                                        self._teacher_logits(pooled[-1]), self.ofa['kl_reduction'])
        else:
            losses = one_for_all_losses(logits, cross_entropy)
        return {f'loss_exit{i + 1}': loss for i, loss in enumerate(losses)}

    def predict(self, feats: Sequence[torch.Tensor],
                data_samples: Optional[List[Optional[DataSample]]] = None) -> List[DataSample]:
        """``pred_score``/``pred_label`` from ``predict_exit``; ``exit_scores``: softmax of every exit."""
        scores = torch.stack([F.softmax(z, dim=1) for z in self(feats)], dim=1).detach()  # N x k x C
        if data_samples is None:
            data_samples = [None] * scores.size(0)
        out = []
        for ds, s in zip(data_samples, scores):
            ds = DataSample() if ds is None else ds
            score = s[self.predict_exit]
            ds.set_pred_score(score).set_pred_label(score.argmax(dim=0, keepdim=True))
            ds.set_field(s, 'exit_scores', dtype=torch.Tensor)
            out.append(ds)
        return out

    # --- checkpoint layout ----------------------------------------------------------------------------------

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Phase II starts from a phase-I checkpoint: adapt its layout on the fly (see :func:`phase1_to_phase2`)."""
        if self.teacher_fc is not None and prefix + 'teacher_fc.weight' not in state_dict:
            if prefix + f'exits.{self.num_exits - 1}.fc.weight' in state_dict:
                converted = phase1_to_phase2(state_dict, self.num_exits, prefix,
                                             [exit_.fc.in_features for exit_ in self.exits])
                # what phase II adds (the ISC transfers) loads its own init, so that the load is complete (mmadn
                # refuses a model that does not load fully, see mmadn.utils)
                for key, value in self.state_dict(prefix=prefix).items():
                    if key.startswith(prefix + 'exits.') and '.transfer.' in key:
                        converted.setdefault(key, value)
                state_dict.clear()
                state_dict.update(converted)
                print_log('Loaded a phase-I checkpoint into an IMTA phase-II head: its final linear layer became '
                          'the frozen OFA teacher; the exits\' linear layers start from their phase-I weights '
                          '(the columns of the ISC input at zero) and are fine-tuned.', logger='current')
        if self.teacher_fc is not None and prefix + 'teacher_fc.weight' in state_dict:
            self._teacher_loaded = True
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


def phase1_to_phase2(state_dict: Dict[str, torch.Tensor], num_exits: int, prefix: str = 'head.',
                     fc_in_features: Optional[Sequence[int]] = None) -> Dict:
    """Phase-I (plain MSDNet) head weights -> IMTA phase-II head weights, as a pure function.

    A copy of the phase-I final linear layer becomes ``teacher_fc`` (the frozen OFA teacher). The exits' linear
    layers are kept, to be fine-tuned (the paper; the public code trains new ones instead). ``fc_in_features``:
    the input width of each phase-II exit's linear layer; where ISC concatenates an input to the pooled feature
    (wider than in phase I), the weight gets zero columns for it, so phase II starts from phase I's predictions.
    Everything else is kept.
    """
    last = f'{prefix}exits.{num_exits - 1}.fc.'
    out = {}
    for key, value in state_dict.items():
        if key.startswith(last):
            out[prefix + 'teacher_fc.' + key[len(last):]] = value.clone()
        out[key] = value
    for i, width in enumerate(fc_in_features or ()):
        key = f'{prefix}exits.{i}.fc.weight'
        weight = out[key]
        if width < weight.size(1):
            raise ValueError(f'{key}: the phase-II linear layer reads {width} inputs, fewer than the {weight.size(1)} '
                             "of the phase-I checkpoint's: is the checkpoint from the same MSDNet and classifier?")
        if width > weight.size(1):
            out[key] = torch.cat([weight, weight.new_zeros(weight.size(0), width - weight.size(1))], dim=1)
    return out
