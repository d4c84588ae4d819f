"""The GPU check of issue 34, prepared to run in one go on a single-GPU machine without network access.

On the GPU machine (Python 3.12 with torch and nvcc installed; the packages it lacks carried as wheels in the
git-ignored .whl/, made beforehand with ``bash bench/gpu_wheels.sh`` where pip's index is reachable):

    bash bench/gpu_check.sh [--out-dir DIR]      # about 10 minutes; writes DIR/gpu_check.md ($OUT if set)

Here, without a GPU, the same steps on the CPU at toy sizes (about a minute; tests/test_gpu_check.py runs it):

    .venv/bin/python bench/gpu_check.py --dry-run --out-dir work_dirs/gpu_check_dry

Steps, each in its own process with a time limit, so that a failure or a hang is written into the results file
(with the end of its log) and the later steps still run:
  install   the carried wheels into --site (put first on PYTHONPATH for every later step);
  build     mmcv 2.1.0's ops from its carried source for this GPU's architecture only (mmcv publishes no wheel
            for this torch); skipped when ``mmcv.ops`` already runs on CUDA;
  env       torch, CUDA, the GPU, the OpenMMLab versions, and any module of the stack that does not import;
  backbone  ResNet-50-ADN base / super latency at batch 1 and 8 against the FLOPs ratio (bench/bench_adn.py's
            section 1, every depth, timed round-robin);
  train     a few iterations of the demo detector (configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py, Algorithm 1
            through ADNDistillHook) with --amp on generated data (tools/misc/make_synthetic_coco.py): losses finite;
  subnets   tools/analysis_tools/benchmark_subnets.py on the R50-ADN Mask R-CNN, all 16 depths, random weights, on
            a generated COCO-format val set at COCO's test size (1333 x 800): latency, FLOPs, memory per depth.
The cheap steps come before the long benchmark, so the time limit (--time-limit) cuts the least valuable part.
The results file is rewritten after every step: a run stopped from outside keeps what it measured.

--dry-run: the same steps with --device cpu, the environment's mmcv as it is (no install, no build), no --amp
(refused on CPU), tiny inputs and few iterations. Its figures say nothing about speed; it checks the plumbing.
What the figures are (random weights, generated images, no score threshold) and are not: docs/gpu_check.md.
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
STEPS = ('install', 'build', 'env', 'backbone', 'train', 'subnets')
DETECTOR_CONFIG = 'configs/mask_rcnn_r50_adn_fpn_1x_coco.py'
DEMO_CONFIG = 'configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py'
FLOPS_RATIO_TARGET = 0.626  # ResNet-50-ADN base / super FLOPs (issue 34); the latency ratio should be within 0.02
# What the stack imports (mmadn's tools and what their configs load), for the env step and the wheel-list test.
STACK_MODULES = ('mmadn', 'mmcv.ops', 'mmengine.runner', 'mmdet.apis', 'mmdet.models', 'mmdet.datasets',
                 'mmdet.evaluation', 'mmdet.engine', 'mmdet.visualization', 'mmpretrain.models',
                 'mmpretrain.datasets', 'mmpretrain.evaluation', 'pycocotools.coco', 'pycocotools.cocoeval',
                 'pkg_resources')
# The channel settings the demo detector slims to 64 (configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py).
SLIM_HEADS = ('model.neck.out_channels', 'model.rpn_head.in_channels', 'model.rpn_head.feat_channels',
              'model.roi_head.bbox_roi_extractor.out_channels', 'model.roi_head.bbox_head.in_channels',
              'model.roi_head.mask_roi_extractor.out_channels', 'model.roi_head.mask_head.in_channels',
              'model.roi_head.mask_head.conv_out_channels')


@dataclass
class Sizes:
    """What one mode runs: COCO's test size and real iteration counts on the GPU, toys on the CPU."""
    device: str
    amp: bool
    det_input: tuple  # (W, H) of the generated val images; the test pipeline resizes to 1333 x 800 on the GPU
    det_val_images: int
    runs: int
    warmup: int
    backbone_input: tuple  # (H, W)
    backbone_batches: tuple
    backbone_runs: int
    train_iters: int
    train_images: int
    time_limits: dict = field(default_factory=dict)


