"""Real early exit: every sample stops computing at the first exit whose confidence reaches its threshold.

:func:`budgeted.evaluate_thresholds` *simulates* budgeted inference from the saved scores of all exits, as the
upstream MSDNet code does: every sample runs the whole network, and the saving is a number on paper. Here the batch
is split at every exit instead: the samples that leave are answered, and only the others go on through the next
block (their feature maps at every kept scale are narrowed to those samples, and so is the previous exit's logits
tensor that ISC feeds to the next exit). With the network in eval mode every sample is computed independently of
the others (BN uses its running statistics), so each sample gets exactly the scores, and leaves at exactly the exit,
that the simulation gives it; what changes is the work done, which follows the expected FLOPs.

The thresholds are fitted as for the simulation (:func:`budgeted.fit_thresholds` on a held-out split); the last
exit takes every sample still running.
"""
from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F


def _multi_exit_parts(model) -> Tuple[torch.nn.Module, torch.nn.Module]:
    backbone, head = getattr(model, 'backbone', None), getattr(model, 'head', None)
    if not (hasattr(backbone, 'blocks') and hasattr(head, 'exit_forward')) or len(backbone.blocks) != len(head.exits):
        raise TypeError('early exit needs a multi-exit classifier: model.backbone.blocks (MSDNet) and a head with '
                        'one exit per block (MultiExitClsHead), as MultiExitClassifier builds them')
    return backbone, head


@torch.no_grad()
def early_exit_predict(model, inputs: torch.Tensor, thresholds: Sequence[float]) -> Dict[str, torch.Tensor]:
    """Run ``inputs`` (a preprocessed batch) with real early exit under per-exit confidence ``thresholds``.

    Returns ``scores`` (N x C, the softmax of the exit each sample left at), ``exits`` (N, 0-based exit index) and
    ``batch_sizes`` (how many samples each block computed). Sample n leaves at the first exit j with
    max softmax >= thresholds[j]; the last threshold is ignored (the last exit takes everything left).
    The model should be in eval mode: in train mode BN would normalise each exit's remaining samples together.
    """
    backbone, head = _multi_exit_parts(model)
    num_exits = len(head.exits)
    if len(thresholds) != num_exits:
        raise ValueError(f'{len(thresholds)} thresholds for {num_exits} exits: give one per exit (the last one is '
                         'ignored, the last exit takes every sample still running)')
    thresholds = [float(t) for t in thresholds]
    n = inputs.size(0)
    scores = inputs.new_empty(n, head.num_classes)
    exits = torch.full((n, ), num_exits - 1, dtype=torch.long, device=inputs.device)
    index = torch.arange(n, device=inputs.device)  # which of the batch's samples are still running
    feats, previous, batch_sizes = inputs, None, []
    for i in range(num_exits):
        batch_sizes.append(index.numel())
        feats = backbone.blocks[i](feats)
        logits, _ = head.exit_forward(i, feats[-1], previous)
        probs = F.softmax(logits, dim=1)
        if i == num_exits - 1:
            scores[index] = probs
            break
        # the comparison of the simulation: a float32 confidence against a float64 threshold
        leave = probs.max(dim=1).values.double() >= thresholds[i]
        if leave.all():
            scores[index] = probs
            exits[index] = i
            break
        if leave.any():
            scores[index[leave]] = probs[leave]
            exits[index[leave]] = i
            stay = ~leave
            index = index[stay]
            feats = [t[stay] for t in feats]
            logits = logits[stay]
        previous = logits
    batch_sizes += [0] * (num_exits - len(batch_sizes))  # blocks nobody reached
    return dict(scores=scores, exits=exits, batch_sizes=torch.tensor(batch_sizes))


@torch.no_grad()
def all_exit_scores(model, inputs: torch.Tensor) -> torch.Tensor:
    """Softmax scores of every exit (N x k x C), running the whole network for every sample: what the simulated
    evaluation is computed from."""
    _multi_exit_parts(model)
    logits = model.head(model.extract_feat(inputs))
    return torch.stack([F.softmax(z, dim=1) for z in logits], dim=1)
