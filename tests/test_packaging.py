"""mmadn's wheel, used from outside the repository: the configs and tools it carries in ``mmadn/.mim``, ``mmadn::``
base configs, ``mim train mmadn`` / ``mim test mmadn``, and the model-index files (issue 16).

The wheel is built from a clean copy of the source tree (``pip wheel --no-deps --no-build-isolation``), installed
with ``pip install --no-deps --target`` into a temporary folder and used with PYTHONPATH set to that folder, from a
working directory outside the repository, by this environment's Python (which has the rest of the stack).
"""
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest
import yaml

from tests._cli import ROOT, THREADS, run_main

PYTHON = sys.executable
MIM = osp.join(osp.dirname(PYTHON), 'mim')
SKIP_COPY = {'.git', '.venv', 'work_dirs', 'data', 'build', 'dist', '.pytest_cache', '__pycache__'}


def _run(cmd, cwd, env=None, timeout=300):
    full_env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': THREADS, **(env or {})}
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{" ".join(map(str, cmd))} exited with {proc.returncode}:\n{out[-6000:]}'
    return out


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """(site folder with the installed wheel, the wheel's path)."""
    base = tmp_path_factory.mktemp('wheel')
    src = base / 'src'
    shutil.copytree(ROOT, src, ignore=lambda d, names: [
        n for n in names if n in SKIP_COPY or n.endswith('.egg-info') or n.endswith('.pyc')])
    _run([PYTHON, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', base / 'dist', src],
         cwd=base)
    wheels = list((base / 'dist').glob('mmadn-*.whl'))
    assert len(wheels) == 1, wheels
    site = base / 'site'
    _run([PYTHON, '-m', 'pip', 'install', '--no-deps', '-q', '--target', site, wheels[0]], cwd=base)
    return site, wheels[0]


def _outside(tmp_path, site):
    """A working directory outside the repository and the environment that makes the wheel's mmadn the one."""
    work = tmp_path / 'outside'
    work.mkdir()
    return work, {'PYTHONPATH': str(site)}


@pytest.mark.slow
def test_wheel_carries_the_configs_tools_and_model_index(installed):
    _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ('mmadn/.mim/model-index.yml', 'mmadn/.mim/configs/mask_rcnn_r50_adn_fpn_1x_coco.py',
                 'mmadn/.mim/configs/demo/resnet18_adn_synthetic_cls.py', 'mmadn/.mim/configs/metafile.yml',
                 'mmadn/.mim/tools/train.py', 'mmadn/.mim/tools/test.py', 'mmadn/.mim/tools/slurm_train.sh',
                 'mmadn/.mim/tools/analysis_tools/get_flops.py', 'mmadn/utils/config_scope.py'):
        assert path in names, f'{path} is not in the wheel'
    in_repo = {osp.relpath(osp.join(d, f), ROOT) for d, _, files in os.walk(osp.join(ROOT, 'configs'))
               for f in files if f.endswith('.py')}
    in_wheel = {n[len('mmadn/.mim/'):] for n in names if n.startswith('mmadn/.mim/configs/') and n.endswith('.py')}
    assert in_wheel == in_repo
    assert not any('__pycache__' in n or n.startswith(('tests/', 'configs/', 'tools/')) for n in names)


def _scope_wired(site) -> bool:
    """Whether ``import mmadn`` installs the mmadn:: lookup (mmadn.utils.config_scope) by itself."""
    out = subprocess.run([PYTHON, '-c', 'import mmadn, mmengine.config.utils as u; print("mmadn" in u.MODULE2PACKAGE)'],
                         env={**os.environ, 'PYTHONPATH': str(site)}, capture_output=True, text=True, cwd='/')
    return out.stdout.strip().endswith('True')


@pytest.mark.slow
def test_outside_config_inherits_mmadn_bases_from_the_installed_package(installed, tmp_path):
    site, _ = installed
    work, env = _outside(tmp_path, site)
    (work / 'my_detector.py').write_text(
        "_base_ = 'mmadn::mask_rcnn_r50_adn_fpn_1x_coco.py'\nmodel = dict(backbone=dict(skip='TTFF'))\n")
    (work / 'my_classifier.py').write_text(
        "_base_ = 'mmadn::demo/resnet18_adn_synthetic_cls.py'\ntrain_cfg = dict(max_iters=3)\n")
    script = (
        'import mmadn, mmadn.utils.config_scope\n'
        'from mmengine.config import Config\n'
        'print("mmadn from", mmadn.__file__)\n'
        'det = Config.fromfile("my_detector.py")\n'
        'print("det", det.model.type, det.model.backbone.type, det.model.backbone.skip, det.default_scope,\n'
        '      det.custom_hooks[0].type, det.custom_hooks[0].get("_scope_"))\n'
        'cls = Config.fromfile("my_classifier.py")\n'
        'print("cls", cls.model.type, cls.model.get("_scope_"), cls.train_cfg.max_iters, cls.default_scope)\n'
        'try:\n'
        '    Config.fromfile("bad.py")\n'
        'except FileNotFoundError as err:\n'
        '    print("error", err)\n')
    (work / 'bad.py').write_text("_base_ = 'mmadn::mask_rcnn_r50_adn_fpn_1x_cocoo.py'\n")
    (work / 'check.py').write_text(script)
    out = _run([PYTHON, 'check.py'], cwd=work, env=env)
    assert f'mmadn from {site}{os.sep}mmadn{os.sep}__init__.py' in out  # the wheel's, not the repository's
    # the base's dicts build in its own default_scope (mmdet / mmpretrain), not in a scope 'mmadn' that has no registry
    assert 'det MaskRCNN ResNetADN TTFF mmdet ADNDistillHook None' in out
    assert 'cls ImageClassifier None 3 mmpretrain' in out
    assert 'no such config' in out and 'mmadn::mask_rcnn_r50_adn_fpn_1x_coco.py' in out  # the suggestion


@pytest.mark.slow
def test_mim_trains_and_tests_the_classification_demo_from_the_wheel(installed, tmp_path):
    site, _ = installed
    if not osp.isfile(MIM):
        pytest.fail(f'openmim is not installed in this environment ({MIM} missing): scripts/setup_env.sh installs '
                    'it (requirements/mim.txt)')
    if not _scope_wired(site):
        pytest.skip('import mmadn does not install mmadn.utils.config_scope yet (mmadn/utils/__init__.py must '
                    'import it), so tools/train.py cannot read mmadn:: bases')
    work, env = _outside(tmp_path, site)
    _run([PYTHON, '-c', 'from mmadn.datasets import make_digits_folder; '
          'make_digits_folder("data/synthetic_digits", train_per_class=4, val_per_class=2)'], cwd=work, env=env)
    (work / 'tiny_cls.py').write_text(
        "_base_ = 'mmadn::demo/resnet18_adn_synthetic_cls.py'\n"
        "train_cfg = dict(max_iters=3, val_interval=3)\n"
        "default_hooks = dict(checkpoint=dict(interval=3), logger=dict(interval=1))\n")
    out = _run([MIM, 'train', 'mmadn', 'tiny_cls.py', '--work-dir', 'wd'], cwd=work, env=env)
    assert f'{site}/mmadn/.mim/tools/train.py' in out  # mim ran the wheel's copy of tools/train.py
    assert 'Iter(train) [3/3]' in out and 'Training finished successfully' in out
    assert (work / 'wd' / 'iter_3.pth').is_file()
    # mim test finds a config of the package by its name, as it finds mmdet's: the demo config the run inherited
    out = _run([MIM, 'test', 'mmadn', 'resnet18_adn_synthetic_cls.py', '--checkpoint', 'wd/iter_3.pth',
                '--work-dir', 'wd_test', '--cfg-options', 'model.backbone.skip=TTTT'], cwd=work, env=env)
    assert 'mmadn/.mim/configs/demo/resnet18_adn_synthetic_cls.py instead' in out
    assert f'{site}/mmadn/.mim/tools/test.py' in out and 'accuracy/top1' in out


def test_metafiles_validate_against_the_model_index_format():
    from modelindex.load_model_index import load
    index = load(osp.join(ROOT, 'model-index.yml'))
    models = index.models
    assert len(models) >= 20
    names = [m.name for m in models]
    assert len(names) == len(set(names)), 'model names must be unique across the metafiles'
    collections = {c.name for c in index.collections}
    assert {'ADN', 'ADN-demo', 'IMTA', 'ODN'} <= collections
    assert index.check(silent=True) == []  # model-index's own validation (fields, types, collections, READMEs)
    for model in models:
        assert model.in_collection in collections, model.name
        assert osp.isfile(osp.join(ROOT, model.config)), f'{model.name}: config {model.config} does not exist'
        assert model.results, f'{model.name} has no result (not even "not yet measured")'
        for result in model.results:
            assert result.task and result.dataset and result.metrics, (model.name, result)
    by_name = {m.name: m for m in models}
    coco = by_name['mask_rcnn_r50_adn_fpn_1x_coco']
    assert coco.results[0].dataset == 'COCO' and set(coco.results[0].metrics.values()) == {'not yet measured'}


def test_metafiles_hold_the_figures_of_the_committed_results():
    """The embedded-data results are those of the benchmark JSON, labelled as generated data."""
    import json
    with open(osp.join(ROOT, 'configs', 'demo', 'metafile.yml')) as f:
        meta = yaml.safe_load(f)
    model = {m['Name']: m for m in meta['Models']}['resnet18_adn_synthetic_cls']
    with open(osp.join(ROOT, 'results', 'demo', 'resnet18_adn_synthetic_cls', 'subnets.json')) as f:
        bench = {r['skip']: r for r in json.load(f)['subnets']}
    assert 'generated by tools/misc/make_synthetic_digits.py' in model['Metadata']['Training Data']
    metrics = model['Results'][0]['Metrics']
    for skip, label in (('FFFF', 'super-net'), ('TTTT', 'base-net')):
        top1 = bench[skip]['top1']
        assert metrics[f'Top 1 Accuracy ({skip}, {label})'] == pytest.approx(top1 * (100 if top1 <= 1 else 1),
                                                                             rel=1e-3)
    assert model['Metadata']['FLOPs'] == round(bench['FFFF']['gflops'] * 1e9)
    assert model['Metadata']['FLOPs (base-net)'] < model['Metadata']['FLOPs']


def test_metafiles_and_readmes_are_up_to_date(capsys):
    code, out = run_main(capsys, 'tools/misc/make_metafiles.py', '--check')
    assert code == 0, out
