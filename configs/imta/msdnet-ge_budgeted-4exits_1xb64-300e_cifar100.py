# IMTA phase I on CIFAR-100, budgeted setting: the IMTA paper's network (linear growth, step 1, base 1) with 4 exits.
_base_ = ['./msdnet-ge_anytime-7exits_1xb64-300e_cifar100.py']

model = dict(backbone=dict(num_exits=4))
