"""mmadn.apis and the library the tools call: the shared arguments and their checks, the checked model and the
evaluation runner, the config without ADNDistillHook, checkpoint architecture detection, the generators'
command line, and the reports the tools write through the library."""
import argparse
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmadn.apis import (add_data_check_argument, add_launcher_arguments, add_model_arguments, at_least,
                        build_eval_runner, check_adn_model, check_checkpoint, check_device, export_local_rank,
                        parse_skips, remove_distill_hook)
from mmadn.engine import ADNDistillHook, distill_hooks, is_distill_hook

CLS_CONFIG = 'configs/demo/resnet18_adn_synthetic_cls.py'


def _parser(**kwargs):
    return add_model_arguments(argparse.ArgumentParser(prog='tool'), **kwargs)


# ------------------------------------------------------------------------------------------ the command line
def test_model_arguments_are_mmdets_flags():
    args = _parser(device=True).parse_args(['a.py', 'b.pth', '--cfg-options', 'model.backbone.skip=TTFF'])
    assert (args.config, args.checkpoint, args.cfg_options) == ('a.py', 'b.pth', {'model.backbone.skip': 'TTFF'})
    assert args.device == ('cuda' if torch.cuda.is_available() else 'cpu')
    optional = _parser(checkpoint='option').parse_args(['a.py'])
    assert optional.checkpoint is None and optional.cfg_options is None and not hasattr(optional, 'device')
    assert not hasattr(_parser(checkpoint=None).parse_args(['a.py']), 'checkpoint')
    with pytest.raises(ValueError, match='checkpoint='):
        _parser(checkpoint='first')


def test_launcher_and_data_check_arguments(monkeypatch):
    parser = add_data_check_argument(add_launcher_arguments(argparse.ArgumentParser()))
    args = parser.parse_args(['--launcher', 'pytorch', '--local-rank', '3', '--skip-data-check'])
    assert (args.launcher, args.local_rank, args.skip_data_check) == ('pytorch', 3, True)
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    export_local_rank(args)
    import os
    assert os.environ['LOCAL_RANK'] == '3'
    export_local_rank(argparse.Namespace(local_rank=5))  # torchrun's LOCAL_RANK wins
    assert os.environ['LOCAL_RANK'] == '3'


def test_argument_checks_end_as_parser_errors(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog='tool')
    parser.add_argument('--runs', type=at_least(1))
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(['--runs', '0'])
    assert exit_.value.code == 2 and '--runs: must be at least 1, got 0' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        check_checkpoint(parser, str(tmp_path / 'missing.pth'))
    assert f'checkpoint {tmp_path}/missing.pth does not exist' in capsys.readouterr().err
    (tmp_path / 'here.pth').write_bytes(b'')
    check_checkpoint(parser, str(tmp_path / 'here.pth'))
    check_device(parser, 'cpu')
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            check_device(parser, 'cuda:0')
        assert 'CUDA is not available; use --device cpu' in capsys.readouterr().err


def test_skips_are_canonical_or_a_parser_error(capsys):
    from mmadn.models.backbones import ResNetADN
    backbone = ResNetADN(18)
    parser = argparse.ArgumentParser(prog='tool')
    assert parse_skips(parser, backbone, None) == backbone.subnets()
    assert parse_skips(parser, backbone, ['ttff', 'super', 'TTFF', 'base']) == ['TTFF', 'FFFF', 'TTTT']
    with pytest.raises(SystemExit):
        parse_skips(parser, backbone, ['TTF'])
    assert "Invalid skip 'TTF'" in capsys.readouterr().err


# ------------------------------------------------------------------------------ config without Algorithm 1
def test_the_distillation_hook_is_found_in_every_form_and_removed_alone():
    others = [dict(type='EMAHook'), dict(type='mmpretrain.VisualizationHook')]
    cfg = Config(dict(custom_hooks=[others[0], dict(type='ADNDistillHook', alpha=0.5),
                                    dict(type='mmadn.ADNDistillHook'), others[1]]))
    cfg.custom_hooks.append(dict(type=ADNDistillHook))
    assert len(distill_hooks(cfg)) == 3 and all(is_distill_hook(h) for h in distill_hooks(cfg))
    remove_distill_hook(cfg)
    assert cfg.custom_hooks == others
    empty = Config(dict(model=dict()))
    remove_distill_hook(empty)
    assert empty.custom_hooks == [] and distill_hooks(empty) == []


