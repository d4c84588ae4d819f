"""Issue 4: Algorithm 1 checked against a hand computation, gradient isolation, alpha = 1, the hook."""
import copy
import re

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.structures import DetDataSample
from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmpretrain.structures import DataSample

from mmadn.models import FeatureRecorder, SubPathDistillation, feature_kl, logits_kl, subnet


def _classifier(num_classes=5):
    model = MMPRETRAIN_MODELS.build(
        dict(type='ImageClassifier',
             backbone=dict(type='ResNetADN', depth=18, out_indices=(3, ), norm_eval=False,
                           zero_init_residual=False),
             neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=512,
                       loss=dict(type='CrossEntropyLoss'))))
    model.init_weights()
    return model.train()


def _cls_batch(n=4, num_classes=5):
    inputs = torch.randn(n, 3, 32, 32)
    samples = [DataSample().set_gt_label(i % num_classes) for i in range(n)]
    return inputs, samples


def _stage_outputs(model, inputs):
    b = model.backbone
    x = b.maxpool(b.relu(b.norm1(b.conv1(inputs))))
    outs = []
    for layer in b.stages:
        x = layer(x)
        outs.append(x)
    return outs, model.head.fc(model.neck((x, ))[0])


def _hand_kl(t, s, T, dim):
    p = F.softmax(t.detach() / T, dim=dim)
    return (p * (F.log_softmax(t.detach() / T, dim=dim) - F.log_softmax(s / T, dim=dim))).sum(dim)


@pytest.mark.parametrize('alpha, T', [(0.5, 1.0), (0.3, 4.0)])
def test_total_loss_is_alpha_task_plus_one_minus_alpha_kl(alpha, T):
    model = _classifier()
    inputs, samples = _cls_batch()
    objective = SubPathDistillation(model, model.loss, alpha=alpha, temperature=T)
    assert set(objective.features) == {'backbone.layer1', 'backbone.layer2', 'backbone.layer3', 'head'}
    losses = objective(inputs, samples)
    assert set(losses) == {'loss', 'loss_kl_backbone_layer1', 'loss_kl_backbone_layer2',
                           'loss_kl_backbone_layer3', 'loss_kl_head'}

    with torch.no_grad():
        with subnet(model, 'FFFF'):
            task = F.cross_entropy(_stage_outputs(model, inputs)[1], torch.tensor([s.gt_label.item() for s in samples]))
            t_feats, t_logits = _stage_outputs(model, inputs)
        with subnet(model, 'TTTT'):
            s_feats, s_logits = _stage_outputs(model, inputs)
        kls = [(_hand_kl(t.mean((2, 3)), s.mean((2, 3)), T, 1).mean() * T * T) for t, s in zip(t_feats[:3], s_feats[:3])]
        kls.append(_hand_kl(t_logits, s_logits, T, 1).mean() * T * T)
    expected = alpha * task + (1 - alpha) * sum(kls)
    got = sum(v for k, v in losses.items())
    torch.testing.assert_close(losses['loss'], alpha * task, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses['loss_kl_head'], (1 - alpha) * kls[3], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert all(v.item() > 0 for k, v in losses.items())  # KL of two different sub-networks is positive
    assert model.backbone.skip == 'FFFF'  # the objective leaves the model as it found it


def test_kl_sends_no_gradient_into_the_teacher_side():
    model = _classifier()
    inputs, samples = _cls_batch()
    objective = SubPathDistillation(model, model.loss, alpha=0.5)
    losses = objective(inputs, samples)
    sum(v for k, v in losses.items() if k.startswith('loss_kl')).backward()
    # Used by the super-net only: the skippable blocks and the shared norms of the base-net's mandatory blocks.
    # ResNet-18: block 1 of every stage is skippable, block 0 mandatory (its downsample is shared).
    def teacher_only_param(name):
        parts = name.split('.')
        if parts[0] != 'backbone' or not parts[1].startswith('layer'):
            return False
        block, rest = int(parts[2]), parts[3]
        return block == 1 or (rest.startswith('bn') and not rest.endswith('_skip'))

    teacher_only = [n for n, _ in model.named_parameters() if teacher_only_param(n)]
    assert teacher_only
    for name, p in model.named_parameters():
        if name in teacher_only:
            assert p.grad is None or torch.count_nonzero(p.grad) == 0, name
    student_twin = dict(model.named_parameters())['backbone.layer2.0.bn1_skip.weight']
    assert student_twin.grad is not None and torch.count_nonzero(student_twin.grad) > 0


def test_alpha_one_equals_plain_super_net_training():
    model = _classifier()
    reference = copy.deepcopy(model)
    inputs, samples = _cls_batch()
    objective = SubPathDistillation(model, model.loss, alpha=1.0)
    losses = objective(inputs, samples)
    assert set(losses) == {'loss'}
    plain = reference.loss(inputs, samples)
    torch.testing.assert_close(losses['loss'], plain['loss'])
    losses['loss'].backward()
    plain['loss'].backward()
    grads = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        if grads[name].grad is None:
            assert p.grad is None, name
        else:
            torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-6, atol=1e-7)


