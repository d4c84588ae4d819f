# GE + ISC + OFA in a single phase on the generated data: the last exit, detached, teaches the earlier ones.
_base_ = ['./msdnet-ge_tiny-4exits_synthetic.py']

model = dict(
    head=dict(
        isc=dict(transfer='learned', detach=False),
        ofa=dict(gamma=0.9, temperature=3.0, teacher='last_exit', kl_reduction='mean')))
