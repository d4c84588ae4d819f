# IMTA phase II on CIFAR-10 (6 exits): ISC + OFA (gamma 0.9, T 3, public-code KL normalisation) on the frozen
# phase-I model, the exits' linear layers fine-tuned; 180 epochs, lr / 10 at 90 and 135, Nesterov.
_base_ = ['./msdnet-ge_budgeted-6exits_1xb64-300e_cifar10.py']

model = dict(
    backbone=dict(frozen=True),
    head=dict(
        frozen_pre_logits=True,
        isc=dict(transfer='learned', detach=False),
        ofa=dict(gamma=0.9, temperature=3.0, teacher='phase1', kl_reduction='mean')))
param_scheduler = dict(milestones=[90, 135])
train_cfg = dict(max_epochs=180)
load_from = 'work_dirs/msdnet-ge_budgeted-6exits_1xb64-300e_cifar10/epoch_300.pth'