def test_feature_modes_match_their_definitions():
    t, s = torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4, requires_grad=True)
    ch = feature_kl(t, s, 'channel', 2.0)
    sp = feature_kl(t, s, 'spatial', 2.0)
    expected_ch = _hand_kl(t.flatten(2), s.flatten(2), 2.0, 1).mean() * 4
    expected_sp = _hand_kl(t.flatten(2), s.flatten(2), 2.0, 2).mean() * 4
    torch.testing.assert_close(ch, expected_ch)
    torch.testing.assert_close(sp, expected_sp)
    assert feature_kl(t, t.clone(), 'channel').abs() < 1e-6
    logits_t, logits_s = torch.randn(3, 10), torch.randn(3, 10)
    idx = logits_t.topk(4, dim=1).indices
    torch.testing.assert_close(logits_kl(logits_t, logits_s, 1.0, topk=4),
                               _hand_kl(logits_t.gather(1, idx), logits_s.gather(1, idx), 1.0, 1).mean())
    with pytest.raises(ValueError, match='Unknown feature distillation mode'):
        feature_kl(t, s, 'pixel')


def test_tokens_mode_is_the_pooled_term_of_a_token_sequence():
    t, s = torch.randn(2, 5, 8), torch.randn(2, 5, 8)  # (N, L, C)
    tokens = feature_kl(t, s, 'tokens', 2.0)
    as_map = feature_kl(t.transpose(1, 2)[..., None], s.transpose(1, 2)[..., None], 'pooled', 2.0)
    torch.testing.assert_close(tokens, as_map)
    torch.testing.assert_close(tokens, _hand_kl(t.mean(1), s.mean(1), 2.0, 1).mean() * 4)
    with pytest.raises(ValueError, match='expects .N, L, C. token features'):
        feature_kl(torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4), 'tokens')


def test_feature_recorder_keeps_every_call_in_call_order():
    relu = torch.nn.ReLU()
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), relu, torch.nn.Linear(3, 3), relu)  # relu runs twice
    recorder = FeatureRecorder(model, ['2', '1'])
    x = torch.randn(2, 3)
    with recorder.record():
        out = model(x)
    first = relu(model[0](x))
    assert [len(recorder.outputs[n]) for n in ('1', '2')] == [2, 1]
    assert torch.equal(recorder.outputs['1'][0], first) and torch.equal(recorder.last('1'), out)
    assert recorder.called() == [relu, model[2]]  # by first call, not by the order of the names
    model(x)  # the hooks are gone after the block
    assert len(recorder.outputs['1']) == 2
    with FeatureRecorder(model, keep_outputs=False).record() as ran:
        model(x)
    assert ran.outputs['1'] == [None, None] and ran.called() == [model[0], relu, model[2], model]  # as calls return
    with pytest.raises(KeyError, match='no module'):
        FeatureRecorder(model, ['neck'])


def _detector():
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = _build_detector()
    model.init_weights()
    return model.train()


