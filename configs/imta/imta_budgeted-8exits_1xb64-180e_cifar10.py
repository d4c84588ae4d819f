# IMTA phase II on CIFAR-10 with 8 exits: ISC + OFA on the frozen phase-I model.
_base_ = ['./imta_budgeted-6exits_1xb64-180e_cifar10.py']

model = dict(backbone=dict(num_exits=8))
load_from = 'work_dirs/msdnet-ge_budgeted-8exits_1xb64-300e_cifar10/epoch_300.pth'