# ---------------------------------------------------------------------------- the checked model, the runner
@pytest.fixture(scope='module')
def digits(tmp_path_factory):
    from mmadn.datasets import make_digits_folder
    root = str(tmp_path_factory.mktemp('digits'))
    make_digits_folder(root, train_per_class=1, val_per_class=1)
    return {f'{split}_dataloader.dataset.data_root': root for split in ('train', 'val', 'test')}


def _args(config, checkpoint, cfg_options, **extra):
    return argparse.Namespace(config=config, checkpoint=str(checkpoint), cfg_options=dict(cfg_options),
                              device='cpu', **extra)


def test_check_adn_model_checks_everything_before_a_runner(tmp_path, digits, capsys):
    checkpoint = tmp_path / 'ckpt.pth'
    checkpoint.write_bytes(b'')
    parser = argparse.ArgumentParser(prog='tool')
    checked = check_adn_model(parser, _args(CLS_CONFIG, checkpoint, digits, skips=['base', 'ttff']))
    assert (checked.task, checked.skips, checked.datasets) == ('classification', ['TTTT', 'TTFF'], None)
    assert type(checked.backbone).__name__ == 'ResNetADN' and distill_hooks(checked.cfg)
    built = check_adn_model(parser, _args(CLS_CONFIG, checkpoint, digits), preflight=True)
    assert built.skips == checked.backbone.subnets() and set(built.datasets) == {'test'}

    plain = tmp_path / 'plain.py'
    plain.write_text(f'_base_ = [{osp.abspath(CLS_CONFIG)!r}]\n'
                     "model = dict(backbone=dict(_delete_=True, type='ResNet', depth=18))\n")
    cases = [(_args(CLS_CONFIG, tmp_path / 'none.pth', digits), 'does not exist'),
             (_args(CLS_CONFIG, checkpoint, {**digits, 'test_dataloader.dataset.data_root': str(tmp_path / 'no')}),
              'The test dataset is missing'),
             (_args(str(plain), checkpoint, digits), 'model.backbone is ResNet, not an ADN backbone'),
             (_args(CLS_CONFIG, checkpoint, digits, skips=['TTF']), "Invalid skip 'TTF'")]
    for args, says in cases:
        with pytest.raises(SystemExit) as exit_:
            check_adn_model(parser, args)
        assert exit_.value.code == 2 and says in capsys.readouterr().err, says


def test_the_eval_runner_evaluates_the_checkpoint_as_it_is(tmp_path, digits):
    checked = check_adn_model(argparse.ArgumentParser(), _args(CLS_CONFIG, __file__, digits), preflight=True)
    first = build_eval_runner(checked.cfg, 'unused.pth', str(tmp_path / 'first'), checked.datasets)
    assert not any(isinstance(h, ADNDistillHook) for h in first.hooks)
    assert (first.cfg.launcher, first.cfg.load_from, first.work_dir) == ('none', 'unused.pth',
                                                                        str(tmp_path / 'first'))
    weights = {k: torch.full_like(v, 0.5) if v.is_floating_point() else v for k, v in first.model.state_dict().items()}
    torch.save(dict(state_dict=weights), tmp_path / 'half.pth')

    cfg = check_adn_model(argparse.ArgumentParser(), _args(CLS_CONFIG, __file__, digits)).cfg
    runner = build_eval_runner(cfg, str(tmp_path / 'half.pth'), str(tmp_path / 'second'), load=True, device='cpu')
    assert all(torch.equal(v, weights[k]) for k, v in runner.model.state_dict().items())


