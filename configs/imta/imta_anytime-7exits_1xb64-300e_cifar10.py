# IMTA phase II on CIFAR-10: ISC + OFA (gamma 0.9, T 3) on the frozen phase-I model.
_base_ = ['./msdnet-ge_anytime-7exits_1xb64-300e_cifar10.py']

model = dict(
    backbone=dict(frozen=True),
    head=dict(
        frozen_pre_logits=True,
        isc=dict(transfer='learned', detach=False),
        ofa=dict(gamma=0.9, temperature=3.0, teacher='phase1')))
load_from = 'work_dirs/msdnet-ge_anytime-7exits_1xb64-300e_cifar10/epoch_300.pth'
