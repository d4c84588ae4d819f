"""Issue 13, items 4, 8 and 9: checkpoints that do not fit, corrupt files, a kill while saving, typos and bad
arguments stop with a message that says what is wrong, instead of a silent wrong result or lost work."""
import os
import os.path as osp
import re
import signal
import zipfile
from collections import OrderedDict

import pytest
import torch
from mmdet.models.backbones import ResNet
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint
from mmpretrain.registry import MODELS

from mmadn.datasets import make_classification_folder, make_coco_instances
from mmadn.models import ResNetADN
from mmadn.utils import (CheckpointMismatchError, CorruptCheckpointError, UnsafeCheckpointError, load_config,
                         safe_torch_load, set_strict_load)

from ._cli import run_main, run_tool

CONFIG = 'configs/demo/resnet18_adn_synthetic_cls.py'


@pytest.fixture(autouse=True)
def _strict_load_restored():
    yield
    set_strict_load(True)  # load_config sets the policy of the process from a config


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('tiny_cls'))
    make_classification_folder(root, classes=('circle', 'square'), train_per_class=4, val_per_class=2, size=32)
    return root


def _options(root, num_classes=2):
    opts = [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]
    opts += [f'{s}_dataloader.num_workers=0' for s in ('train', 'val', 'test')]
    return opts + [f'model.head.num_classes={num_classes}', f'data_preprocessor.num_classes={num_classes}',
                   'train_dataloader.batch_size=4', 'custom_hooks=[]']


@pytest.fixture(scope='module')
def one_iter_checkpoint(tiny_data, tmp_path_factory):
    work = tmp_path_factory.mktemp('one_iter')
    run_tool('tools/train.py', CONFIG, '--work-dir', work, '--cfg-options', *_options(tiny_data),
             'train_cfg.max_iters=1', 'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1')
    return str(work / 'iter_1.pth')


def _classifier(depth=18, num_classes=10):
    return MODELS.build(
        dict(type='ImageClassifier', backbone=dict(type='ResNetADN', depth=depth, out_indices=(3, )),
             neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=512 if depth < 50 else 2048)))


def _torchvision_resnet18():
    state = ResNet(18).state_dict()
    state['fc.weight'], state['fc.bias'] = torch.zeros(10, 512), torch.zeros(10)
    return state


# --- item 4: a checkpoint that does not fit -------------------------------------------------------------------


@pytest.mark.parametrize('case', ['torchvision state dict', 'ResNet-50 into ResNet-18', 'another class count'])
def test_a_whole_model_that_does_not_fit_is_refused_with_the_fix(tmp_path, case):
    """mmengine's load_checkpoint (as load_from, --resume and tools/test.py use it) only warned."""
    path = str(tmp_path / 'ckpt.pth')
    model, expect = _classifier(), []
    if case == 'torchvision state dict':  # nothing matches: backbone keys without 'backbone.'
        torch.save(_torchvision_resnet18(), path)
        expect = ['134 of its 134 tensors did not load', "model.backbone.init_cfg=dict(type='Pretrained'",
                  'adn_converter.py']
    elif case == 'ResNet-50 into ResNet-18':
        torch.save({'state_dict': _classifier(50).state_dict()}, path)
        expect = ['backbone.layer1.0.conv1.weight: checkpoint (64, 64, 1, 1), model (64, 64, 3, 3)',
                  'model.backbone.depth=']
    else:
        torch.save({'state_dict': _classifier().state_dict()}, path)
        model = _classifier(num_classes=3)
        expect = ['2 of its 134 tensors did not load', 'head.fc.weight: checkpoint (10, 512), model (3, 512)',
                  'model.head.num_classes=']
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint(model, path, map_location='cpu', logger='silent')
    for text in expect + ['strict_load=False']:
        assert text in str(err.value), str(err.value)


def test_strict_load_false_opts_in_to_a_new_head(tmp_path):
    path = str(tmp_path / 'ckpt.pth')
    source = _classifier()
    torch.save({'state_dict': source.state_dict()}, path)
    cfg = load_config(CONFIG, {'strict_load': False})
    assert cfg.strict_load is False
    model = _classifier(num_classes=3)
    load_checkpoint(model, path, map_location='cpu', logger='silent')
    assert torch.equal(model.backbone.conv1.weight, source.backbone.conv1.weight)
    assert model.head.fc.weight.shape == (3, 512)  # kept its init


