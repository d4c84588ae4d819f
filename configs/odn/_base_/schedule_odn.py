# The ODN training procedure (spec odn.md, "Training"): warm-up over all depth levels with SGD (momentum 0.9,
# weight decay 5e-4) and a cosine learning rate over the warm-up; then ODNTrainLoop runs the progressive
# expansion, sets the learning rate itself (train_cfg.expansion_lr for depth 1, deeper_lr_factor times it for
# every later depth, x0.6 after 5 epochs without improvement) and fine-tunes at the chosen depth. A dataset
# config sets train_cfg.target and the authors' rates for its dataset (they differ by dataset: 0.001 to 0.1).
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['mmadn'], allow_failed_imports=False)

warmup_epochs = 3

# the warm-up's rate; without train_cfg.expansion_lr the expansion trains at it too
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
# Stepped once per epoch, as the notebooks' CosineAnnealingLR(T_max=warm-up epochs): the 3 warm-up epochs train
# at x1, x0.75, x0.25 of the rate (convert_to_iter_based=True would anneal within epochs, mean x0.5).
# It must end with the warm-up: ODNTrainLoop refuses a scheduler that runs past it (no warm-up: param_scheduler = []).
param_scheduler = dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=warmup_epochs, T_max=warmup_epochs)

train_cfg = dict(
    type='ODNTrainLoop',
    tolerance=0.5,
    warmup_epochs=warmup_epochs,
    patience=23,
    lr_patience=5,
    lr_factor=0.6,
    expansion_lr=None,  # depth 1's rate; None: the optimizer's (warm-up) lr
    deeper_lr_factor=1.0,  # depths 2, 3, ... start at this multiple of depth 1's rate (the notebooks: 0.5)
    # as the public code (measured against False on the dotted-lines demo in docs/odn.md: neither is better
    # throughout); False continues each new depth from the weights the previous one ended with (the paper's reading)
    restart_from_warmup=True,
    metric='accuracy/top1',
    max_epochs=1000)  # safety cap: the procedure ends by itself
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    # the epoch checkpoints are for --resume; ODNTrainLoop keeps best_depth{d}.pth of the current depth
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2))

# one depth is trained at a time, so other levels get no gradient (distributed training needs this)
find_unused_parameters = True

auto_scale_lr = dict(base_batch_size=128)
