# MNIST (mmpretrain's MNIST dataset): the 60k training images split 50k train / 10k validation (the spec's
# split, fixed by the seed), the 10k test images for the final test. Put the four uncompressed idx files
# (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte) in data/mnist.
dataset_type = 'MNIST'
data_root = 'data/mnist'

data_preprocessor = dict(num_classes=10, mean=[33.46], std=[78.87])  # 1-channel 28x28 images

train_pipeline = [dict(type='RandomCrop', crop_size=28, padding=2), dict(type='PackInputs')]
test_pipeline = [dict(type='PackInputs')]

train_images = dict(type=dataset_type, data_root=data_root, split='train', test_mode=False, download=False)

train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='KFoldDataset',
        dataset=dict(**train_images, pipeline=train_pipeline),
        num_splits=6,
        fold=0,
        test_mode=False,
        seed=0))
val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='KFoldDataset',
        dataset=dict(**train_images, pipeline=test_pipeline),
        num_splits=6,
        fold=0,
        test_mode=True,
        seed=0))
test_dataloader = dict(
    batch_size=256,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type, data_root=data_root, split='test', test_mode=True, download=False,
        pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