def test_pretrained_inits_keep_working_and_refuse_what_does_not_fit(tmp_path):
    # legitimate partial loads: a plain torchvision ResNet (twins filled, fc left out), new layers keep their init
    torch.save(_torchvision_resnet18(), tmp_path / 'tv.pth')
    ResNetADN(18, init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'tv.pth'))).init_weights()
    partial = OrderedDict((k, v) for k, v in _torchvision_resnet18().items() if not k.startswith('layer4.1.'))
    torch.save(partial, tmp_path / 'partial.pth')
    model = ResNetADN(18, init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'partial.pth')))
    model.init_weights()
    assert torch.equal(model.layer1[0].conv1.weight, partial['layer1.0.conv1.weight'])
    # refused: another depth, and a checkpoint of which nothing loads
    torch.save({'state_dict': _classifier(50).state_dict()}, tmp_path / 'r50.pth')
    init = dict(type='Pretrained', checkpoint=str(tmp_path / 'r50.pth'), prefix='backbone.')
    with pytest.raises(CheckpointMismatchError, match=r'layer1\.0\.conv1\.weight: checkpoint \(64, 64, 1, 1\)'):
        ResNetADN(18, init_cfg=init).init_weights()
    torch.save({'encoder.weight': torch.zeros(3)}, tmp_path / 'other.pth')
    with pytest.raises(CheckpointMismatchError, match='132 of its 132 tensors did not load'):
        ResNetADN(18, init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'other.pth'))).init_weights()


def test_test_tool_refuses_a_checkpoint_that_does_not_load(tmp_path, tiny_data, capsys):
    path = tmp_path / 'tv.pth'
    torch.save(_torchvision_resnet18(), path)
    code, out = run_main(capsys, 'tools/test.py', CONFIG, path, '--work-dir', tmp_path, '--cfg-options',
                         *_options(tiny_data))
    assert code != 0 and 'CheckpointMismatchError' in out and 'does not fit the model ImageClassifier' in out
    assert 'accuracy/top1' not in out  # no figure of a random model


@pytest.mark.slow
def test_fine_tuning_from_a_checkpoint_with_another_head_needs_the_opt_in(tmp_path, tiny_data, one_iter_checkpoint,
                                                                         capsys):
    opts = _options(tiny_data, num_classes=3) + [f'load_from={one_iter_checkpoint}', 'train_cfg.max_iters=1',
                                                 'train_cfg.val_interval=10']
    code, out = run_main(capsys, 'tools/train.py', CONFIG, '--work-dir', tmp_path / 'a', '--cfg-options', *opts)
    assert code != 0 and 'head.fc.weight: checkpoint (2, 512), model (3, 512)' in out
    assert not osp.exists(tmp_path / 'a' / 'iter_1.pth')
    run_tool('tools/train.py', CONFIG, '--work-dir', tmp_path / 'b', '--cfg-options', *opts, 'strict_load=False')
    assert osp.isfile(tmp_path / 'b' / 'iter_1.pth')


# --- item 9: files that are not checkpoints -------------------------------------------------------------------