GPU = Sizes('cuda', True, (1333, 800), 2, 10, 3, (800, 1333), (1, 8), 10, 10, 16,
            dict(install=120, build=420, env=90, backbone=120, train=180, subnets=300))
DRY = Sizes('cpu', False, (128, 96), 1, 1, 0, (32, 32), (1, 8), 1, 2, 4,
            dict(install=60, build=60, env=90, backbone=60, train=120, subnets=180))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out-dir', default=os.environ.get('OUT') or osp.join('work_dirs', 'gpu_check'),
                        help='where gpu_check.md is written (default: $OUT if set, else work_dirs/gpu_check)')
    parser.add_argument('--work-dir', help='generated data, checkpoints, logs (default: work_dirs/gpu_check_work); '
                        'kept out of --out-dir, whose files may be copied back from the machine')
    parser.add_argument('--wheels', default=osp.join(ROOT, '.whl'), help='the carried wheels and mmcv source')
    parser.add_argument('--site', default='/tmp/site', help='where the wheels are installed (pip --target)')
    parser.add_argument('--dry-run', action='store_true', help='CPU, tiny sizes, no install / build / --amp')
    parser.add_argument('--steps', nargs='+', choices=STEPS, default=list(STEPS), help='a subset, e.g. to rerun')
    parser.add_argument('--time-limit', type=float, default=560,
                        help='seconds for the whole check; each step gets the rest, at most its own limit')
    parser.add_argument('--record-imports', action='store_true',
                        help='log every module each step imports (PYTHONPROFILEIMPORTTIME), for the test that the '
                        'carried wheels cover them')
    parser.add_argument('--helper', help=argparse.SUPPRESS)  # a step's code that needs the stack, run in a child
    parser.add_argument('--helper-args', default='{}', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


class Check:
    """Runs the steps and keeps the results file up to date."""

    def __init__(self, args):
        self.args = args
        self.sizes = DRY if args.dry_run else GPU
        self.out_dir = osp.abspath(args.out_dir)
        self.work = osp.abspath(args.work_dir or osp.join(ROOT, 'work_dirs', 'gpu_check_work'))
        self.results = osp.join(self.out_dir, 'gpu_check.md')
        self.deadline = time.monotonic() + args.time_limit
        self.started = time.strftime('%Y-%m-%d %H:%M:%S')
        self.sections = []  # (step, status, seconds, markdown body)
        self.env = dict(os.environ, PYTHONUNBUFFERED='1')
        paths = [ROOT] + ([] if args.dry_run else [args.site])
        self.env['PYTHONPATH'] = os.pathsep.join([p for p in paths[::-1]] + [self.env.get('PYTHONPATH', '')]).strip(
            os.pathsep)
        if args.dry_run:
            self.env['CUDA_VISIBLE_DEVICES'] = ''  # the CPU even where a GPU is present
        if args.record_imports:
            self.env['PYTHONPROFILEIMPORTTIME'] = '1'  # 'import time: ... | module' lines in the step logs
        os.makedirs(self.out_dir, exist_ok=True)
        os.makedirs(osp.join(self.work, 'logs'), exist_ok=True)

    # -- running -------------------------------------------------------------------------------------------------
    def run(self, step, cmd, limit=None, env=None, log_name=None):
        """Run ``cmd`` in the repository root with the step's time left; returns (rc, output). rc is None when
        the time ran out (the process group is killed)."""
        log = osp.join(self.work, 'logs', f'{log_name or step}.log')
        timeout = max(1.0, min(limit or self.sizes.time_limits[step], self.deadline - time.monotonic()))
        with open(log, 'a') as f:
            f.write(f'$ {" ".join(cmd)}\n')
            f.flush()
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env or self.env, stdout=f, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
                rc = None
                f.write(f'\n[gpu_check] stopped after {timeout:.0f} s (time limit)\n')
        with open(log) as f:
            return rc, f.read()

    def python(self, step, *args, **kwargs):
        return self.run(step, [sys.executable, *args], **kwargs)

    def helper(self, step, name, **kwargs):
        """Run ``helper_<name>`` of this file in a child process that sees the installed stack; its stdout is the
        step's Markdown (the log keeps the rest)."""
        out = osp.join(self.work, f'{name}.md')
        if osp.exists(out):
            os.remove(out)
        rc, log = self.python(step, osp.abspath(__file__), '--helper', name,
                              '--helper-args', json.dumps(dict(kwargs, out=out)))
        body = open(out).read() if osp.exists(out) else ''
        return rc, body, log

    def time_left(self):
        return self.deadline - time.monotonic()

    def record(self, step, status, seconds, body):
        self.sections.append((step, status, seconds, body.rstrip() + '\n'))
        self.write()

    def write(self):
        mode = 'dry run on the CPU (toy sizes: checks the plumbing, says nothing about speed)' \
            if self.args.dry_run else f'{self.sizes.device}'
        lines = [f'# mmadn GPU check (issue 34): {mode}', '',
                 f'Started {self.started} on {platform.node()} ({platform.machine()}, Python '
                 f'{platform.python_version()}), `{" ".join(sys.argv)}`.', '',
                 '| step | status | seconds |', '|---|---|---|']
        lines += [f'| {step} | {status} | {seconds:.0f} |' for step, status, seconds, _ in self.sections]
        for step, status, _, body in self.sections:
            lines += ['', f'## {step}: {status}', '', body]
        tmp = self.results + '.tmp'
        with open(tmp, 'w') as f:
            f.write('\n'.join(lines))
        os.replace(tmp, self.results)

    def main(self):
        for step in STEPS:
            if step not in self.args.steps:
                continue
            start = time.monotonic()
            if self.time_left() < 5:
                self.record(step, 'NOT RUN', 0, f'The check\'s time limit ({self.args.time_limit:.0f} s) was spent '
                            'before this step.')
                continue
            try:
                status, body = getattr(self, f'step_{step}')()
            except Exception as err:  # a bug of this script: say so and go on
                status, body = 'FAILED', f'gpu_check.py raised {type(err).__name__}: {err}'
            self.record(step, status, time.monotonic() - start, body)
            print(f'[gpu_check] {step}: {status} ({time.monotonic() - start:.0f} s)', flush=True)
        print(f'[gpu_check] results: {self.results}')
        return 0 if all(s in ('ok', 'skipped') for _, s, _, _ in self.sections) else 1

    # -- steps -----------------------------------------------------------------------------------------------------
    def step_install(self):
        if self.args.dry_run:
            return 'skipped', f'Dry run: the running environment\'s packages are used ({sys.executable}).'
        wheels = sorted(glob.glob(osp.join(self.args.wheels, '*.whl')))
        if not wheels:
            return 'FAILED', (f'No wheels in {self.args.wheels}: make them with `bash bench/gpu_wheels.sh` where '
                              'pip\'s index is reachable, and carry the folder.')
        rc, log = self.python('install', '-m', 'pip', 'install', '-q', '--no-index', '--no-deps', '--no-compile',
                              '--no-cache-dir', '--upgrade', '--target', self.args.site, *wheels)
        names = ', '.join(osp.basename(w).split('-')[0] + ' ' + osp.basename(w).split('-')[1] for w in wheels)
        if rc != 0:
            return 'FAILED', _failure(rc, log)
        return 'ok', f'Installed into {self.args.site} (first on PYTHONPATH from here on): {names}.'

    def step_build(self):
        if self.args.dry_run:
            return 'skipped', 'Dry run: no build; the environment\'s mmcv (CPU ops) is used.'
        probe = [sys.executable, '-c', MMCV_CUDA_PROBE]
        rc, log = self.run('build', probe, limit=60, log_name='build_probe_before')
        if rc == 0:
            return 'skipped', f'`mmcv.ops` already runs on CUDA: {_last_line(log)}'
        sources = glob.glob(osp.join(self.args.wheels, 'mmcv-*.tar.gz'))
        if not sources:
            return 'FAILED', f'No mmcv source distribution in {self.args.wheels} (bash bench/gpu_wheels.sh).'
        arch = os.environ.get('TORCH_CUDA_ARCH_LIST')  # set: e.g. to try the build where there is no GPU
        if not arch:
            rc, log = self.python('build', '-c', 'import torch; print("%d.%d" % torch.cuda.get_device_capability())',
                                  limit=60, log_name='build_arch')
            if rc != 0:
                return 'FAILED', 'Could not read the GPU\'s compute capability:\n' + _failure(rc, log)
            arch = _last_line(log)
        src_root = osp.join(self.work, 'mmcv_src')
        shutil.rmtree(src_root, ignore_errors=True)
        with tarfile.open(sources[0]) as tar:
            tar.extractall(src_root, filter='data')
        src = glob.glob(osp.join(src_root, 'mmcv-*'))[0]
        setup_py = osp.join(src, 'setup.py')
        with open(setup_py) as f:  # torch >= 2.10's headers need C++20; mmcv 2.1.0 asks for 14 / 17
            text = re.sub(r'-std=c\+\+1[47]', '-std=c++20', f.read())
        with open(setup_py, 'w') as f:
            f.write(text)
        jobs = os.environ.get('MAX_JOBS') or str(os.cpu_count() or 8)
        env = dict(self.env, MMCV_WITH_OPS='1', FORCE_CUDA='1', MAX_JOBS=jobs, TORCH_CUDA_ARCH_LIST=arch)
        extra = _missing_cuda_headers()
        if extra:  # torch's CUDA headers include cuSPARSE / cuBLAS ones that pip's nvidia-* packages hold
            env['CPATH'] = os.pathsep.join(extra + [env.get('CPATH', '')]).strip(os.pathsep)
        wheel_dir = osp.join(self.work, 'mmcv_wheel')
        shutil.rmtree(wheel_dir, ignore_errors=True)
        start = time.monotonic()
        # -v: every compile in the log, so a build stopped at the time limit shows how far it got
        rc, log = self.python('build', '-m', 'pip', 'wheel', '-v', '--no-deps', '--no-build-isolation', '--no-index',
                              '-w', wheel_dir, src, env=env)
        seconds = time.monotonic() - start
        built = glob.glob(osp.join(wheel_dir, 'mmcv-*.whl'))
        if rc != 0 or not built:
            units = re.findall(r'^\s*\[(\d+)/(\d+)\]', log, flags=re.M)  # ninja's progress
            progress = f', {units[-1][0]} of {units[-1][1]} compile units started' if units else ''
            return 'FAILED', (f'Building mmcv\'s ops for sm_{arch.replace(".", "")} failed after {seconds:.0f} s '
                              f'(MAX_JOBS={env["MAX_JOBS"]}{progress}).\n' + _failure(rc, log, 40))
        rc, log = self.python('build', '-m', 'pip', 'install', '-q', '--no-index', '--no-deps', '--no-compile',
                              '--upgrade', '--target', self.args.site, built[0], limit=120)
        if rc != 0:
            return 'FAILED', 'The built mmcv wheel did not install:\n' + _failure(rc, log)
        rc, log = self.run('build', probe, limit=60, log_name='build_probe_after')
        body = (f'Built mmcv\'s ops for compute capability {arch} only in **{seconds:.0f} s** '
                f'(MAX_JOBS={env["MAX_JOBS"]}{", CPATH + " + ", ".join(extra) if extra else ""}); wheel '
                f'{osp.basename(built[0])}, {osp.getsize(built[0]) / 2**20:.1f} MiB.')
        if rc != 0:
            return 'FAILED', body + '\n\n`mmcv.ops` does not run on CUDA after the build:\n' + _failure(rc, log)
        return 'ok', body + f'\n\n{_last_line(log)}'

    def step_env(self):
        rc, body, log = self.helper('env', 'env')
        if rc != 0 or not body:
            return 'FAILED', body + _failure(rc, log)
        return ('ok' if 'does not import' not in body else 'FAILED'), body

    def step_backbone(self):
        s = self.sizes
        rc, body, log = self.helper('backbone', 'backbone', device=s.device, size=s.backbone_input,
                                    batches=s.backbone_batches, runs=s.backbone_runs)
        if rc != 0:
            return 'FAILED', body + _failure(rc, log)
        return 'ok', body

    def step_train(self):
        s = self.sizes
        data = osp.join(self.work, 'synthetic_coco')
        shutil.rmtree(data, ignore_errors=True)
        rc, log = self.python('train', 'tools/misc/make_synthetic_coco.py', data, '--num-train', str(s.train_images),
                              '--num-val', '2', '--seed', '0', limit=60, log_name='train_data')
        if rc != 0:
            return 'FAILED', 'Generating the demo data failed:\n' + _failure(rc, log)
        work_dir = osp.join(self.work, 'train')
        shutil.rmtree(work_dir, ignore_errors=True)
        ann = osp.join(data, 'annotations', 'instances_val2017.json')
        options = [
            'model.backbone.init_cfg=None',  # the demo's pretrained backbone is made by scripts/demo.sh, not here
            # residual branches that start as identities make base- and super-net equal at first and the KL terms
            # zero: these must differ for the check to exercise Algorithm 1's KL terms under autocast
            'model.backbone.zero_init_residual=False',
            f'train_dataloader.dataset.data_root={data}/', f'val_dataloader.dataset.data_root={data}/',
            f'test_dataloader.dataset.data_root={data}/', f'val_evaluator.ann_file={ann}',
            f'test_evaluator.ann_file={ann}', f'train_cfg.max_iters={s.train_iters}',
            f'train_cfg.val_interval={s.train_iters}', 'default_hooks.logger.interval=1',
            'default_hooks.checkpoint=None']
        cmd = ['tools/train.py', DEMO_CONFIG, '--work-dir', work_dir] + (['--amp'] if s.amp else []) + \
            ['--cfg-options'] + options
        rc, log = self.python('train', *cmd)
        scalars = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
        body, finite = _loss_table(scalars[-1] if scalars else None, s.train_iters)
        precision = '--amp: AmpOptimWrapper, dynamic loss scale' if s.amp else 'float32, no --amp (refused on CPU)'
        head = (f'{s.train_iters} iterations of {DEMO_CONFIG} ({precision}), Algorithm 1 (ADNDistillHook), random '
                f'initialisation (zero_init_residual=False), {s.train_images} generated training images, batch 4, '
                f'device {s.device}.\n\n')
        if rc != 0:
            return 'FAILED', head + body + '\n' + _failure(rc, log)
        return ('ok' if finite else 'FAILED'), head + body

    def step_subnets(self):
        s = self.sizes
        data, ckpt = osp.join(self.work, 'coco'), osp.join(self.work, 'mask_rcnn_r50_adn_random.pth')
        # the CPU gets the demo's slim heads (its FPN and RPN at 256 channels take it most of a prediction)
        model_options = [f'{key}=64' for key in SLIM_HEADS] if self.args.dry_run else []
        rc, inputs_md, log = self.helper('subnets', 'subnet_inputs', root=data, checkpoint=ckpt,
                                         size=s.det_input, num_val=s.det_val_images, model_options=model_options)
        if rc != 0:
            return 'FAILED', 'Making the val set and the random-weights checkpoint failed:\n' + _failure(rc, log)
        out_dir = osp.join(self.work, 'subnets')
        shutil.rmtree(out_dir, ignore_errors=True)
        width, height = s.det_input
        options = [
            'model.backbone.init_cfg=None', *model_options,
            # random weights score every class about 1/81, under mmdet's 0.05: with no threshold the heads keep
            # their 100 detections per image, as a trained model's usually nearly does, so the mask head is timed
            'model.test_cfg.rcnn.score_thr=0.0',
            f'test_dataloader.dataset.data_root={data}/', f'test_evaluator.ann_file={data}/annotations/'
            'instances_val2017.json']
        if self.args.dry_run:  # the config's Resize is to 1333 x 800; the toy images keep their toy size, and
            # the CPU gets fewer proposals and detections (scoring 1000 proposals x 80 classes takes it seconds)
            options += [f'test_dataloader.dataset.pipeline.1.scale=({width},{height})',
                        'model.test_cfg.rpn.max_per_img=50', 'model.test_cfg.rcnn.max_per_img=2']
        cmd = ['tools/analysis_tools/benchmark_subnets.py', DETECTOR_CONFIG, ckpt, '--device', s.device,
               '--out-dir', out_dir, '--runs', str(s.runs), '--warmup', str(s.warmup)] + \
            (['--memory-format', 'contiguous'] if self.args.dry_run else []) + ['--cfg-options'] + options
        rc, log = self.python('subnets', *cmd)
        table_path = osp.join(out_dir, 'subnets.md')
        table = open(table_path).read() if osp.exists(table_path) else ''
        body = inputs_md + f'\n`python {" ".join(cmd)}`\n\n' + table
        rows = len(re.findall(r'^\| [TF]{4} \|', table, flags=re.M))
        if rc != 0:
            return 'FAILED', body + f'\n{rows} of 16 depths measured.\n' + _failure(rc, log)
        return ('ok' if rows == 16 else 'FAILED'), body + f'\n{rows} of 16 depths measured.'


# -- helpers run in child processes (they import the stack) ---------------------------------------------------------
MMCV_CUDA_PROBE = '''
import torch, mmcv
from mmcv.ops import RoIAlign, get_compiling_cuda_version, nms
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]], device='cuda')
kept = nms(boxes, torch.tensor([0.9, 0.8, 0.7], device='cuda'), 0.5)[1]
assert kept.tolist() == [0, 2], kept
feats = RoIAlign((7, 7), 1.0)(torch.rand(1, 8, 32, 32, device='cuda'), torch.tensor([[0., 1., 1., 20., 20.]],
                                                                                     device='cuda'))
assert feats.shape == (1, 8, 7, 7) and torch.isfinite(feats).all()
print(f'mmcv {mmcv.__version__}: nms and RoIAlign ran on {torch.cuda.get_device_name()} '
      f'(ops compiled with CUDA {get_compiling_cuda_version()})')
'''


def helper_env(out):
    import importlib
    import importlib.metadata
    import torch
    lines = ['| | |', '|---|---|', f'| python | {sys.version.split()[0]} ({sys.executable}) |',
             f'| torch | {torch.__version__} (CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}) |']
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        lines.append(f'| GPU | {props.name}, compute capability {props.major}.{props.minor}, '
                     f'{props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs |')
    else:
        lines.append('| GPU | none visible (CPU run) |')
    nvcc = shutil.which('nvcc')
    if nvcc:
        version = subprocess.run([nvcc, '--version'], capture_output=True, text=True).stdout.strip().splitlines()
        lines.append(f'| nvcc | {version[-1] if version else "?"} |')
    failures = []
    for name in ('numpy', 'mmcv', 'mmengine', 'mmdet', 'mmpretrain', 'pycocotools', 'setuptools'):
        try:
            module = importlib.import_module(name)
            version = getattr(module, '__version__', None) or importlib.metadata.version(name)
            lines.append(f'| {name} | {version} ({osp.dirname(module.__file__)}) |')
        except Exception as err:
            failures.append(f'{name}: {type(err).__name__}: {err}')
    try:
        from mmcv.ops import get_compiler_version, get_compiling_cuda_version
        lines.append(f'| mmcv ops | compiled with {get_compiler_version()}, CUDA {get_compiling_cuda_version()} |')
    except Exception as err:
        failures.append(f'mmcv.ops: {type(err).__name__}: {err}')
    found, broken = stack_distributions()
    failures += [f'{m}: {e}' for m, e in broken.items()]
    lines += ['', 'Distributions the stack imports: ' + ', '.join(sorted(found)) + '.']
    if failures:
        lines += ['', 'Modules of the stack that do not import:', ''] + [f'- {f}' for f in failures]
    _write(out, '\n'.join(lines))


def stack_distributions():
    """The distributions whose modules the stack loads (``STACK_MODULES`` with every mmdet / mmpretrain module
    registered and a detection config read), and the modules that failed to import."""
    import importlib
    import importlib.metadata
    broken = {}
    for name in STACK_MODULES:
        try:
            importlib.import_module(name)
        except Exception as err:
            broken[name] = f'{type(err).__name__}: {err}'
    try:
        from mmdet.utils import register_all_modules
        register_all_modules(init_default_scope=False)
        from mmpretrain.utils import register_all_modules as register_mmpretrain
        register_mmpretrain(init_default_scope=False)
        from mmadn.utils import load_config
        load_config(osp.join(ROOT, DETECTOR_CONFIG))  # mmdet:: bases are found through pkg_resources
    except Exception as err:
        broken['registering mmdet / mmpretrain, reading a config'] = f'{type(err).__name__}: {err}'
    owners = importlib.metadata.packages_distributions()
    found = {}
    for top in sorted({m.split('.')[0] for m in list(sys.modules)} - set(sys.stdlib_module_names)):
        for dist in owners.get(top, ()):
            found.setdefault(dist, []).append(top)
    return found, broken


def helper_backbone(out, device, size, batches, runs):
    import contextlib
    import io
    import torch
    sys.path.insert(0, ROOT)
    from bench.bench_adn import bench_backbone
    torch.manual_seed(0)
    lines, tables = [], []
    for batch in batches:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            figures = bench_backbone(tuple(size), runs, torch.contiguous_format, device, batch)
        (base_flops, base_ms), (super_flops, super_ms) = figures['TTTT'], figures['FFFF']
        latency, flops = base_ms / super_ms, base_flops / super_flops
        lines.append(f'- batch {batch}: base-net (TTTT) {base_ms:.2f} ms / super-net (FFFF) {super_ms:.2f} ms = '
                     f'latency ratio {latency:.3f} against FLOPs ratio {flops:.3f} (difference {latency - flops:+.3f};'
                     f' target: within 0.02 of {FLOPS_RATIO_TARGET})')
        tables.append(re.sub(r'^## ', '#### ', printed.getvalue().strip(), flags=re.M))  # under this step's ##
    head = (f'ResNet-50-ADN backbone (bench/bench_adn.py section 1), random weights, input {size[0]} x {size[1]} '
            f'(H x W), device {device}, median of {runs} round-robin runs after one warm-up, contiguous memory '
            'format.\n')
    _write(out, head + '\n' + '\n'.join(lines) + '\n\n' + '\n\n'.join(tables))


def helper_subnet_inputs(out, root, checkpoint, size, num_val, model_options):
    """A COCO-format val set of generated scenes (mmadn.datasets) under COCO's 80 category names, so that the
    config's CocoMetric runs unchanged (its AP is meaningless: random weights), and a checkpoint of the detector
    with mmdet's random initialisation (benchmark_subnets.py takes a checkpoint file; it has no random-weights
    mode)."""
    import logging
    import torch
    from mmdet.datasets import CocoDataset
    from mmengine.logging import MMLogger
    from mmengine.registry import DefaultScope
    import mmadn  # noqa: F401  registers the ADN modules
    from mmadn.datasets import make_coco_instances
    from mmadn.utils import load_config
    shutil.rmtree(root, ignore_errors=True)
    path = make_coco_instances(root, 1, num_val, tuple(size), seed=0)['val2017']
    with open(path) as f:
        coco = json.load(f)
    coco['categories'] = [dict(id=i + 1, name=name, supercategory='coco')
                          for i, name in enumerate(CocoDataset.METAINFO['classes'])]
    with open(path, 'w') as f:
        json.dump(coco, f)
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)  # parsed as benchmark_subnets.py does
    options = parser.parse_args(['--cfg-options', 'model.backbone.init_cfg=None', *model_options]).cfg_options
    cfg = load_config(osp.join(ROOT, DETECTOR_CONFIG), options)
    from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs one line per parameter
    torch.manual_seed(0)
    model.init_weights()
    logger.setLevel(level)
    torch.save(dict(state_dict=model.state_dict(), meta=dict(note='random weights (mmdet init), gpu_check.py')),
               checkpoint)
    _write(out, f'{DETECTOR_CONFIG} with random weights (mmdet\'s initialisation), on {num_val} generated '
           f'{size[0]} x {size[1]} images in COCO\'s format with its 80 category names (quality columns: '
           'meaningless), `model.test_cfg.rcnn.score_thr=0.0` so that the RoI heads keep their 100 detections per '
           'image as with trained weights (random ones score under mmdet\'s 0.05).\n')


