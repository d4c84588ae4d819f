"""IMTA's training techniques: Gradient Equilibrium, Inline Subnetwork Collaboration, One-for-all distillation."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmadn.imta import MultiExitClsHead, ge_factors, one_for_all_losses, phase1_to_phase2, scale_gradient

TINY_ARCH = dict(num_exits=3, step_mode='even', step=1, base=1, channels=4, growth_rate=2, gr_factor=(1, 2, 4),
                 bn_factor=(1, 2, 4), stem='cifar')


def tiny_model(num_classes=5, **kw):
    backbone = dict(type='MSDNet', arch=TINY_ARCH, **kw.pop('backbone', {}))
    head = dict(type='MultiExitClsHead', num_classes=num_classes, inter_channels=8, **kw.pop('head', {}))
    torch.manual_seed(0)
    return MODELS.build(dict(type='MultiExitClassifier', backbone=backbone, head=head)).eval()


# --- Gradient Equilibrium --------------------------------------------------------------------------------------

def test_scale_gradient_is_identity_forward_and_scales_backward():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = scale_gradient(x, 0.25)
    assert torch.equal(y, x)
    (y * torch.tensor([4.0, 8.0, 12.0])).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([1.0, 2.0, 3.0]))


def test_ge_factors_for_four_exits():
    # after block i: 1/(k-i+1) to classifier i, (k-i)/(k-i+1) to block i+1
    assert [ge_factors(i, 4) for i in range(4)] == [(1 / 4, 3 / 4), (1 / 3, 2 / 3), (1 / 2, 1 / 2), (1.0, 0.0)]


def _exit_gradients(model, x, y, exit_sets, wrt):
    """Gradient of sum_{j in S} CE_j w.r.t. ``wrt(outputs, model)`` for every set S of exits."""
    outputs = {}
    hooks = [b.register_forward_hook(lambda m, i, o, k=k: outputs.__setitem__(k, o))
             for k, b in enumerate(model.backbone.blocks)]
    logits = model(x)
    for h in hooks:
        h.remove()
    losses = [F.cross_entropy(z, y) for z in logits]
    targets = wrt(outputs, model)
    grads = []
    for s in exit_sets:
        g = torch.autograd.grad(sum(losses[j] for j in s), targets, retain_graph=True, allow_unused=True)
        grads.append([torch.zeros_like(t) if gi is None else gi for gi, t in zip(g, targets)])
    return grads


def test_ge_block_receives_mean_not_sum_of_its_exits_gradients():
    """Public-code GE (coarsest scale): block i's coarsest output gets mean_{j>=i} g_j, where g_j is what exit j
    alone sends back without GE."""
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([1, 3])
    coarsest = lambda outs, m: [outs[0][-1], outs[1][-1], outs[2][-1]]  # noqa: E731
    plain = tiny_model(backbone=dict(gradient_equilibrium=False))
    ge = tiny_model(backbone=dict(gradient_equilibrium=True, ge_scope='coarsest'))
    per_exit = _exit_gradients(plain, x, y, [[0], [1], [2]], coarsest)  # g_j at every block
    (with_ge, ) = _exit_gradients(ge, x, y, [[0, 1, 2]], coarsest)
    (without_ge, ) = _exit_gradients(plain, x, y, [[0, 1, 2]], coarsest)
    for i in range(3):
        later = [per_exit[j][i] for j in range(i, 3)]
        mean, total = sum(later) / len(later), sum(later)
        assert torch.allclose(with_ge[i], mean, atol=1e-7, rtol=1e-5), i
        assert torch.allclose(without_ge[i], total, atol=1e-7, rtol=1e-5), i
        if len(later) > 1:
            assert not torch.allclose(with_ge[i], total, atol=1e-7, rtol=1e-3)


def test_ge_on_all_scales_averages_the_blocks_parameter_gradients():
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 4])
    first_block = lambda outs, m: list(m.backbone.blocks[0].parameters())  # noqa: E731
    plain = tiny_model(backbone=dict(gradient_equilibrium=False))
    ge = tiny_model(backbone=dict(gradient_equilibrium=True, ge_scope='all'))
    per_exit = _exit_gradients(plain, x, y, [[0], [1], [2]], first_block)
    (with_ge, ) = _exit_gradients(ge, x, y, [[0, 1, 2]], first_block)
    for p, grad in enumerate(with_ge):
        assert torch.allclose(grad, sum(g[p] for g in per_exit) / 3, atol=1e-7, rtol=1e-4)


def _share_of_exit_gradients(ge_scope):
    """For every block b and exit j >= b of the 3-exit toy: the gradients of CE_j alone w.r.t. block b's
    parameters, with GE (``ge_scope``) and without, as flat vectors."""
    torch.manual_seed(1)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 4])
    plain = tiny_model(backbone=dict(gradient_equilibrium=False))
    ge = tiny_model(backbone=dict(gradient_equilibrium=True, ge_scope=ge_scope))
    out = {}
    for b in range(3):
        params = lambda outs, m, b=b: list(m.backbone.blocks[b].parameters())  # noqa: E731
        exits = [[j] for j in range(b, 3)]
        g_plain = _exit_gradients(plain, x, y, exits, params)
        g_ge = _exit_gradients(ge, x, y, exits, params)
        for (j, ), gp, gg in zip(exits, g_plain, g_ge):
            out[b, j] = torch.cat([t.flatten() for t in gp]), torch.cat([t.flatten() for t in gg])
    return out


def _close(a, b, rel=1e-5):
    """Equal up to float32 rounding, relative to the vector's largest entry."""
    return bool((a - b).abs().max() <= rel * b.abs().max())


