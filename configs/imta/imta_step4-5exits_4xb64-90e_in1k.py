# IMTA phase II on ImageNet: ISC + OFA (gamma 0.1, T 1, the KL averaged over samples and classes as the public
# code's nn.KLDivLoss()) on the frozen phase-I MSDNet, the exits' linear layers fine-tuned, 90 epochs, as the
# public code's run_IMTA.sh.
_base_ = ['./msdnet-ge_step4-5exits_4xb64-90e_in1k.py']

model = dict(
    backbone=dict(frozen=True),
    head=dict(
        frozen_pre_logits=True,
        isc=dict(transfer='learned', detach=False),
        ofa=dict(gamma=0.1, temperature=1.0, teacher='phase1', kl_reduction='mean')))
load_from = 'work_dirs/msdnet-ge_step4-5exits_4xb64-90e_in1k/epoch_90.pth'