def _write(path, text):
    with open(path, 'w') as f:
        f.write(text.rstrip() + '\n')


def _loss_table(scalars, iters):
    """The logged losses per iteration as Markdown, and whether all of them are finite (and there are some)."""
    if not scalars:
        return 'No scalars.json was written: no iteration was logged.\n', False
    with open(scalars) as f:
        records = [json.loads(line) for line in f if line.strip()]
    records = [r for r in records if 'loss' in r and 'iter' in r]
    if not records:
        return f'{scalars} holds no training losses.\n', False
    keys = ['loss'] + sorted({k for r in records for k in r if k.startswith(('loss_', 'base_loss_'))},
                             key=lambda k: (k.startswith('base_'), 'kl' in k, k))
    values = [r.get(k) for r in records for k in keys]
    finite = all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
    distilled = any('kl' in k for k in keys)
    lines = ['| iter | ' + ' | '.join(keys) + ' |', '|---|' + '---|' * len(keys)]
    lines += [f'| {r["iter"]} | ' + ' | '.join(_fmt(r.get(k)) for k in keys) + ' |' for r in records]
    lines += ['', f'losses finite: {"yes" if finite else "NO"} ({len(records)} of {iters} iterations logged; '
              f'Algorithm 1\'s KL terms {"present" if distilled else "MISSING"})']
    return '\n'.join(lines) + '\n', finite and distilled and len(records) == iters