def test_ge_paper_form_gives_each_exit_exactly_its_share_of_a_blocks_parameter_gradient():
    """Eq. 5 of the paper: block b's parameters receive 1/(k-b+1) of the gradient of every exit j >= b
    (3 exits: 1/3 of each exit's gradient for block 1, 1/2 for block 2, all of exit 3's for block 3)."""
    for (b, j), (g_plain, g_ge) in _share_of_exit_gradients('all').items():
        assert g_plain.abs().sum() > 0
        assert _close(g_ge, g_plain / (3 - b)), (b, j)


def test_ge_public_form_scales_only_the_coarsest_path():
    """The public code rescales the coarsest-scale tensor only: block b gets exactly 1/(k-b+1) of its own exit's
    gradient (the classifier reads that tensor alone), but not of later exits', whose gradients come back
    partly through the finer scales, unscaled. Their share is a projection ratio, measured here."""
    shares, grads = {}, _share_of_exit_gradients('coarsest')
    for (b, j), (g_plain, g_ge) in grads.items():
        if j == b:
            assert _close(g_ge, g_plain / (3 - b)), (b, j)
        shares[b, j] = float(g_ge @ g_plain / (g_plain @ g_plain))
    # later exits' gradients reach block 1 with a share other than the paper's 1/3 (more: the finer scales pass
    # them unscaled; 0.39 and 0.46 on this toy), and are not just a rescaled copy of the plain gradient
    for j in (1, 2):
        assert shares[0, j] > 1 / 3 + 0.02, shares
    g_plain, g_ge = grads[0, 2]
    assert not _close(g_ge, g_plain * shares[0, 2], rel=1e-2)


# --- One-for-all distillation ----------------------------------------------------------------------------------

def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_ofa_loss_matches_hand_computation_with_detached_teacher():
    gamma, T = 0.9, 3.0
    z = [np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]]),
         np.array([[1.0, 1.0, 0.0], [-1.0, 2.0, 0.5]]),
         np.array([[3.0, -1.0, 0.0], [0.0, 2.5, -0.5]])]
    labels = np.array([0, 1])
    # by hand: CE_i = -log softmax(z_i)[y]; KL_i = sum p_t (log p_t - log p_i) at temperature T, batch mean
    ce = [-np.log(_softmax(zi)[np.arange(2), labels]).mean() for zi in z]
    p_t = _softmax(z[2] / T)
    kl = [(p_t * (np.log(p_t) - np.log(_softmax(zi / T)))).sum(1).mean() for zi in z[:2]]
    expected = [(1 - gamma) * ce[i] + gamma * T * T * kl[i] for i in range(2)] + [ce[2]]
    assert math.isclose(ce[0], np.log(1 + np.exp(-2) + np.exp(-3)) / 2 + np.log(1 + 1 + np.exp(-0.5)) / 2)

    logits = [torch.tensor(zi, dtype=torch.float64, requires_grad=True) for zi in z]
    target = torch.tensor(labels)
    per_sample = one_for_all_losses(logits, lambda zi: F.cross_entropy(zi, target), gamma, T,
                                    kl_reduction='batchmean')
    assert np.allclose([l.item() for l in per_sample], expected, rtol=1e-12)

    # the teacher is detached: the distillation terms send nothing to the last exit
    sum(per_sample[:2]).backward()
    assert logits[2].grad is None and logits[0].grad is not None
    # the default, 'mean' (nn.KLDivLoss() of the public code), divides the KL by the number of classes as well
    default = one_for_all_losses(logits, lambda zi: F.cross_entropy(zi, target), gamma, T)
    assert math.isclose(default[0].item(), (1 - gamma) * ce[0] + gamma * T * T * kl[0] / 3, rel_tol=1e-12)