def _build_detector():
    return MMDET_MODELS.build(
        ConfigDict(type='FasterRCNN',
             data_preprocessor=dict(type='DetDataPreprocessor', pad_size_divisor=32),
             backbone=dict(type='ResNetADN', depth=18, norm_eval=False, frozen_stages=-1,
                           zero_init_residual=False),
             neck=dict(type='FPN', in_channels=[64, 128, 256, 512], out_channels=32, num_outs=5),
             rpn_head=dict(type='RPNHead', in_channels=32, feat_channels=32,
                           anchor_generator=dict(type='AnchorGenerator', scales=[4], ratios=[1.0],
                                                 strides=[4, 8, 16, 32, 64]),
                           bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0] * 4, target_stds=[1.0] * 4),
                           loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                           loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
             roi_head=dict(type='StandardRoIHead',
                           bbox_roi_extractor=dict(type='SingleRoIExtractor',
                                                   roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                                                   out_channels=32, featmap_strides=[4, 8, 16, 32]),
                           bbox_head=dict(type='Shared2FCBBoxHead', in_channels=32, fc_out_channels=64,
                                          roi_feat_size=7, num_classes=3,
                                          bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                                                          target_stds=[0.1, 0.1, 0.2, 0.2]),
                                          reg_class_agnostic=False,
                                          loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                                          loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
             train_cfg=dict(
                 rpn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                                        match_low_quality=True, ignore_iof_thr=-1),
                          sampler=dict(type='RandomSampler', num=64, pos_fraction=0.5, neg_pos_ub=-1,
                                       add_gt_as_proposals=False),
                          allowed_border=-1, pos_weight=-1, debug=False),
                 rpn_proposal=dict(nms_pre=200, max_per_img=100, nms=dict(type='nms', iou_threshold=0.7),
                                   min_bbox_size=0),
                 rcnn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                                         match_low_quality=False, ignore_iof_thr=-1),
                           sampler=dict(type='RandomSampler', num=64, pos_fraction=0.25, neg_pos_ub=-1,
                                        add_gt_as_proposals=True),
                           pos_weight=-1, debug=False)),
             test_cfg=dict(rpn=dict(nms_pre=100, max_per_img=50, nms=dict(type='nms', iou_threshold=0.7),
                                    min_bbox_size=0),
                           rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                                     max_per_img=20))))


def _det_batch(n=2, size=128):
    inputs = torch.randn(n, 3, size, size)
    samples = []
    for i in range(n):
        s = DetDataSample(metainfo=dict(img_shape=(size, size), pad_shape=(size, size), batch_input_shape=(size, size)))
        s.gt_instances = InstanceData(bboxes=torch.tensor([[8., 8., 30., 30.], [20., 30., 60., 60.]]),
                                      labels=torch.tensor([i % 3, 2]))
        samples.append(s)
    return inputs, samples


def test_detection_distills_every_fpn_level_on_top_of_the_task_losses():
    model = _detector()
    inputs, samples = _det_batch()
    alpha = 0.4
    objective = SubPathDistillation(model, model.loss, alpha=alpha, features=dict(neck='spatial'))
    torch.manual_seed(1)
    losses = objective(inputs, samples)
    kl_keys = sorted(k for k in losses if k.startswith('loss_kl'))
    assert kl_keys == [f'loss_kl_neck_{i}' for i in range(5)]
    torch.manual_seed(1)
    with subnet(model, 'super'):
        task = model.loss(inputs, samples)  # the detector's own losses, same sampling seed
    for key, value in task.items():
        if 'loss' in key:
            got, want = losses[key], value
            got = sum(got) if isinstance(got, list) else got
            want = sum(want) if isinstance(want, list) else want
            torch.testing.assert_close(got, alpha * want, rtol=1e-5, atol=1e-6)
    with torch.no_grad(), subnet(model, 'super'):
        t = model.extract_feat(inputs)
    with torch.no_grad(), subnet(model, 'base'):
        s = model.extract_feat(inputs)
    for level in range(5):
        expected = (1 - alpha) * _hand_kl(t[level].flatten(2), s[level].flatten(2), 1.0, 2).mean()
        torch.testing.assert_close(losses[f'loss_kl_neck_{level}'], expected, rtol=1e-5, atol=1e-6)


def _grads(model, losses, keys):
    model.zero_grad()
    sum(losses[k] for k in keys).backward(retain_graph=True)
    return {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}


