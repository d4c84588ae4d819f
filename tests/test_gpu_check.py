"""bench/gpu_check.py, the GPU check of issue 34, where there is no GPU: its CPU dry run writes the per-depth
table, the backbone latency lines and finite training losses; a failing step is reported and the later ones run;
and the wheels bench/gpu_wheels.sh carries cover everything the check imports that the GPU machine lacks."""
import glob
import importlib.metadata
import math
import os
import os.path as osp
import re
import subprocess
import sys
import zipfile

import pytest
from packaging.requirements import Requirement

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CHECK = osp.join(ROOT, 'bench', 'gpu_check.py')
# The Python packages of the GPU machine's image, as its description lists them (/work/.library/device/KINDS.md,
# "Python packages already there", read on such a machine 2026-11-17). Its cv2 is opencv-python-headless.
PREINSTALLED = set('''
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin
jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax
llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack
multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro
nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft
nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py
nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec
patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11
py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock
pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors
scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools
shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server
tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric
torchmetrics torchvision tqdm transformers treescope triton typer typing-extensions typing-inspect urllib3
uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
'''.split())
# another distribution of the same import name; modelindex, which mmpretrain requires, is an alias of model-index
SAME_MODULES = {'opencv-python': 'opencv-python-headless', 'modelindex': 'model-index'}


