"""The older end of the tested torch range (torch 2.1, requirements/constraints-torch21.txt): checkpoints load as
safely as on the pinned torch, and what torch 2.1 lacks (torch.cond, the dynamo ONNX exporter) is refused with a
message saying so. Each test runs on both stacks; the torch < 2.5 code paths are also forced on the pinned one."""
import collections
import io
import os

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

import mmadn.utils.checkpoint as checkpoint
from mmadn.deploy import runtime
from mmadn.utils import CorruptCheckpointError, UnsafeCheckpointError, safe_torch_load


@pytest.fixture(params=['torch', 'restricted'])
def loader(request, monkeypatch):
    """safe_torch_load as this torch runs it, and with the restricted unpickler of torch < 2.5 forced."""
    if request.param == 'restricted':
        monkeypatch.setattr(checkpoint, '_HAS_SAFE_GLOBALS', False)
    return safe_torch_load


class _System:
    """Unpickling it would run a shell command: stands in for a malicious checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy'])
def test_a_pickle_reducing_to_os_system_is_refused_and_nothing_runs(tmp_path, loader, legacy):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'x': _System(marker)}, path,
               _use_new_zipfile_serialization=not legacy)
    with pytest.raises(UnsafeCheckpointError, match=r'Refusing to load .*\(posix\.system\)'):
        loader(str(path))
    assert not marker.exists()


def test_what_mmengine_checkpoints_hold_loads(tmp_path, loader):
    buffer = HistoryBuffer()
    buffer.update(1.5)
    buffer.update(np.float64(2.5))
    saved = {'state_dict': {'w': torch.arange(3.), 'h': torch.ones(2, dtype=torch.float16)},
             'counter': collections.Counter('aab'),
             'message_hub': {'loss': buffer, 'array': np.arange(4), 'scalar': np.float32(0.5),
                             'dtype': np.dtype('int64')}}
    for legacy in (False, True):
        path = tmp_path / f'ok{legacy}.pth'
        torch.save(saved, path, _use_new_zipfile_serialization=not legacy)
        loaded = loader(str(path))
        assert torch.equal(loaded['state_dict']['w'], torch.arange(3.))
        assert loaded['state_dict']['h'].dtype == torch.float16 and loaded['counter'] == collections.Counter('aab')
        hub = loaded['message_hub']
        assert hub['loss'].mean() == 2.0 and hub['array'].tolist() == [0, 1, 2, 3]
        assert hub['scalar'] == np.float32(0.5) and hub['dtype'] == np.dtype('int64')


def test_the_restricted_unpickler_allows_only_the_list():
    allowed = checkpoint._restricted_globals()
    # numpy 1 and numpy 2 name their core module differently: a checkpoint of either stack loads on the other
    assert allowed['numpy.core.multiarray._reconstruct'] is allowed['numpy._core.multiarray._reconstruct']
    assert allowed['builtins.getattr'] is checkpoint._history_buffer_getattr
    assert allowed['collections.Counter'] is collections.Counter  # in mmdet's detector checkpoints
    for name in ('posix.system', 'builtins.eval', 'builtins.exec', 'io.open', 'subprocess.Popen'):
        assert name not in allowed


@pytest.mark.parametrize('module', ['builtins', '__builtin__'])  # protocol 2 names builtins '__builtin__'
def test_the_restricted_unpickler_refuses_a_global_by_its_mapped_name(module):
    with pytest.raises(UnsafeCheckpointError, match='GLOBAL builtins.eval'):
        checkpoint._RESTRICTED_PICKLE.load(io.BytesIO(f'c{module}\neval\n.'.encode()))


def test_a_torchscript_archive_is_refused_on_the_restricted_path(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, '_HAS_SAFE_GLOBALS', False)
    path = str(tmp_path / 'scripted.pt')
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    with pytest.raises(UnsafeCheckpointError, match='TorchScript archive'):
        safe_torch_load(path)


def test_damage_is_still_called_damage_on_the_restricted_path(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, '_HAS_SAFE_GLOBALS', False)
    good = tmp_path / 'good.pth'
    torch.save({'w': torch.arange(1000.)}, good, _use_new_zipfile_serialization=False)
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])
    with pytest.raises(CorruptCheckpointError, match='Nothing was loaded'):
        safe_torch_load(str(cut))


# --- what torch < 2.5 lacks is refused with the reason --------------------------------------------------------


def test_missing_exporter_features_are_refused_with_the_torch_that_has_them(monkeypatch):
    monkeypatch.setattr(runtime, 'HAS_DYNAMO_EXPORTER', False)
    monkeypatch.setattr(runtime, 'HAS_TORCH_COND', False)
    with pytest.raises(RuntimeError, match=r'needs torch\.onnx\.export\(\.\.\., dynamo=True\) and torch\.cond, '
                       r'which torch .* lacks \(torch >= 2\.5 has them\)\. Upgrade'):
        runtime.require_dynamo_exporter('The all-depths model', 'Upgrade torch.', cond=True)
    with pytest.raises(RuntimeError, match=r'needs torch\.onnx\.export\(\.\.\., dynamo=True\), which'):
        runtime.require_dynamo_exporter('Exporting with dynamo=True', 'Pass dynamo=False.')


def test_the_all_depths_model_is_refused_without_torch_cond(monkeypatch):
    from mmadn.deploy.all_depths import AllDepthsFeatures
    monkeypatch.setattr(runtime, 'HAS_TORCH_COND', False)
    with pytest.raises(RuntimeError, match=r'all-depths model .* needs .*torch\.cond, which torch'):
        AllDepthsFeatures(torch.nn.Module())