def _damaged(tmp_path, kind):
    path = tmp_path / f'{kind}.pth'
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.arange(1000.)}}, good)
    data = good.read_bytes()
    if kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'random':
        path.write_bytes(os.urandom(4096))
    elif kind == 'truncated':
        path.write_bytes(data[:len(data) // 2])
    elif kind == 'crc':  # one byte of the tensor's data flipped: torch itself loads this without a word
        with zipfile.ZipFile(good) as archive:
            info = next(i for i in archive.infolist() if i.filename.endswith('/data/0'))
        offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 100
        damaged = bytearray(data)
        damaged[offset] ^= 0xFF
        path.write_bytes(bytes(damaged))
        assert not torch.equal(torch.load(path, weights_only=True)['state_dict']['w'], torch.arange(1000.))
    elif kind == 'legacy truncated':
        torch.save({'w': torch.arange(1000.)}, good, _use_new_zipfile_serialization=False)
        data = good.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    return str(path)


@pytest.mark.parametrize('kind, says', [('empty', 'the file is empty (0 bytes)'),
                                        ('random', 'it is not a PyTorch checkpoint'),
                                        ('truncated', 'truncated or damaged PyTorch (zip) checkpoint'),
                                        ('crc', "its entry 'good/data/0' fails its CRC check"),
                                        ('legacy truncated', 'its data breaks off early')])
def test_corrupt_checkpoints_are_called_corrupt(tmp_path, kind, says):
    path = _damaged(tmp_path, kind)
    with pytest.raises(CorruptCheckpointError) as err:
        _load_checkpoint(path)  # mmengine's entry point of load_from, --resume, tools/test.py and Pretrained
    message = str(err.value)
    assert says in message and 'Nothing was loaded' in message, message
    assert 'weights_only' not in message and 'unsafe' not in message.lower()


def test_foreign_objects_in_a_legacy_checkpoint_are_still_refused_as_unsafe(tmp_path):

    class Payload:

        def __reduce__(self):
            return (os.system, ('true', ))

    path = tmp_path / 'evil.pth'
    torch.save({'x': Payload()}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafeCheckpointError, match='posix.system'):
        safe_torch_load(str(path))


# --- item 8: a kill while saving, a top-level typo ------------------------------------------------------------


@pytest.mark.slow
def test_a_kill_while_saving_leaves_the_previous_checkpoint(tmp_path, tiny_data):
    """With max_keep_ckpts=1, mmengine removed iter_1.pth first and wrote iter_2.pth in place: killed in the
    middle of that write, the run had no loadable checkpoint. The kill is the kernel's (file size limit)."""
    config = tmp_path / 'faulty.py'
    config.write_text(f"_base_ = ['{osp.abspath(CONFIG)}']\n"
                      "custom_imports = dict(imports=['mmadn', 'tests._faults'], allow_failed_imports=False)\n"
                      "custom_hooks = [dict(type='FileSizeLimitHook')]\n")
    work = tmp_path / 'work'
    common = [*_options(tiny_data)[:-1], 'train_cfg.val_interval=10', 'default_hooks.checkpoint.interval=1',
              'default_hooks.checkpoint.max_keep_ckpts=1']  # [:-1]: the config's custom_hooks, not []
    code, out = run_tool('tools/train.py', config, '--work-dir', work, '--cfg-options', *common,
                         'train_cfg.max_iters=3', check=False)
    assert code == -signal.SIGXFSZ, out[-3000:]
    assert not osp.exists(work / 'iter_2.pth')  # never published half-written
    assert safe_torch_load(str(work / 'iter_1.pth'))['meta']['iter'] == 1
    assert open(work / 'last_checkpoint').read().endswith('iter_1.pth')
    # the run resumes from it; the interrupted write is cleaned up
    _, out = run_tool('tools/train.py', CONFIG, '--work-dir', work, '--resume', '--cfg-options', *common,
                      'custom_hooks=[]', 'train_cfg.max_iters=2')
    assert re.search(r'resumed epoch: \d+, iter: 1', out), out[-3000:]
    assert safe_torch_load(str(work / 'iter_2.pth'))['meta']['iter'] == 2
    assert not osp.exists(work / 'iter_1.pth')  # max_keep_ckpts=1, removed once iter_2.pth was complete
    assert not [n for n in os.listdir(work) if n.endswith('.tmp')]


@pytest.mark.parametrize('option, says', [('load_form=x.pth', "Did you mean 'load_from'?"),
                                          ('resume_from=x.pth', 'resume=True load_from=CKPT'),
                                          ('custom_hoks=[]', "Did you mean 'custom_hooks'")])
def test_a_top_level_typo_is_an_error(option, says):
    key, value = option.split('=')
    with pytest.raises(ValueError, match='would be ignored') as err:
        load_config(CONFIG, {key: value})
    assert says in str(err.value) and 'allow_new_keys=True' in str(err.value)


def test_new_top_level_keys_on_purpose_and_keys_the_runner_reads_are_accepted():
    cfg = load_config(CONFIG, {'my_note': 'x', 'allow_new_keys': True})
    assert cfg.my_note == 'x'
    cfg = load_config(CONFIG, {'find_unused_parameters': True, 'strict_load': True})
    assert cfg.find_unused_parameters is True


def test_train_tool_stops_on_a_top_level_typo_before_training(tmp_path, tiny_data, capsys):
    code, out = run_main(capsys, 'tools/train.py', CONFIG, '--work-dir', tmp_path, '--cfg-options',
                         *_options(tiny_data), 'load_form=x.pth')
    assert code != 0 and "Did you mean 'load_from'?" in out
    assert not os.listdir(tmp_path)  # no run was started


# --- item 9: bad arguments ------------------------------------------------------------------------------------


@pytest.mark.parametrize('args, says', [(['--num-train', '0'], 'need at least one train and one val image'),
                                        (['--size', '8', '8'], 'must be at least 20 x 20, got (8, 8)')])
def test_make_synthetic_coco_refuses_what_it_cannot_generate(tmp_path, args, says, capsys):
    code, out = run_main(capsys, 'tools/misc/make_synthetic_coco.py', tmp_path / 'coco', *args)
    assert code == 2 and says in out
    assert not osp.exists(tmp_path / 'coco')
    with pytest.raises(ValueError, match='at least'):
        make_coco_instances(str(tmp_path / 'coco'), 0, 1)


@pytest.mark.slow
def test_launcher_pytorch_without_torchrun_says_so(tmp_path, tiny_data):
    assert 'RANK' not in os.environ  # as in a shell: the tool sets LOCAL_RANK itself, which hid the message
    code, out = run_tool('tools/train.py', CONFIG, '--work-dir', tmp_path, '--launcher', 'pytorch',
                         '--cfg-options', *_options(tiny_data), check=False)
    assert code != 0 and '--launcher pytorch expects to be started by torchrun' in out, out[-2000:]
