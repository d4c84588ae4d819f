"""The torch features some tests need, declared once: on a torch that lacks one (torch 2.1, the second tested
stack: requirements/constraints-torch21.txt) those tests skip with the reason, instead of failing."""
import pytest
import torch

from mmadn.deploy.runtime import HAS_DYNAMO_EXPORTER, HAS_TORCH_COND

_TORCH = f'torch {torch.__version__}'

# torch.onnx.export(..., dynamo=True): torch >= 2.5
needs_dynamo_exporter = pytest.mark.skipif(
    not HAS_DYNAMO_EXPORTER, reason=f'needs torch.onnx.export(..., dynamo=True) (torch >= 2.5); {_TORCH} has only '
    'the TorchScript-based exporter, and mmadn refuses dynamo=True there')

# the all-depths model: torch.cond, exported as ONNX If by the dynamo exporter
needs_all_depths = pytest.mark.skipif(
    not (HAS_DYNAMO_EXPORTER and HAS_TORCH_COND), reason=f'the all-depths model needs torch.cond and the dynamo '
    f'ONNX exporter (torch >= 2.5); {_TORCH} lacks them, and mmadn refuses the all-depths model there')

# torch.compile of an adaptive model: torch 2.1's dynamo keeps running the depth it compiled after a switch
# (ResNet) or fails on the switchable norms (ViT); measured to work on torch 2.14, not tried in between
BEFORE_2_5 = tuple(int(v) for v in torch.__version__.split('+')[0].split('.')[:2]) < (2, 5)

needs_compile_of_switches = pytest.mark.skipif(
    BEFORE_2_5,
    reason=f'{_TORCH}: torch.compile does not follow a depth switch (it runs the depth it compiled, or fails on '
    'the switchable norms); compile again after each switch (torch._dynamo.reset()) on this torch')
