# IMTA phase I on CIFAR-100, budgeted setting: 5 exits, linear growth, step 1, base 1 (IMTA Table 1 uses the
# same with 7 exits: --cfg-options model.backbone.num_exits=7).
_base_ = ['./msdnet-ge_anytime-7exits_1xb64-300e_cifar100.py']

model = dict(backbone=dict(arch='cifar-budgeted'))
