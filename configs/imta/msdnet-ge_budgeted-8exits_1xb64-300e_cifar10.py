# IMTA phase I on CIFAR-10 with 8 exits (linear growth, step 1, base 1).
_base_ = ['./msdnet-ge_budgeted-6exits_1xb64-300e_cifar10.py']

model = dict(backbone=dict(num_exits=8))