def test_student_holds_keeps_the_kl_out_of_the_neck_weights_but_not_out_of_the_base_path():
    """With student_holds=('neck', ) the neck is a fixed function in the base-net's pass: the KL over its outputs
    trains the backbone (twins and shared convs) through it and leaves the neck's weights to the task losses."""
    model = _detector()
    inputs, samples = _det_batch()
    held = SubPathDistillation(model, model.loss, features=dict(neck='spatial'), student_holds=('neck', ))
    free = SubPathDistillation(model, model.loss, features=dict(neck='spatial'), student_holds=())
    torch.manual_seed(1)
    losses_held = held(inputs, samples)
    torch.manual_seed(1)
    losses_free = free(inputs, samples)
    kl = [k for k in losses_held if k.startswith('loss_kl')]
    for key in kl:  # the same objective's value; only where its gradient goes differs
        torch.testing.assert_close(losses_held[key], losses_free[key])
    g_held, g_free = _grads(model, losses_held, kl), _grads(model, losses_free, kl)
    neck = [n for n in g_held if n.startswith('neck.')]
    assert all(g_held[n] is None or not g_held[n].any() for n in neck)
    assert any(g_free[n] is not None and g_free[n].abs().sum() > 0 for n in neck)
    twin, shared = 'backbone.layer4.0.bn2_skip.weight', 'backbone.layer4.0.conv2.weight'
    for name in (twin, shared):
        torch.testing.assert_close(g_held[name], g_free[name], rtol=1e-4, atol=1e-7)  # the same path through
        assert g_held[name].abs().sum() > 0
    assert all(p.requires_grad for p in model.parameters())  # the hold ends with the pass
    task = [k for k in losses_held if k.startswith('loss') and k not in kl]
    g_task = _grads(model, {k: sum(v) if isinstance(v, list) else v for k, v in losses_held.items()}, task)
    assert any(g_task[n] is not None and g_task[n].abs().sum() > 0 for n in neck)  # the task still trains it
    with pytest.raises(ValueError, match='student_holds names no module'):
        SubPathDistillation(model, model.loss, features=dict(neck='spatial'), student_holds=('nek', ))
    # the default: a detector's neck when its outputs are distilled; nothing in classification (released recipe)
    assert SubPathDistillation(model, model.loss).student_hold_names == ['neck']
    assert SubPathDistillation(model, model.loss, features={'backbone.layer4': 'pooled'}).student_hold_names == []
    classifier = _classifier()
    assert SubPathDistillation(classifier, classifier.loss).student_hold_names == []


def test_student_task_loss_weight_adds_the_base_nets_own_task_losses_beside_the_kl():
    """The option beyond Algorithm 1 (docs/adn.md, "Why the base-net stays below"): the base-net's own task losses,
    scaled, logged as base_*; the KL terms stay; with the neck held they train the base path, not the neck."""
    model = _detector()
    inputs, samples = _det_batch()
    weight = 0.3
    objective = SubPathDistillation(model, model.loss, features=dict(neck='spatial'), student_task_loss_weight=weight)
    torch.manual_seed(1)
    losses = objective(inputs, samples)
    torch.manual_seed(1)  # the same sampling: the teacher's pass first, then the student's
    with subnet(model, 'super'):
        model.loss(inputs, samples)
    with subnet(model, 'base'):
        base = model.loss(inputs, samples)
    base_keys = sorted(k for k in losses if k.startswith('base_'))
    assert base_keys == sorted(f'base_{k}' for k in base if 'loss' in k)
    for key in base_keys:
        got, want = losses[key], base[key[len('base_'):]]
        got = sum(got) if isinstance(got, list) else got
        want = sum(want) if isinstance(want, list) else want
        torch.testing.assert_close(got, weight * want, rtol=1e-5, atol=1e-6)
    assert sorted(k for k in losses if k.startswith('loss_kl')) == [f'loss_kl_neck_{i}' for i in range(5)]
    grads = _grads(model, {k: sum(v) if isinstance(v, list) else v for k, v in losses.items()}, base_keys)
    assert grads['backbone.layer4.0.bn2_skip.weight'].abs().sum() > 0  # the base-net's twin norm
    assert grads['roi_head.bbox_head.fc_cls.weight'].abs().sum() > 0  # the shared heads
    assert all(g is None or not g.any() for n, g in grads.items() if n.startswith('neck.'))  # held
    skipped = [n for n in grads if re.match(r'backbone\.layer\d\.1\.', n)]  # ResNet-18: block 1 of each stage
    assert skipped and all(grads[n] is None or not grads[n].any() for n in skipped)


def test_objective_rejects_bad_settings():
    model = _classifier()
    with pytest.raises(ValueError, match='alpha'):
        SubPathDistillation(model, model.loss, alpha=1.5)
    with pytest.raises(ValueError, match='same sub-network'):
        SubPathDistillation(model, model.loss, teacher='FFFF', student='super')
    with pytest.raises(ValueError, match='4 skippable stages'):
        SubPathDistillation(model, model.loss, student='TTF')
    with pytest.raises(KeyError, match='no module'):
        SubPathDistillation(model, model.loss, features=dict(nek='channel'))
    with pytest.raises(ValueError, match="Unknown mode"):
        SubPathDistillation(model, model.loss, features=dict(head='softmax'))


