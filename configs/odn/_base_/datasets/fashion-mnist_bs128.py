# Fashion-MNIST: same layout and split as MNIST (50k train / 10k validation / 10k test); uncompressed idx files
# in data/fashion_mnist.
_base_ = ['./mnist_bs128.py']

dataset_type = 'FashionMNIST'
data_root = 'data/fashion_mnist'

data_preprocessor = dict(mean=[72.94], std=[90.02])

train_pipeline = [
    dict(type='RandomCrop', crop_size=28, padding=2),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]

train_images = dict(type=dataset_type, data_root=data_root, split='train', test_mode=False, download=False)

train_dataloader = dict(dataset=dict(dataset=dict(**train_images, pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(dataset=dict(**train_images, pipeline={{_base_.test_pipeline}})))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
