# IMTA on ImageNet, both phases (batch 256 = 4 GPUs x 64): SGD with Nesterov momentum 0.9 (the paper; the public
# code passes no nesterov flag), lr 0.1, wd 1e-4, 90 epochs, lr / 10 every 30.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=90, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=256)
