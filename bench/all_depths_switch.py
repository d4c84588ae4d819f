"""What switching depth costs in a trained detector's all-depths ONNX model, on real images (issue 32: < 1 ms, no
new weights allocated), as the deadline demo switches it (tools/deployment/deadline_demo.py --backend onnxruntime).

    python bench/all_depths_switch.py ALL_DEPTHS.onnx IMAGE [IMAGE ...] [--runs 20] [--rounds 5] [--out FILE]

For each image: ``mmadn.deploy.all_depths.switch_cost`` with the super-net and the base-net in turn against each
repeated, and the same with the super-net in both slots (what the machine's noise alone reads as a "switch");
then ``session_footprint``: resident memory after a run at each depth and after two more rounds of both (equal if a
switch allocates nothing). One intra-op thread. bench/all_depths_onnx.py measures the same on a randomly
initialised detector beside one file per depth.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mmadn.deploy.all_depths import session_footprint, skip_tensor, switch_cost  # noqa: E402
from mmadn.deploy.runtime import make_session  # noqa: E402


def feed_of(path, image_path):
    """The model's ``image`` and ``image_shape`` for an image of the model's input size (as the demo's val images)."""
    import onnx
    meta = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    height, width = (int(v) for v in meta['input_shape'].split(','))
    image = cv2.imread(image_path, cv2.IMREAD_COLOR)
    if image.shape[:2] != (height, width):
        raise ValueError(f'{image_path} is {image.shape[:2]}, the model takes {height}x{width}')
    return (np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32),
            np.array([height, width], np.float32), int(meta['num_skip_flags']))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('model', help='an all-depths ONNX model (export_detector.py --all-depths)')
    parser.add_argument('images', nargs='+')
    parser.add_argument('--runs', type=int, default=20)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--out')
    args = parser.parse_args(argv)
    run = make_session(args.model, 'onnxruntime', threads=1)
    results = []
    for image_path in args.images:
        image, shape, flags = feed_of(args.model, image_path)
        super_net, base_net = skip_tensor('F' * flags).numpy(), skip_tensor('T' * flags).numpy()
        detections = {name: int(run(image, shape, skip)[3][0]) for name, skip in (('super', super_net),
                                                                                  ('base', base_net))}
        switching = switch_cost(run, [(image, shape, super_net), (image, shape, base_net)], args.runs, args.rounds)
        noise = switch_cost(run, [(image, shape, super_net), (image, shape, super_net)], args.runs, args.rounds)
        results.append(dict(image=image_path, detections=detections, switch_ms=switching['switch_ms'],
                            noise_ms=noise['switch_ms'], repeated_ms=switching['repeated_ms'],
                            alternating_ms=switching['alternating_ms']))
        print(f'{osp.basename(image_path)}: detections super {detections["super"]} / base {detections["base"]}; '
              f'switch {switching["switch_ms"]:+.3f} ms (same depth in both slots: {noise["switch_ms"]:+.3f} ms); '
              f'repeated {[round(t, 2) for t in switching["repeated_ms"]]}, alternating '
              f'{[round(t, 2) for t in switching["alternating_ms"]]}')
    image, shape, flags = feed_of(args.model, args.images[0])
    memory = session_footprint([args.model], [(0, dict(image=image, image_shape=shape, skip=skip_tensor(s).numpy()))
                                              for s in ('F' * flags, 'T' * flags)])
    print(f'resident MiB: loaded {memory["loaded_mib"]:.2f}, after one run per depth {memory["ran_mib"]:.2f}, after '
          f'two more rounds of switching {memory["again_mib"]:.2f}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(model=args.model, runs=args.runs, rounds=args.rounds, images=results, memory_mib=memory),
                      f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