def test_the_hook_installs_the_distiller_from_its_options_and_removes_it():
    """ADNDistillHook's keyword arguments are the distiller's options, passed on as they are; a misspelt one fails
    when the hook is built, before any training."""
    from types import SimpleNamespace

    from mmengine.logging import MMLogger

    from mmadn.engine import ADNDistillHook
    model = _classifier()
    runner = SimpleNamespace(model=model, logger=MMLogger.get_current_instance())
    hook = ADNDistillHook(alpha=0.3, student='TTFF', logits_topk=3)
    hook.before_train(runner)
    assert isinstance(model.loss, SubPathDistillation) and model.loss is hook.objective
    assert (model.loss.alpha, model.loss.student, model.loss.logits_topk) == (0.3, 'TTFF', 3)
    with pytest.raises(RuntimeError, match='already replaced'):
        ADNDistillHook().before_train(runner)
    hook.after_train(runner)
    assert 'loss' not in vars(model)
    with pytest.raises(TypeError, match=r"Unknown option\(s\) \['alpah'\]"):
        ADNDistillHook(alpah=0.3)
    assert SubPathDistillation.trained_subnets(dict(alpha=1.0)) == ['super']
    assert SubPathDistillation.trained_subnets(dict(student='TTFF')) == ['super', 'TTFF']
    plain = MMPRETRAIN_MODELS.build(dict(type='ImageClassifier', backbone=dict(type='ResNet', depth=18),
                                         neck=dict(type='GlobalAveragePooling'),
                                         head=dict(type='LinearClsHead', num_classes=5, in_channels=512)))
    with pytest.raises(TypeError, match='adaptive-depth backbone'):
        ADNDistillHook().before_train(SimpleNamespace(model=plain, logger=runner.logger))


def test_released_pooled_term_is_bit_for_bit_the_old_formula():
    """The classification recipe must not move: without ``normalize`` the maps are divided by T, pooled, then
    compared, exactly as before the option existed."""
    t, s = torch.randn(3, 16, 5, 5), torch.randn(3, 16, 5, 5)
    for T in (1.0, 4.0):
        pooled_t, pooled_s = (t / T).flatten(2).mean(-1), (s / T).flatten(2).mean(-1)
        log_p_t, log_p_s = F.log_softmax(pooled_t, dim=1), F.log_softmax(pooled_s, dim=1)
        old = (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).mean() * T**2
        assert torch.equal(feature_kl(t, s, 'pooled', T), old)


def test_normalized_kl_sees_the_pattern_not_the_scale():
    """An FPN level's small values make the raw channel softmax nearly uniform: its KL is tiny however
    different the two maps are. Standardized, the KL does not depend on the scale and is of order one."""
    t, s = torch.randn(2, 64, 6, 6), torch.randn(2, 64, 6, 6)
    small = feature_kl(0.05 * t, 0.05 * s, 'channel')
    assert small < 5e-3 < feature_kl(t, s, 'channel')
    normalized = feature_kl(0.05 * t, 0.05 * s, 'channel', normalize=True)
    torch.testing.assert_close(normalized, feature_kl(3 * t, 3 * s, 'channel', normalize=True), rtol=2e-3, atol=0)
    assert normalized > 100 * small
    z = lambda x: (x - x.mean(1, keepdim=True)) / x.var(1, unbiased=False, keepdim=True).add(1e-6).sqrt()  # noqa
    torch.testing.assert_close(normalized, _hand_kl(z(0.05 * t.flatten(2)), z(0.05 * s.flatten(2)), 1.0, 1).mean())
    # T applies to the standardized logits; identical patterns at any scale give no KL
    torch.testing.assert_close(feature_kl(t, s, 'spatial', 2.0, normalize=True),
                               _hand_kl(z(t.flatten(2).transpose(1, 2)).transpose(1, 2),
                                        z(s.flatten(2).transpose(1, 2)).transpose(1, 2), 2.0, 2).mean() * 4)
    assert feature_kl(t, 2 * t, 'channel', normalize=True).abs() < 1e-5