@pytest.mark.parametrize('gamma, T', [(0.9, 3.0), (0.1, 1.0)])  # the CIFAR and the ImageNet defaults
def test_ofa_default_is_the_public_codes_kl_normalisation_c100(gamma, T):
    """With C = 100, the default term is 1/(N C) sum_n sum_c p_t (log p_t - log p_i) * gamma * T^2 (what the public
    code's ``nn.KLDivLoss()`` computes), 100 times lighter than the per-sample sum."""
    torch.manual_seed(0)
    n, c = 8, 100
    student, teacher = torch.randn(n, c, dtype=torch.float64) * 2, torch.randn(n, c, dtype=torch.float64) * 2
    labels = torch.randint(0, c, (n, ))
    # by hand, with explicit torch ops
    log_p_s = student / T - torch.logsumexp(student / T, dim=1, keepdim=True)
    log_p_t = teacher / T - torch.logsumexp(teacher / T, dim=1, keepdim=True)
    pointwise = log_p_t.exp() * (log_p_t - log_p_s)  # N x C
    ce = -(student - torch.logsumexp(student, dim=1, keepdim=True))[torch.arange(n), labels].mean()
    hand = (1 - gamma) * ce + gamma * T * T * pointwise.sum() / (n * c)
    # the public code's expression (utils.KDLoss.loss_fn_kd): nn.KLDivLoss()(log_softmax(z/T), softmax(t/T));
    # its default reduction 'mean' averages over all N x C elements (torch warns that it may change one day)
    with pytest.warns(UserWarning, match="'mean' divides the total loss by both the batch size"):
        kl_public = torch.nn.KLDivLoss()(F.log_softmax(student / T, dim=1), F.softmax(teacher / T, dim=1))
    public = (1 - gamma) * F.cross_entropy(student, labels) + kl_public * gamma * T * T

    losses = one_for_all_losses([student, teacher], lambda z: F.cross_entropy(z, labels), gamma, T)
    assert torch.allclose(losses[0], hand, rtol=1e-12, atol=0)
    assert torch.allclose(losses[0], public, rtol=1e-12, atol=0)
    assert torch.allclose(losses[1], F.cross_entropy(teacher, labels))  # the last exit: CE only
    # the head uses the same default, and the per-sample form is exactly C times heavier in its KL part
    assert MultiExitClsHead._check_ofa(dict(gamma=gamma, temperature=T))['kl_reduction'] == 'mean'
    per_sample = one_for_all_losses([student, teacher], lambda z: F.cross_entropy(z, labels), gamma, T,
                                    kl_reduction='batchmean')
    kl_default, kl_per_sample = losses[0] - (1 - gamma) * ce, per_sample[0] - (1 - gamma) * ce
    assert torch.allclose(kl_per_sample, kl_default * c, rtol=1e-9)


def test_batchmean_keeps_t_squared_so_the_papers_kl_is_c_over_t_squared_times_the_default():
    """docs/imta.md: 'batchmean' is the paper's per-sample KL times T^2 (9x the paper's term at T=3); the paper's
    formula, without T^2, is C / T^2 times the default's term (about 11x on CIFAR-100 at T=3), not C times (100x)."""
    torch.manual_seed(0)
    n, c, gamma, T = 8, 100, 0.9, 3.0
    student, teacher = torch.randn(n, c, dtype=torch.float64) * 2, torch.randn(n, c, dtype=torch.float64) * 2
    labels = torch.randint(0, c, (n, ))
    ce = F.cross_entropy(student, labels)
    log_p_s, log_p_t = F.log_softmax(student / T, dim=1), F.log_softmax(teacher / T, dim=1)
    paper = gamma * (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).mean()  # gamma KL(p_t || p_s), per-sample mean
    terms = {}
    for reduction in ('mean', 'batchmean'):
        loss = one_for_all_losses([student, teacher], lambda z: F.cross_entropy(z, labels), gamma, T,
                                  kl_reduction=reduction)[0]
        terms[reduction] = loss - (1 - gamma) * ce
    assert torch.allclose(terms['batchmean'], paper * T * T, rtol=1e-9)  # 9x the paper's term
    assert torch.allclose(paper / terms['mean'], torch.tensor(c / T**2, dtype=torch.float64), rtol=1e-9)
    assert round((paper / terms['mean']).item(), 1) == 11.1


