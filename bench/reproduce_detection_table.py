"""The ADN paper's detection table (Mask R-CNN, super-net / base-net, ADN against individual networks), reproduced
at small scale on the embedded generated data with the demo's recipe (scripts/demo.sh).

    python bench/reproduce_detection_table.py [--seeds 0 1] [--work-dir work_dirs/repro] [--out FILE.md]
        [--pretrain-cfg-options model.backbone.zero_init_residual=True]   (e.g. the earlier demo pretraining)
        [--detectors adn --det-cfg-options "custom_hooks.0.features.neck=[spatial,pooled]" --tag pooled]
                                         (a variant of some detectors, beside the others: det_adn-pooled/)
        [--work-dir work_dirs/repro_r34 --backbone-options depth=34]
                                         (another backbone for every run: pretraining, detection, measurement)

The demo's preset of tools/analysis_tools/compare_recipes.py (which takes any detection config and COCO-format
data set; every argument of it works here too): the detection config configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py
on data/synthetic_coco, pretraining with configs/demo/resnet18_adn_shapes_cls.py on data/synthetic_crops (crops of
scenes of the same kind, tools/misc/make_synthetic_crops.py; both sets generated when missing), the ablation
detector adn_no_fpn_kl included, seeds 0 and 1, runs in work_dirs/repro/. Per seed:
  pretraining   adn / plain / base: ResNet-18-ADN with Algorithm 1, the ordinary ResNet-18, the base depth alone
  detection     adn (with ADNDistillHook), individual (plain), individual_base (skip TTTT), adn_no_fpn_kl (no hook)
Prints (and with --out writes) the table: mean and spread (min-max) over seeds; the per-seed figures go to
work_dirs/repro/comparison.json. Not part of CI: about 45 minutes per seed on 2 CPU cores.
"""
import importlib.util
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from mmadn.analysis.recipe_comparison import DETECTORS, run_python  # noqa: E402

DEMO_DATA = (('data/synthetic_coco/annotations/instances_val2017.json', 'tools/misc/make_synthetic_coco.py'),
             ('data/synthetic_crops/val', 'tools/misc/make_synthetic_crops.py'))
PRESET = ['configs/demo/mask_rcnn_r18_adn_fpn_synthetic.py', '--cls-config', 'configs/demo/resnet18_adn_shapes_cls.py',
          '--crops', 'data/synthetic_crops', '--work-dir', osp.join(ROOT, 'work_dirs', 'repro'), '--seeds', '0', '1',
          '--detectors', *DETECTORS]


def main(argv=None):
    for path, tool in DEMO_DATA:
        if not osp.exists(osp.join(ROOT, path)):
            run_python([tool])
    spec = importlib.util.spec_from_file_location('compare_recipes',
                                                  osp.join(ROOT, 'tools', 'analysis_tools', 'compare_recipes.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(PRESET + list(sys.argv[1:] if argv is None else argv))  # later arguments win: the user's


if __name__ == '__main__':
    main()