def _losses_and_neck_features(detector, objective):
    """The objective's losses on one batch, and the super-net's and base-net's FPN outputs on it."""
    inputs, samples = _det_batch()
    losses = objective(inputs, samples)
    with torch.no_grad(), subnet(detector, 'super'):
        t = detector.extract_feat(inputs)
    with torch.no_grad(), subnet(detector, 'base'):
        s = detector.extract_feat(inputs)
    return losses, t, s


def test_a_feature_takes_several_terms_each_logged_by_its_mode():
    """The spatial softmax cannot see a constant offset per channel, the channel softmax one per position: a list
    gives the map both terms."""
    detector = _detector()
    objective = SubPathDistillation(detector, detector.loss, features=dict(neck=['spatial', 'channel']))
    losses, t, s = _losses_and_neck_features(detector, objective)
    for level in range(len(t)):
        for mode in ('spatial', 'channel'):
            torch.testing.assert_close(losses[f'loss_kl_neck_{mode}_{level}'],
                                       (1 - objective.alpha) * feature_kl(t[level], s[level], mode))
    assert not any(k.startswith('loss_kl_neck_') and k[len('loss_kl_neck_'):].isdigit() for k in losses)
    with pytest.raises(ValueError, match='each mode at most once'):
        SubPathDistillation(detector, detector.loss, features=dict(neck=['spatial', dict(mode='spatial')]))


def test_features_take_normalize_and_the_defaults_keep_their_forms():
    detector = _detector()
    objective = SubPathDistillation(detector, detector.loss, features=dict(neck=dict(mode='channel',
                                                                                      normalize=True)))
    assert objective.features['neck'][0]['normalize'] is True
    losses, t, s = _losses_and_neck_features(detector, objective)
    torch.testing.assert_close(losses['loss_kl_neck_0'],
                               (1 - objective.alpha) * feature_kl(t[0], s[0], 'channel', normalize=True))
    classifier = _classifier()
    released = SubPathDistillation(classifier, classifier.loss)
    assert all(not spec.get('normalize') for specs in released.features.values() for spec in specs)
    with pytest.raises(ValueError, match='not to logits'):
        SubPathDistillation(classifier, classifier.loss, features=dict(head=dict(mode='logits', normalize=True)))


def test_roi_head_logits_term_classifies_the_teachers_rois_with_the_students_features():
    """``features=dict(roi_head='logits')``: the detector's form of Algorithm 1's logits term. The student's box
    head classifies the RoIs the teacher's box head was trained on (its sampled proposals), and the KL of the two
    class distributions trains the base-net's backbone path, not the held neck and RoI head."""
    model = _detector()
    inputs, samples = _det_batch()
    alpha = 0.4
    objective = SubPathDistillation(model, model.loss, alpha=alpha, features=dict(neck='spatial', roi_head='logits'))
    assert objective.student_hold_names == ['neck', 'roi_head']
    torch.manual_seed(1)
    losses = objective(inputs, samples)
    assert sorted(k for k in losses if k.startswith('loss_kl')) == (
        [f'loss_kl_neck_{i}' for i in range(5)] + ['loss_kl_roi_head'])

    rois = []  # the same sampling seed: the teacher's pass samples the same RoIs again
    handle = model.roi_head.bbox_roi_extractor.register_forward_pre_hook(lambda m, args: rois.append(args[1]))
    torch.manual_seed(1)
    with subnet(model, 'super'):
        model.loss(inputs, samples)
    handle.remove()
    assert len(rois) == 1 and rois[0].shape == (2 * 64, 5)  # (image index, box) per sampled RoI
    with torch.no_grad():
        with subnet(model, 'super'):
            t = model.roi_head._bbox_forward(model.extract_feat(inputs), rois[0])['cls_score']
        with subnet(model, 'base'):
            s = model.roi_head._bbox_forward(model.extract_feat(inputs), rois[0])['cls_score']
    assert t.shape == (2 * 64, 3 + 1) and not torch.allclose(t, s)
    expected = (1 - alpha) * _hand_kl(t, s, 1.0, 1).mean()
    torch.testing.assert_close(losses['loss_kl_roi_head'], expected, rtol=1e-5, atol=1e-7)

    grads = _grads(model, losses, ['loss_kl_roi_head'])
    assert grads['backbone.layer4.0.bn2_skip.weight'].abs().sum() > 0  # the base-net's twin norm
    held = [n for n in grads if n.startswith(('neck.', 'roi_head.'))]
    assert held and all(grads[n] is None or not grads[n].any() for n in held)

    with pytest.raises(ValueError, match="mode='logits'"):
        SubPathDistillation(model, model.loss, features=dict(roi_head='spatial'))
    classifier = _classifier()
    with pytest.raises(ValueError, match='no single box head on RoIs'):
        SubPathDistillation(classifier, classifier.loss, features=dict(roi_head='logits'))


