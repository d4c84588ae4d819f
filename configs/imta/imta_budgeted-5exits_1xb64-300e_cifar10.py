# IMTA phase II on CIFAR-10, budgeted setting (5 exits, linear growth): ISC + OFA on the frozen phase-I model.
_base_ = ['./imta_anytime-7exits_1xb64-300e_cifar10.py']

model = dict(backbone=dict(arch='cifar-budgeted'))
load_from = 'work_dirs/msdnet-ge_budgeted-5exits_1xb64-300e_cifar10/epoch_300.pth'
