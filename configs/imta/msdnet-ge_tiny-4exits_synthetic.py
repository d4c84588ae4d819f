# IMTA phase I on the generated data: the tiny MSDNet with Gradient Equilibrium.
_base_ = ['./msdnet_tiny-4exits_synthetic.py']

model = dict(backbone=dict(gradient_equilibrium=True))
