# IMTA phase I on CIFAR-10, budgeted setting: 5 exits, linear growth, step 1, base 1.
_base_ = ['./msdnet-ge_anytime-7exits_1xb64-300e_cifar10.py']

model = dict(backbone=dict(arch='cifar-budgeted'))