def _samples(labels):
    return [DataSample().set_gt_label(int(y)) for y in labels]


def test_head_loss_is_the_sum_of_ofa_losses_per_exit():
    model = tiny_model(head=dict(ofa=dict(gamma=0.5, temperature=2.0)))
    feats = model.extract_feat(torch.randn(3, 3, 32, 32))
    labels = torch.tensor([0, 2, 4])
    losses = model.head.loss(feats, _samples(labels))
    assert sorted(losses) == ['loss_exit1', 'loss_exit2', 'loss_exit3']
    expected = one_for_all_losses(model.head(feats), lambda z: F.cross_entropy(z, labels), 0.5, 2.0,
                                  kl_reduction='mean')  # the head's default
    for i, e in enumerate(expected):
        assert torch.allclose(losses[f'loss_exit{i + 1}'], e)


# --- Inline Subnetwork Collaboration ---------------------------------------------------------------------------

@pytest.mark.parametrize('transfer', ['learned', 'identity'])
def test_isc_feeds_each_exit_the_previous_prediction(transfer):
    model = tiny_model(head=dict(isc=dict(transfer=transfer)))
    head = model.head
    assert head.exits[0].transfer is None and not head.exits[0].uses_previous
    extra = 8 if transfer == 'learned' else 5
    assert [e.fc.in_features for e in head.exits] == [8, 8 + extra, 8 + extra]
    feats = [f.detach().requires_grad_() for f in model.extract_feat(torch.randn(2, 3, 32, 32))]
    logits = head(feats)
    # exit 3 depends on block 1's features only through the chain exit1 -> exit2 -> exit3
    (g, ) = torch.autograd.grad(logits[2].sum(), feats[0])
    assert g.abs().sum() > 0


def test_isc_residual_is_identity_transfer_with_gradients_discarded():
    """The paper's ISC as written: exit i+1's logits are its own linear layer's plus exit i's logits, passed by an
    identity whose gradients are discarded."""
    model = tiny_model(head=dict(isc=dict(transfer='residual')))
    head = model.head
    assert head.isc == dict(transfer='residual', detach=True)
    assert all(e.transfer is None for e in head.exits) and [e.fc.in_features for e in head.exits] == [8, 8, 8]
    feats = [f.detach().requires_grad_() for f in model.extract_feat(torch.randn(2, 3, 32, 32))]
    logits = head(feats)
    # residual: z_{i+1} = fc_{i+1}(pooled_{i+1}) + z_i
    z_prev = None
    for i, exit_ in enumerate(head.exits):
        own = exit_.fc(exit_.pooled(feats[i], i))
        expected = own if z_prev is None else own + z_prev
        assert torch.allclose(logits[i], expected, atol=1e-6), i
        z_prev = expected
    # gradients discarded: exit 3's logits send nothing back to the earlier exits' features or parameters
    grads = torch.autograd.grad(logits[2].sum(), feats + [head.exits[0].fc.weight, head.exits[1].fc.weight],
                                allow_unused=True)
    assert all(g is None or g.abs().sum() == 0 for g in grads[:2] + grads[3:])
    assert grads[2].abs().sum() > 0  # its own block's features do get gradients
    with pytest.raises(ValueError, match="transfer='residual' is the paper's identity transfer"):
        tiny_model(head=dict(isc=dict(transfer='residual', detach=False)))


def test_isc_detach_stops_gradients_along_the_inline_path():
    model = tiny_model(head=dict(isc=dict(transfer='learned', detach=True)))
    feats = [f.detach().requires_grad_() for f in model.extract_feat(torch.randn(2, 3, 32, 32))]
    logits = model.head(feats)
    grads = torch.autograd.grad(logits[2].sum(), feats[:2], allow_unused=True)
    assert all(g is None or g.abs().sum() == 0 for g in grads)


# --- Phase II: frozen features, phase-I teacher ----------------------------------------------------------------