# ------------------------------------------------------------------------------ checkpoint architecture
def test_checkpoint_architecture_is_detected_across_the_registered_layouts():
    from mmadn.models.backbones import ResNetADN
    from mmadn.models.utils.checkpoint_layout import convert_checkpoint, detect_arch, registered_layouts
    assert {'resnet', 'mobilenet_v2', 'vit', 'swin'} <= set(registered_layouts())
    state = {f'backbone.{k}': v for k, v in ResNetADN(18).state_dict().items()}
    arch, layout = detect_arch(state)
    assert arch == 'resnet'
    assert layout == 'mmdet' and convert_checkpoint(state, 'released')[:2] == (arch, layout)
    with pytest.raises(ValueError, match='No ADN architecture recognises') as err:
        detect_arch({'encoder.weight': torch.zeros(1)})
    assert all(f'  {name}:' in str(err.value) for name in registered_layouts())
    with pytest.raises(ValueError, match="Unknown architecture 'convnext'"):
        convert_checkpoint(state, 'mmpretrain', arch='convnext')


# ------------------------------------------------------------------------------------- the generators
def test_generators_share_their_arguments_and_refuse_cleanly(capsys):
    from mmadn.datasets.generator_cli import coco_set_parser, folder_set_parser, run_generator, written_splits
    folders = folder_set_parser('doc', 'data/x', train_per_class=3, val_per_class=2, size=16).parse_args([])
    assert vars(folders) == dict(root='data/x', train_per_class=3, val_per_class=2, size=16, seed=0)
    assert not hasattr(folder_set_parser('doc', 'data/x', 3, 2).parse_args([]), 'size')
    coco = coco_set_parser('doc', 'data/c').parse_args(['out', '--size', '64', '48'])
    assert (coco.root, coco.num_train, coco.num_val, coco.size) == ('out', 400, 100, [64, 48])
    run_generator(coco_set_parser('doc', 'data/c'), lambda a: written_splits({'train': 'a.json'}), [])
    assert capsys.readouterr().out == 'train: a.json\n'

    def refuse(args):
        raise ValueError('--num-train must be at least 1')

    with pytest.raises(SystemExit) as exit_:
        run_generator(coco_set_parser('doc', 'data/c'), refuse, [])
    assert exit_.value.code == 2 and '--num-train must be at least 1' in capsys.readouterr().err


# ------------------------------------------------------------------------------------ reports and timing
def test_default_deadlines_separate_the_super_net_from_the_base_net():
    from mmadn.analysis.deadline_stream import default_deadlines

    def row(skip, median, p90):
        return dict(skip=skip, latency_ms=median, latency_p90_ms=p90)

    assert default_deadlines(dict(subnets=[row('FF', 40, 48), row('TT', 20, 24)])) == [60.0, 32.0]
    with pytest.raises(ValueError, match='no deadline separates them'):
        default_deadlines(dict(subnets=[row('FF', 40, 48), row('TT', 39, 41)]))
    with pytest.raises(ValueError, match='lacks FF or TT'):
        default_deadlines(dict(subnets=[row('FF', 40, 48)]))


def test_the_benchmark_title_says_how_it_measured():
    from mmadn.analysis.benchmark_report import benchmark_title, quality_column
    assert quality_column('detection') == 'bbox_mAP' and quality_column('classification') == 'top1'
    title = benchmark_title('configs/x.py', 'cpu', 2, 3, 'pytorch', 'classification', None)
    assert title == 'x.py on cpu, batch 2, norms recalibrated on 3 batches'
    assert benchmark_title('x.py', 'cpu', 1, 0, 'onnxruntime', 'classification', None).endswith(
        ', backbone + neck in onnxruntime (quality: PyTorch\'s)')


def test_switch_cost_times_each_call():
    from mmadn.deploy.all_depths import switch_cost
    calls = []
    cost = switch_cost(lambda depth: calls.append(depth), [('a', ), ('b', )], runs=2, rounds=1)
    assert calls == ['a', 'b'] + ['a'] * 2 + ['b'] * 2 + ['a', 'b'] * 2
    assert len(cost['repeated_ms']) == 2 and all(ms >= 0 for ms in cost['alternating_ms'])
