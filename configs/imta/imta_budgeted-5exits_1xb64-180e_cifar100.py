# IMTA phase II on CIFAR-100, budgeted setting (5 exits, linear growth): ISC + OFA on the frozen phase-I model.
_base_ = ['./imta_anytime-7exits_1xb64-180e_cifar100.py']

model = dict(backbone=dict(num_exits=5))
load_from = 'work_dirs/msdnet-ge_budgeted-5exits_1xb64-300e_cifar100/epoch_300.pth'
