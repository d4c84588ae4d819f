# CIFAR-10 in mmpretrain's format under data/cifar10, 5000 training images held out (see cifar100_holdout_bs64).
_base_ = ['./cifar100_holdout_bs64.py']

dataset_type = 'CIFAR10'
data_root = 'data/cifar10'
data_preprocessor = dict(num_classes=10, mean=[125.307, 122.961, 113.8575], std=[51.5865, 50.847, 51.255])
train_dataloader = dict(dataset=dict(dataset=dict(type=dataset_type, data_root=data_root)))
holdout_dataloader = dict(dataset=dict(dataset=dict(type=dataset_type, data_root=data_root)))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
