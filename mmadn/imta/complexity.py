"""Cumulative cost of every exit, read with mmengine's FLOP and parameter analysis.

Exit j's cost is everything that has run once its prediction is out: blocks 1..j and classifiers 1..j (earlier
classifiers ran too, since their confidence decided that the sample goes on).

Two counting conventions, both mmengine's ``FlopAnalyzer`` (through ``mmadn.analysis.count_flops``):

- ``'mmengine'`` (default, the one mmadn reports everywhere, so ADN and IMTA curves share an axis):
  multiply-adds of conv and linear layers plus 2 per BN element (eval mode); ReLU and pooling are free.
- ``'msdnet'``: the convention of MSDNet's own counter, which the MSDNet and IMTA papers report: multiply-adds of
  conv and linear layers, plus the linear bias, one per ReLU input element and kernel-size operations per pooled
  output element; BN is free. Only the operator handles differ.
"""
from itertools import accumulate
from typing import Any, List, Sequence, Tuple

import torch
from mmengine.analysis import parameter_count
from mmengine.analysis.jit_handles import elementwise_flop_counter, get_shape, linear_flop_jit

from mmadn.analysis import count_flops

CONVENTIONS = ('mmengine', 'msdnet')


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def _pool_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """kernel_h * kernel_w operations per output element (MSDNet's counter)."""
    kernel = inputs[1].toIValue()
    if kernel is None and inputs[1].node().kind() == 'prim::ListConstruct':  # a traced list of constants
        kernel = [v.toIValue() for v in inputs[1].node().inputs()]
    kernel = [kernel] * 2 if isinstance(kernel, int) else kernel
    return _prod(get_shape(outputs[0])) * _prod(kernel)


def _linear_with_bias_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    bias = get_shape(inputs[2]) if len(inputs) > 2 else None
    return linear_flop_jit(inputs, outputs) + (_prod(get_shape(outputs[0])) if bias else 0)


def _free(inputs: List[Any], outputs: List[Any]) -> int:
    # a zero-count handle: mmengine 0.10's set_op_handle(name, None) keeps an existing handle for `name`
    return 0


_MSDNET_HANDLES = {
    'aten::batch_norm': _free,
    'aten::relu': elementwise_flop_counter(1, 0),
    'aten::relu_': elementwise_flop_counter(1, 0),
    'aten::avg_pool2d': _pool_flop_jit,
    'aten::max_pool2d': _pool_flop_jit,
    'aten::linear': _linear_with_bias_flop_jit,
}


def _exit_modules(model) -> Tuple[List[str], List[str]]:
    backbone, head = getattr(model, 'backbone', None), getattr(model, 'head', None)
    if not (hasattr(backbone, 'blocks') and hasattr(head, 'exits')) or len(backbone.blocks) != len(head.exits):
        raise TypeError('exit_costs needs a multi-exit classifier: model.backbone.blocks and model.head.exits, '
                        'one per exit (MultiExitClassifier with MSDNet and MultiExitClsHead)')
    n = len(head.exits)
    return [f'backbone.blocks.{i}' for i in range(n)], [f'head.exits.{i}' for i in range(n)]


def exit_costs(model: torch.nn.Module, input_shape: Sequence[int] = (3, 32, 32),
               convention: str = 'mmengine') -> Tuple[List[int], List[int]]:
    """(cumulative FLOPs, cumulative parameters) per exit for one image of ``input_shape`` (C, H, W).

    ``convention``: see the module docstring. Training-only parts (the frozen OFA teacher) are not counted.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f'convention must be one of {CONVENTIONS}, got {convention!r}')
    blocks, exits = _exit_modules(model)
    param = next(model.parameters())
    inputs = torch.zeros(1, *input_shape, device=param.device, dtype=param.dtype)
    was_training = model.training
    model.eval()
    try:
        by_module = count_flops(model, model, inputs, _MSDNET_HANDLES if convention == 'msdnet' else None,
                                by_module=True)
    finally:
        model.train(was_training)
    flops, total = [by_module[b] + by_module[e] for b, e in zip(blocks, exits)], by_module['']
    if sum(flops) != total:
        raise RuntimeError(f'{total - sum(flops)} FLOPs of the model ran outside its blocks and exit classifiers; '
                           'exit_costs cannot attribute them to an exit')
    params = parameter_count(model)
    per_exit_params = [params[b] + params[e] for b, e in zip(blocks, exits)]
    return list(accumulate(flops)), list(accumulate(per_exit_params))
