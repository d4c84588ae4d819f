# IMTA phase I on CIFAR (one GPU, batch 64): SGD with Nesterov momentum 0.9 (the paper; the public code's
# main_GE.py passes no nesterov flag), lr 0.1, wd 1e-4, 300 epochs, lr / 10 at 50 % and 75 % (150, 225).
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[150, 225], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=64)
