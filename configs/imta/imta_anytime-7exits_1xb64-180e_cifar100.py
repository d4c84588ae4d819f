# IMTA phase II on CIFAR-100: the phase-I backbone and classifier convs are frozen; the exits' linear layers are
# fine-tuned from phase I (widened for the ISC input, whose columns start at zero) together with the learned ISC
# paths, by One-for-all distillation (gamma 0.9, T 3, the KL averaged over samples and classes as the public
# code's nn.KLDivLoss()), the teacher being the phase-I final exit. 180 epochs, lr / 10 at 90 and 135, Nesterov.
#   python tools/train.py configs/imta/imta_anytime-7exits_1xb64-180e_cifar100.py
# Evaluate (anytime + budgeted): python tools/imta/evaluate_budgets.py CONFIG CKPT --out-dir DIR
_base_ = ['./msdnet-ge_anytime-7exits_1xb64-300e_cifar100.py']

model = dict(
    backbone=dict(frozen=True),
    head=dict(
        frozen_pre_logits=True,
        isc=dict(transfer='learned', detach=False),
        ofa=dict(gamma=0.9, temperature=3.0, teacher='phase1', kl_reduction='mean')))
param_scheduler = dict(milestones=[90, 135])
train_cfg = dict(max_epochs=180)

# the phase-I checkpoint; its final linear layer also becomes the frozen OFA teacher
load_from = 'work_dirs/msdnet-ge_anytime-7exits_1xb64-300e_cifar100/epoch_300.pth'
