# IMTA phase II on CIFAR-100: the phase-I backbone and classifier convs are frozen; new linear layers with Inline
# Subnetwork Collaboration (learned transfer path) are trained with One-for-all distillation (gamma 0.9, T 3),
# the teacher being the phase-I final exit.
#   python tools/train.py configs/imta/imta_anytime-7exits_1xb64-300e_cifar100.py
# Evaluate (anytime + budgeted): python tools/imta/evaluate_budgets.py CONFIG CKPT --out-dir DIR
_base_ = ['./msdnet-ge_anytime-7exits_1xb64-300e_cifar100.py']

model = dict(
    backbone=dict(frozen=True),
    head=dict(
        frozen_pre_logits=True,
        isc=dict(transfer='learned', detach=False),
        ofa=dict(gamma=0.9, temperature=3.0, teacher='phase1')))

# the phase-I checkpoint; its final linear layer becomes the frozen OFA teacher
load_from = 'work_dirs/msdnet-ge_anytime-7exits_1xb64-300e_cifar100/epoch_300.pth'