def test_roi_head_logits_term_with_the_students_own_task_loss_still_uses_the_teachers_rois():
    model = _detector()
    inputs, samples = _det_batch()
    features = dict(neck='spatial', roi_head='logits')
    torch.manual_seed(1)
    plain = SubPathDistillation(model, model.loss, features=features)(inputs, samples)
    torch.manual_seed(1)
    both = SubPathDistillation(model, model.loss, features=features, student_task_loss_weight=0.5)(inputs, samples)
    torch.testing.assert_close(both['loss_kl_roi_head'], plain['loss_kl_roi_head'], rtol=1e-5, atol=1e-7)
    assert any(k.startswith('base_') for k in both)


def test_detection_defaults_to_the_base_nets_own_task_loss_and_classification_to_algorithm_1():
    """The detection recipe (docs/adn.md, "The detection recipe"): a detector's base-net also gets its task losses
    at DETECTION_STUDENT_TASK_LOSS_WEIGHT and the super-net's task losses weigh DETECTION_ALPHA; a classifier keeps
    Algorithm 1 as released (no such loss, alpha 0.5); 0 and alpha=0.5 give a detector the paper's form."""
    from mmadn.models.distillers.sub_path_distillation import DETECTION_ALPHA, DETECTION_STUDENT_TASK_LOSS_WEIGHT
    model = _detector()
    inputs, samples = _det_batch()
    assert SubPathDistillation(model, model.loss).student_task_loss_weight == DETECTION_STUDENT_TASK_LOSS_WEIGHT == 0.5
    assert SubPathDistillation(model, model.loss).alpha == DETECTION_ALPHA == 0.7
    assert SubPathDistillation(model, model.loss, alpha=0.5).alpha == 0.5
    assert any(k.startswith('base_') for k in SubPathDistillation(model, model.loss)(inputs, samples))
    paper = SubPathDistillation(model, model.loss, student_task_loss_weight=0)
    assert not any(k.startswith('base_') for k in paper(inputs, samples))
    classifier = _classifier()
    assert SubPathDistillation(classifier, classifier.loss).student_task_loss_weight == 0.0
    assert SubPathDistillation(classifier, classifier.loss).alpha == 0.5
    with pytest.raises(ValueError, match='student_task_loss_weight'):
        SubPathDistillation(model, model.loss, student_task_loss_weight=-1)


def test_sampled_subnets_trains_drawn_subnetworks_between_the_two_as_the_student_is():
    """The sandwich option (docs/adn.md, "Sub-networks between the base-net and the super-net"): each call draws
    sub-networks strictly between teacher and student from torch's generator and gives each the student's terms
    (KL to the teacher, own task loss), logged as mid_*; the default draws none (Algorithm 1's two ends)."""
    from mmadn.models.utils.adaptive_depth import all_skips
    assert SubPathDistillation.subnets_between('FFFF', 'TTTT') == all_skips(4)[1:-1]
    assert SubPathDistillation.subnets_between('FFFF', 'FFTT') == ['FFFT', 'FFTF']
    model = _classifier()
    inputs, samples = _cls_batch()
    assert not any(k.startswith('mid') for k in SubPathDistillation(model, model.loss)(inputs, samples))
    objective = SubPathDistillation(model, model.loss, sampled_subnets=1)
    assert len(objective.between) == 14
    torch.manual_seed(3)
    drawn = objective.draw_subnets()
    torch.manual_seed(3)
    losses = objective(inputs, samples)
    assert sorted(k for k in losses if k.startswith('mid_')) == [
        'mid_loss_kl_backbone_layer1', 'mid_loss_kl_backbone_layer2', 'mid_loss_kl_backbone_layer3',
        'mid_loss_kl_head']
    # the drawn sub-network's KL to the super-net, computed by hand
    (t_stages, t_logits) = _stage_outputs_under(model, 'super', inputs)
    (s_stages, s_logits) = _stage_outputs_under(model, drawn[0], inputs)
    want = (_hand_kl(t_logits, s_logits, 1.0, 1)).mean() * 0.5
    torch.testing.assert_close(losses['mid_loss_kl_head'], want, rtol=1e-4, atol=1e-6)
    # the student's own terms are unchanged by the draw
    torch.manual_seed(3)
    plain = SubPathDistillation(model, model.loss)(inputs, samples)
    torch.testing.assert_close(losses['loss_kl_head'], plain['loss_kl_head'])
    # a detector's drawn sub-network gets the student's task losses too
    detector = _detector()
    det_losses = SubPathDistillation(detector, detector.loss, sampled_subnets=2)(*_det_batch())
    assert any(k.startswith('mid0_loss_kl_neck') for k in det_losses)
    assert any(k.startswith('mid1_loss_') and 'kl' not in k for k in det_losses)
    with pytest.raises(ValueError, match='sampled_subnets'):
        SubPathDistillation(model, model.loss, sampled_subnets=-1)
    with pytest.raises(ValueError, match='between'):
        SubPathDistillation(model, model.loss, student='TFFF', sampled_subnets=1)


