# IMTA phase II on the generated data: the phase-I model (msdnet-ge_tiny-4exits_synthetic.py) frozen, the exits'
# linear layers fine-tuned with ISC, trained with OFA from the phase-I final exit.
#   python tools/train.py configs/imta/imta_tiny-4exits_synthetic.py
_base_ = ['./msdnet-ge_tiny-4exits_synthetic.py']

model = dict(
    backbone=dict(frozen=True),
    head=dict(
        frozen_pre_logits=True,
        isc=dict(transfer='learned', detach=False),
        ofa=dict(gamma=0.9, temperature=3.0, teacher='phase1', kl_reduction='mean')))
param_scheduler = dict(milestones=[2, 3])
train_cfg = dict(max_epochs=4, val_interval=4)
load_from = 'work_dirs/msdnet-ge_tiny-4exits_synthetic/epoch_8.pth'