def test_phase2_starts_from_a_phase1_checkpoint():
    phase1 = tiny_model()
    state = {f'{k}': v for k, v in phase1.state_dict().items()}
    converted = phase1_to_phase2(state, num_exits=3)
    assert torch.equal(converted['head.teacher_fc.weight'], state['head.exits.2.fc.weight'])
    # the exits' linear layers are kept, to be fine-tuned (not re-initialised)
    assert all(torch.equal(converted[k], v) for k, v in state.items())
    widened = phase1_to_phase2(state, num_exits=3, fc_in_features=[8, 16, 16])
    assert torch.equal(widened['head.exits.1.fc.weight'][:, :8], state['head.exits.1.fc.weight'])
    assert widened['head.exits.1.fc.weight'].shape == (5, 16) and not widened['head.exits.1.fc.weight'][:, 8:].any()
    with pytest.raises(ValueError, match='fewer than the 8'):
        phase1_to_phase2(state, num_exits=3, fc_in_features=[4, 8, 8])

    phase2 = tiny_model(backbone=dict(frozen=True),
                        head=dict(frozen_pre_logits=True, isc=dict(transfer='learned'),
                                  ofa=dict(gamma=0.9, temperature=3.0, teacher='phase1')))
    feats = phase2.extract_feat(torch.randn(2, 3, 32, 32))
    with pytest.raises(RuntimeError, match='set load_from to the phase-I checkpoint'):
        phase2.head.loss(feats, _samples([0, 1]))
    from mmengine.runner.checkpoint import load_state_dict
    load_state_dict(phase2, state)  # the head adapts the phase-I layout while loading
    assert torch.equal(phase2.head.teacher_fc.weight, phase1.head.exits[2].fc.weight)
    for i in range(3):  # fine-tuned from phase I: the pooled-feature columns and the bias are phase I's
        assert torch.equal(phase2.head.exits[i].fc.weight[:, :8], phase1.head.exits[i].fc.weight), i
        assert torch.equal(phase2.head.exits[i].fc.bias, phase1.head.exits[i].fc.bias), i
    with torch.no_grad():  # so phase II starts from phase I's predictions at every exit (ISC columns at zero)
        x = torch.randn(4, 3, 32, 32)
        for z2, z1 in zip(phase2.eval()(x), phase1.eval()(x)):
            assert torch.allclose(z2, z1, atol=1e-5)
    assert torch.equal(phase2.backbone.blocks[1][0].scales[0].conv_normal.layers[0].conv.weight,
                       phase1.backbone.blocks[1][0].scales[0].conv_normal.layers[0].conv.weight)

    # phase II trains only the linear layers and the ISC paths; frozen BN stays in eval mode
    phase2.train()
    trainable = {n for n, p in phase2.named_parameters() if p.requires_grad}
    assert trainable and trainable == {n for n, _ in phase2.named_parameters() if '.fc.' in n or '.transfer.' in n}
    assert not phase2.backbone.blocks[0][0].layers[0].bn.training
    assert not phase2.head.exits[0].pre_logits[0].bn.training
    assert phase2.head.exits[1].transfer[1].training

    # the teacher is the phase-I final exit on the (frozen) features
    x = torch.randn(4, 3, 32, 32)
    feats = phase2.extract_feat(x)
    with torch.no_grad():
        last_pooled = phase2.head._run_exits(feats)[1][-1]
        assert torch.allclose(phase2.head._teacher_logits(last_pooled), phase1.eval()(x)[-1], atol=1e-5)
    losses = phase2.head.loss(feats, _samples([0, 1, 2, 3]))
    sum(losses.values()).backward()
    assert phase2.head.exits[2].fc.weight.grad is not None


def test_phase1_teacher_needs_frozen_features():
    with pytest.raises(ValueError, match='frozen_pre_logits=True'):
        tiny_model(head=dict(ofa=dict(teacher='phase1')))
    with pytest.raises(ValueError, match='backbone.frozen=True'):
        tiny_model(head=dict(frozen_pre_logits=True, ofa=dict(teacher='phase1')))
    with pytest.raises(ValueError, match='Unknown OFA option'):
        tiny_model(head=dict(ofa=dict(gama=0.9)))
    with pytest.raises(ValueError, match='isc.transfer'):
        tiny_model(head=dict(isc=dict(transfer='mlp')))


def test_predictions_carry_every_exit_and_the_chosen_one():
    model = tiny_model(head=dict(predict_exit=1))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits = model(x)
        samples = model.predict(x)
    for n, s in enumerate(samples):
        assert s.exit_scores.shape == (3, 5)
        for i in range(3):
            assert torch.allclose(s.exit_scores[i], F.softmax(logits[i][n], dim=0))
        assert torch.equal(s.pred_score, s.exit_scores[1])  # predict_exit=1: the second exit
    with pytest.raises(ValueError, match='predict_exit=3 is out of range'):
        tiny_model(head=dict(predict_exit=3))