def _stage_outputs_under(model, skip, inputs):
    with subnet(model, skip):
        return _stage_outputs(model, inputs)


def test_student_task_loss_interval_gives_the_task_losses_every_nth_call_at_n_times_the_weight():
    """The cheaper form of the detection recipe: the heads' second pass every N-th step, its weight x N (the same
    expected gradient); the KL terms every step."""
    model = _detector()
    inputs, samples = _det_batch()
    every = SubPathDistillation(model, model.loss, features=dict(neck='spatial'), student_task_loss_weight=0.5)
    halves = SubPathDistillation(model, model.loss, features=dict(neck='spatial'), student_task_loss_weight=0.5,
                                 student_task_loss_interval=2)
    torch.manual_seed(1)
    want = every(inputs, samples)
    torch.manual_seed(1)
    first = halves(inputs, samples)
    second = halves(inputs, samples)
    for key in (k for k in want if k.startswith('base_')):
        got, ref = first[key], want[key]
        got = sum(got) if isinstance(got, list) else got
        ref = sum(ref) if isinstance(ref, list) else ref
        torch.testing.assert_close(got, 2 * ref, rtol=1e-4, atol=1e-6)
    assert not any(k.startswith('base_') for k in second)
    assert [k for k in second if k.startswith('loss_kl')] == [f'loss_kl_neck_{i}' for i in range(5)]
    assert any(k.startswith('base_') for k in halves(inputs, samples))  # the third call: 0 mod 2 again
    with pytest.raises(ValueError, match='student_task_loss_interval'):
        SubPathDistillation(model, model.loss, student_task_loss_interval=0)


def test_student_heads_lighten_only_the_students_task_pass():
    """``student_heads`` (docs/adn.md, "The detection recipe": its cost): the student's task pass samples ``rois``
    RoIs per image for the box head (the teacher keeps the config's 64), the sampler is restored after, and what the
    option cannot honour is refused when the objective is built."""
    model = _detector()
    inputs, samples = _det_batch()
    sizes = []
    handle = model.roi_head.bbox_roi_extractor.register_forward_pre_hook(lambda m, args: sizes.append(len(args[1])))
    objective = SubPathDistillation(model, model.loss, student_heads=dict(rois=8))
    losses = objective(inputs, samples)
    handle.remove()
    teacher_rois, student_rois = sizes
    assert teacher_rois > 2 * 8 and student_rois <= 2 * 8  # two images
    assert model.roi_head.bbox_sampler.num == 64 and 'base_loss_cls' in losses
    assert '8 RoIs / image' in objective.summary()
    with pytest.raises(ValueError, match='no mask branch'):
        SubPathDistillation(model, model.loss, student_heads=dict(mask=False))
    with pytest.raises(ValueError, match=r"takes \['mask', 'rois'\]"):
        SubPathDistillation(model, model.loss, student_heads=dict(masks=False))
    with pytest.raises(TypeError, match='student_heads.mask=False'):  # a string from --cfg-options
        SubPathDistillation(model, model.loss, student_heads='dict(mask=False)')
    classifier = _classifier()
    with pytest.raises(ValueError, match='two-stage detector'):
        SubPathDistillation(classifier, classifier.loss, student_heads=dict(rois=8))