def _norm(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def _carried():
    """{name: pinned version} of bench/gpu_wheels.txt, bare names pinned by requirements/constraints-cpu.txt."""
    pins = {}
    for line in open(osp.join(ROOT, 'requirements', 'constraints-cpu.txt')):
        if '==' in line and not line.startswith('#'):
            name, version = line.split('#')[0].strip().split('==')
            pins[_norm(name)] = version
    carried = {}
    for line in open(osp.join(ROOT, 'bench', 'gpu_wheels.txt')):
        line = line.split('#')[0].strip()
        if line:
            name, _, version = line.partition('==')
            carried[_norm(name)] = version or pins.get(_norm(name))
    return carried


def _covered(dist):
    dist = SAME_MODULES.get(_norm(dist), _norm(dist))
    return dist in PREINSTALLED or dist in _carried() or dist == 'mmadn'  # mmadn: the working tree itself


@pytest.fixture(scope='module')
def dry_run(tmp_path_factory):
    base = tmp_path_factory.mktemp('gpu_check')
    out, work = base / 'out', base / 'work'
    proc = subprocess.run([sys.executable, CHECK, '--dry-run', '--record-imports', '--out-dir', str(out),
                           '--work-dir', str(work)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    results = (out / 'gpu_check.md').read_text() if (out / 'gpu_check.md').exists() else ''
    return proc, results, work


def _section(results, step):
    match = re.search(rf'^## {step}: (\S+)\n(.*?)(?=^## \w+: |\Z)', results, flags=re.M | re.S)
    assert match, f'no section for step {step} in:\n{results}'
    return match.group(1), match.group(2)


@pytest.mark.slow
def test_dry_run_writes_the_depth_table_backbone_ratios_and_finite_losses(dry_run):
    proc, results, _ = dry_run
    assert proc.returncode == 0, proc.stdout + proc.stderr + results
    for step in ('install', 'build'):
        assert _section(results, step)[0] == 'skipped'
    for step in ('env', 'backbone', 'train', 'subnets'):
        assert _section(results, step)[0] == 'ok', results

    _, subnets = _section(results, 'subnets')
    rows = re.findall(r'^\| ([TF]{4}) \|', subnets, flags=re.M)
    assert len(rows) == 16 and len(set(rows)) == 16, subnets
    assert '--device cpu' in subnets and '16 of 16 depths measured' in subnets

    _, backbone = _section(results, 'backbone')
    for batch in (1, 8):
        line = re.search(rf'^- batch {batch}: base-net \(TTTT\) ([\d.]+) ms / super-net \(FFFF\) ([\d.]+) ms = latency '
                         r'ratio ([\d.]+) against FLOPs ratio ([\d.]+)', backbone, flags=re.M)
        assert line, backbone
        base_ms, super_ms, latency, flops = map(float, line.groups())
        assert base_ms > 0 and super_ms > 0 and latency > 0
        assert abs(flops - 0.626) < 0.005  # the base-net's FLOPs ratio, which the GPU figure is held against

    _, train = _section(results, 'train')
    header = re.search(r'^\| iter \| (.*) \|$', train, flags=re.M).group(1).split(' | ')
    values = [line.split(' | ')[1:] for line in re.findall(r'^\| \d+ \| .* \|$', train, flags=re.M)]
    assert len(values) == 2 and all(len(v) == len(header) for v in values), train
    numbers = [float(x.strip(' |')) for v in values for x in v]
    assert all(math.isfinite(x) for x in numbers)
    kl = [float(v[i].strip(' |')) for v in values for i, key in enumerate(header) if 'kl' in key]
    assert kl and any(x > 0 for x in kl), train  # base- and super-net differ: Algorithm 1's KL terms are exercised
    assert 'losses finite: yes' in train


@pytest.mark.slow
def test_carried_wheels_cover_every_module_the_dry_run_imported(dry_run):
    """What each step's processes imported (PYTHONPROFILEIMPORTTIME lines in their logs), by distribution: each is
    on the GPU machine's image or in bench/gpu_wheels.txt."""
    _, _, work = dry_run
    tops = set()
    for log in glob.glob(str(work / 'logs' / '*.log')):
        for line in open(log, errors='replace'):
            if line.startswith('import time:') and '|' in line:
                tops.add(line.rsplit('|', 1)[1].strip().split('.')[0])
    assert {'mmdet', 'mmengine', 'mmcv', 'pycocotools'} <= tops
    owners = importlib.metadata.packages_distributions()
    missing = {}
    for top in tops - set(sys.stdlib_module_names):
        for dist in owners.get(top, ()):
            location = str(importlib.metadata.distribution(dist).locate_file(''))
            if 'setuptools/_vendor' in location.replace(os.sep, '/'):
                continue  # pkg_resources' vendored packages come with the carried setuptools
            if not _covered(dist):
                missing.setdefault(dist, []).append(top)
    assert not missing, f'imported by the check, neither on the GPU machine nor carried: {missing}'


@pytest.mark.slow
def test_failing_step_is_reported_and_later_steps_still_run(tmp_path):
    empty = tmp_path / 'no_wheels'
    empty.mkdir()
    proc = subprocess.run([sys.executable, CHECK, '--steps', 'install', 'env', '--wheels', str(empty),
                           '--site', str(tmp_path / 'site'), '--out-dir', str(tmp_path / 'out'), '--work-dir',
                           str(tmp_path / 'work')], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES=''))
    results = (tmp_path / 'out' / 'gpu_check.md').read_text()
    assert proc.returncode == 1
    status, install = _section(results, 'install')
    assert status == 'FAILED' and 'bench/gpu_wheels.sh' in install
    assert _section(results, 'env')[0] == 'ok', results
    assert '| install | FAILED |' in results and '| env | ok |' in results


def test_wheel_list_is_pinned_as_the_cpu_setup_and_complete():
    """Every carried package is pinned to the version this environment runs (so both machines run the same
    OpenMMLab code); where .whl/ has been filled, it holds one file of each and their requirements are covered."""
    carried = _carried()
    assert {'mmcv', 'mmengine', 'mmdet', 'mmpretrain', 'pycocotools'} <= set(carried)
    for name, version in carried.items():
        assert version, f'{name} has no pin'
        assert importlib.metadata.version(name) == version, name
    files = glob.glob(osp.join(ROOT, '.whl', '*'))
    if not files:
        pytest.skip('.whl/ is empty here: bash bench/gpu_wheels.sh fills it (needs the package index)')
    names = [_norm(re.split(r'-\d', osp.basename(f))[0]) for f in files]
    assert sorted(names) == sorted(carried), 'one file per entry of bench/gpu_wheels.txt; rerun bench/gpu_wheels.sh'
    assert any(f.endswith('mmcv-2.1.0.tar.gz') for f in files)  # built there, for that GPU
    environment = {'python_version': '3.12', 'python_full_version': '3.12.3', 'sys_platform': 'linux',
                   'platform_machine': 'x86_64', 'implementation_name': 'cpython', 'extra': ''}
    for wheel in (f for f in files if f.endswith('.whl')):
        with zipfile.ZipFile(wheel) as archive:
            metadata = next(n for n in archive.namelist() if n.endswith('.dist-info/METADATA'))
            lines = archive.read(metadata).decode().splitlines()
        for line in lines:
            if line.startswith('Requires-Dist:'):
                req = Requirement(line.split(':', 1)[1].strip())
                if req.marker is None or req.marker.evaluate(environment):
                    assert _covered(req.name), f'{osp.basename(wheel)} requires {req.name}, neither there nor carried'