def _fmt(value):
    return f'{value:.4g}' if isinstance(value, float) else str(value)


def _failure(rc, log, lines=30):
    what = 'stopped at its time limit' if rc is None else f'exit code {rc}'
    tail = '\n'.join([line for line in log.rstrip().splitlines() if not line.startswith('import time:')][-lines:])
    return f'\n{what}; the end of its log:\n\n```\n{tail}\n```\n'


def _last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ''


def _missing_cuda_headers():
    """Include folders of pip's nvidia-* packages, where the CUDA toolkit lacks headers that torch's CUDA headers
    include (cusparse.h, cublas_v2.h: not every nvcc installation has them)."""
    from torch.utils.cpp_extension import CUDA_HOME  # noqa: imported here: the parent needs no torch otherwise
    wanted = ('cusparse.h', 'cublas_v2.h', 'cusolverDn.h')
    if CUDA_HOME and all(osp.exists(osp.join(CUDA_HOME, 'include', h)) for h in wanted):
        return []
    dirs = []
    for site in sys.path:
        for include in sorted(glob.glob(osp.join(site, 'nvidia', '*', 'include'))):
            if any(osp.exists(osp.join(include, h)) for h in wanted) and include not in dirs:
                dirs.append(include)
    return dirs


def main(argv=None):
    args = parse_args(argv)
    if args.helper:
        globals()[f'helper_{args.helper.replace("-", "_")}'](**json.loads(args.helper_args))
        return 0
    return Check(args).main()


if __name__ == '__main__':
    sys.exit(main())
