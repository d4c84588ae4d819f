# ODN's expansion shown on 2 CPU cores in minutes: generated dotted lines whose orientation (4 classes) needs
# more receptive field than one or two residual blocks have (mmadn/odn/dotted_lines.py), so the run deepens,
# then stops by itself once a depth reaches the target:
#   python tools/odn/make_dotted_lines.py data/dotted_lines
#   OMP_NUM_THREADS=1 python tools/train.py configs/odn/odn_resnet18_dotted-lines.py
#   python tools/odn/plot_expansion.py work_dirs/odn_resnet18_dotted-lines \
#       --out work_dirs/odn_resnet18_dotted-lines/expansion.png
# The quick-start config (quarter-width ResNet-18, no random augmentation, fixed seed, one rate of 0.05 for every
# phase: see there why not a notebook's) on this data.
_base_ = './odn_resnet18_synthetic.py'

data_root = 'data/dotted_lines'

model = dict(head=dict(head=dict(num_classes=4)))
data_preprocessor = dict(num_classes=4, mean=[45.0, 45.0, 45.0], std=[45.0, 45.0, 45.0])

train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

train_cfg = dict(target=90.0, patience=5, lr_patience=2, max_epochs=150)
