"""Smoke tests of the standard OpenMMLab tools (issue 16), each run as a user runs it, on the demo's outputs:
get_flops.py, analyze_logs.py, browse_dataset.py, print_config.py, publish_model.py, slurm_train.sh / slurm_test.sh.
"""
import glob
import hashlib
import json
import os
import os.path as osp
import re
import subprocess

import numpy as np
import pytest
import torch

from tests._cli import ROOT, load_tool, run_main, run_tool

DIGITS_CFG = 'configs/demo/resnet18_adn_synthetic_cls.py'
DET_CFG = 'configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py'


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A few iterations of the classification demo (Algorithm 1 on): its work dir and data root."""
    from mmadn.datasets import make_digits_folder
    base = tmp_path_factory.mktemp('demo')
    data = str(base / 'digits')
    make_digits_folder(data, train_per_class=4, val_per_class=2)
    work = str(base / 'work')
    run_tool('tools/train.py', DIGITS_CFG, '--work-dir', work, '--cfg-options', 'train_cfg.max_iters=6',
             'train_cfg.val_interval=6', 'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=6',
             f'train_dataloader.dataset.data_root={data}', f'val_dataloader.dataset.data_root={data}',
             f'test_dataloader.dataset.data_root={data}')
    return work, data


@pytest.mark.slow
def test_get_flops_counts_every_requested_subnet_as_mmengine_does(tmp_path):
    out_json = tmp_path / 'flops.json'
    _, out = run_tool('tools/analysis_tools/get_flops.py', DIGITS_CFG, '--shape', '64', '--skip', 'super', 'ttff',
                      'base', '--out', out_json)
    table = json.loads(out_json.read_text())
    rows = {r['skip']: r for r in table['subnets']}
    assert list(rows) == ['FFFF', 'TTFF', 'TTTT'] and table['input_shape'] == [1, 3, 64, 64]
    assert '| TTFF | 6 |' in out and 'input 64x64' in out
    # the same model counted by mmengine's FlopAnalyzer directly, depth switched by hand
    from mmengine.analysis import FlopAnalyzer
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    model = MODELS.build(Config.fromfile(osp.join(ROOT, DIGITS_CFG)).model).eval()
    inputs = torch.zeros(1, 3, 64, 64)
    for skip, row in rows.items():
        model.backbone.skip = skip
        analyzer = FlopAnalyzer(model, inputs)
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        assert row['gflops'] == pytest.approx(analyzer.total() / 1e9, rel=1e-9), skip
    assert rows['FFFF']['gflops'] > rows['TTFF']['gflops'] > rows['TTTT']['gflops']
    assert rows['FFFF']['params_m'] > rows['TTTT']['params_m']
    assert rows['FFFF']['blocks'] == 8 and rows['TTTT']['blocks'] == 4
    total = sum(p.numel() for p in model.parameters()) / 1e6
    assert table['total_params_m'] == pytest.approx(total) and rows['FFFF']['params_m'] < total  # twins unused


def test_get_flops_of_a_detector_at_a_given_size(tmp_path, capsys):
    out_json = tmp_path / 'flops.json'
    run_main(capsys, 'tools/analysis_tools/get_flops.py', DET_CFG, '--shape', '160', '160', '--skip', 'FFFF', 'TTTT',
          '--out', out_json)
    table = json.loads(out_json.read_text())
    rows = {r['skip']: r for r in table['subnets']}
    # the backbone does not depend on the image content: the README's demo table, 0.9278 / 0.4552 GFLOPs
    assert round(rows['FFFF']['backbone_gflops'], 4) == 0.9278 and round(rows['TTTT']['backbone_gflops'], 4) == 0.4552
    assert rows['FFFF']['gflops'] > rows['TTTT']['gflops'] > rows['TTTT']['backbone_gflops']
    assert table['input_shape'] == [1, 3, 160, 160]


def test_get_flops_refuses_a_bad_skip_and_a_detector_without_data_or_shape(capsys):
    code, out = run_main(capsys, 'tools/analysis_tools/get_flops.py', DIGITS_CFG, '--skip', 'TTF')
    assert code == 2 and 'TTF' in out
    code, out = run_main(capsys, 'tools/analysis_tools/get_flops.py', DET_CFG, '--cfg-options',
                      'test_dataloader.dataset.data_root=/nonexistent/')
    assert code == 2 and '--shape H W' in out


@pytest.mark.slow
def test_analyze_logs_plots_the_losses_with_the_kl_terms(trained, tmp_path, capsys):
    work, _ = trained
    png = tmp_path / 'curves.png'
    _, out = run_tool('tools/analysis_tools/analyze_logs.py', 'plot_curve', work, '--out', png)
    assert png.is_file() and png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    scalars = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    assert len(scalars) == 1
    keys = set()
    for line in open(scalars[0]):
        keys |= set(json.loads(line))
    kl = sorted(k for k in keys if k.startswith('loss_kl'))
    assert kl, f'the demo logs no KL term: {sorted(keys)}'
    tool = load_tool('tools/analysis_tools/analyze_logs.py')
    train, val = tool.load_log(scalars[0])
    assert set(kl) <= set(tool.default_keys([(train, val)])) and tool.default_keys([(train, val)])[0] == 'loss'
    assert [s for s, _ in train['loss']] == [1, 2, 3, 4, 5, 6] and 'accuracy/top1' in val
    # a validation metric, and the time per iteration
    code, _ = run_main(capsys, 'tools/analysis_tools/analyze_logs.py', 'plot_curve', scalars[0], '--keys',
                    'accuracy/top1', 'loss', '--out', tmp_path / 'acc.png')
    assert code == 0 and (tmp_path / 'acc.png').is_file()
    _, out = run_main(capsys, 'tools/analysis_tools/analyze_logs.py', 'cal_train_time', work)
    assert re.search(r'average time per iteration: \d+\.\d+ s', out)
    code, out = run_main(capsys, 'tools/analysis_tools/analyze_logs.py', 'plot_curve', work, '--keys', 'loss_typo')
    assert code == 1 and 'loss_typo' in out and 'loss_kl' in out


@pytest.mark.slow
def test_browse_dataset_draws_the_labels_of_the_generated_digits(trained, tmp_path):
    _, data = trained
    out_dir = tmp_path / 'browse'
    run_tool('tools/analysis_tools/browse_dataset.py', DIGITS_CFG, '--phase', 'val', '-n', '3', '--output-dir',
             out_dir, '--cfg-options', f'val_dataloader.dataset.data_root={data}')
    files = sorted(out_dir.iterdir())
    assert len(files) == 3
    import mmcv
    drawn = mmcv.imread(str(files[0]))
    assert min(drawn.shape[:2]) >= 320  # enlarged from 32x32 so that the label is readable
    from mmpretrain.datasets import CustomDataset
    raw = mmcv.imread(CustomDataset(data_root=data, data_prefix='val').get_data_info(0)['img_path'])
    plain = mmcv.imrescale(raw, drawn.shape[0] / raw.shape[0], interpolation='nearest')
    assert plain.shape == drawn.shape and np.abs(plain.astype(int) - drawn.astype(int)).max() > 100  # text drawn


@pytest.mark.slow
def test_browse_dataset_draws_boxes_and_masks_of_the_generated_coco(tmp_path, capsys):
    from mmadn.datasets import make_coco_instances
    root = str(tmp_path / 'coco') + '/'
    make_coco_instances(root, num_train=2, num_val=1)
    out_dir = tmp_path / 'browse'
    run_tool('tools/analysis_tools/browse_dataset.py', DET_CFG, '-n', '2', '--output-dir', out_dir,
             '--cfg-options', f'train_dataloader.dataset.data_root={root}')
    files = sorted(out_dir.iterdir())
    assert len(files) == 2 and all(f.suffix == '.png' for f in files)
    import mmcv
    assert min(mmcv.imread(str(files[0])).shape[:2]) >= 320
    code, out = run_main(capsys, 'tools/analysis_tools/browse_dataset.py', DET_CFG, '-n', '1')
    assert code == 2 and '--output-dir' in out


@pytest.mark.slow
def test_print_config_merges_an_mmadn_base(tmp_path, capsys):
    config = tmp_path / 'mine.py'
    config.write_text("_base_ = 'mmadn::demo/resnet18_adn_synthetic_cls.py'\n"
                      "model = dict(backbone=dict(skip='TTFF'))\n")
    saved = tmp_path / 'merged.py'
    _, out = run_tool('tools/misc/print_config.py', config, '--cfg-options', 'train_cfg.max_iters=7', '--save-path',
                      saved)
    assert "type='ResNetADN'" in out and "skip='TTFF'" in out and 'max_iters=7' in out
    from mmengine.config import Config
    merged = Config.fromfile(str(saved))
    assert merged.model.backbone.skip == 'TTFF' and merged.train_cfg.max_iters == 7
    code, out = run_main(capsys, 'tools/misc/print_config.py', config, '--cfg-options', 'load_form=x.pth')
    assert code == 1 and "'load_from'" in out


@pytest.mark.slow
def test_publish_model_strips_the_optimizer_and_names_the_file_by_its_hash(trained, tmp_path, capsys):
    work, _ = trained
    ckpt = osp.join(work, 'iter_6.pth')
    code, out = run_main(capsys, 'tools/model_converters/publish_model.py', ckpt, tmp_path / 'resnet18_adn_digits.pth')
    assert code == 0
    published = glob.glob(str(tmp_path / 'resnet18_adn_digits_*.pth'))
    assert len(published) == 1
    match = re.fullmatch(r'resnet18_adn_digits_(\d{8})-([0-9a-f]{8})\.pth', osp.basename(published[0]))
    assert match, published[0]
    assert hashlib.sha256(open(published[0], 'rb').read()).hexdigest()[:8] == match.group(2)
    original = torch.load(ckpt, map_location='cpu', weights_only=False)
    stripped = torch.load(published[0], map_location='cpu', weights_only=True)
    assert 'optimizer' in original and set(stripped) == {'meta', 'state_dict'}
    assert stripped['state_dict'].keys() == original['state_dict'].keys()
    assert all(torch.equal(stripped['state_dict'][k], v) for k, v in original['state_dict'].items())
    assert osp.getsize(published[0]) < osp.getsize(ckpt)
    code, out = run_main(capsys, 'tools/model_converters/publish_model.py', ckpt, tmp_path / 'x.pth', '--keep-keys',
                      'ema')
    assert code == 1 and 'ema' in out and 'state_dict' in out


@pytest.mark.parametrize('script,args,expected_tail', [
    ('tools/slurm_train.sh', ['dev', 'adn_job', DIGITS_CFG, 'work_dirs/x', '--cfg-options', 'train_cfg.max_iters=2'],
     ['tools/train.py', DIGITS_CFG, '--work-dir=work_dirs/x', '--launcher=slurm', '--cfg-options',
      'train_cfg.max_iters=2']),
    ('tools/slurm_test.sh', ['dev', 'adn_job', DIGITS_CFG, 'ckpt.pth', '--cfg-options', 'model.backbone.skip=TTTT'],
     ['tools/test.py', DIGITS_CFG, 'ckpt.pth', '--launcher=slurm', '--cfg-options', 'model.backbone.skip=TTTT']),
])
def test_slurm_scripts_build_the_srun_command(script, args, expected_tail, tmp_path):
    # slurm is not installed here: an `srun` early on PATH writes down the command line it is given
    fake = tmp_path / 'bin' / 'srun'
    fake.parent.mkdir()
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$SRUN_LOG"\necho "PYTHONPATH=$PYTHONPATH" >> '
                    '"$SRUN_LOG"\n')
    fake.chmod(0o755)
    log = tmp_path / 'srun.log'
    env = {**os.environ, 'PATH': f'{fake.parent}:{os.environ["PATH"]}', 'SRUN_LOG': str(log), 'GPUS': '4',
           'SRUN_ARGS': '--quotatype=auto --time=10'}
    proc = subprocess.run(['bash', script, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    argv = log.read_text().splitlines()
    assert argv[:8] == ['-p', 'dev', '--job-name=adn_job', '--gres=gpu:4', '--ntasks=4', '--ntasks-per-node=4',
                        '--cpus-per-task=5', '--kill-on-bad-exit=1']
    assert argv[8:10] == ['--quotatype=auto', '--time=10'] and argv[10:12] == ['python', '-u']
    assert argv[12].endswith(expected_tail[0]) and argv[13:-1] == expected_tail[1:]
    assert argv[-1].startswith(f'PYTHONPATH={osp.join(ROOT, "tools")}/..')
    proc = subprocess.run(['bash', script, 'dev'], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and 'usage:' in proc.stderr
