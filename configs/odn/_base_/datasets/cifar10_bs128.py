# CIFAR-10 (mmpretrain's CIFAR10 dataset, the python version extracted in data/cifar10/cifar-10-batches-py):
# the 50k training images split 45k train / 5k validation (the spec's split, fixed by the seed), the 10k test
# images for the final test.
_base_ = ['mmpretrain::_base_/datasets/cifar10_bs16.py']

train_images = dict(type='CIFAR10', data_root='data/cifar10', split='train', download=False)

train_dataloader = dict(
    batch_size=128,
    dataset=dict(
        _delete_=True,
        type='KFoldDataset',
        dataset=dict(**train_images, pipeline={{_base_.train_pipeline}}),
        num_splits=10,
        fold=0,
        test_mode=False,
        seed=0))
val_dataloader = dict(
    batch_size=256,
    dataset=dict(
        _delete_=True,
        type='KFoldDataset',
        dataset=dict(**train_images, pipeline={{_base_.test_pipeline}}),
        num_splits=10,
        fold=0,
        test_mode=True,
        seed=0))
test_dataloader = dict(
    batch_size=256,
    dataset=dict(type='CIFAR10', data_root='data/cifar10', split='test', download=False,
                 pipeline={{_base_.test_pipeline}}))
