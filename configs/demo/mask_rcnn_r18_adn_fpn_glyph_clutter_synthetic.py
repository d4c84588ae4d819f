# The demo detector (mask_rcnn_r18_adn_fpn_synthetic.py: Mask R-CNN, ResNet-18-ADN, 160x160, Algorithm 1, same
# schedule and backbone hand-over) on the glyph-clutter set (tools/misc/make_glyph_clutter.py -> data/glyph_clutter/):
# twelve letter / digit classes, 4-16 glyphs of 8-28 pixels per image among distractor glyphs and strokes.
# What the data needs beyond its classes:
# - anchors of half the demo's size (scales=[2]: 8-128 pixels over the five FPN levels), as the glyphs are 8-28
#   pixels tall where the shapes are 16-80;
# - room for more detections (up to 16 objects per image against the shapes' 6);
# - no horizontal flip: a mirrored S, Z, R or 4 is no glyph of the set.
_base_ = './mask_rcnn_r18_adn_fpn_synthetic.py'

data_root = 'data/glyph_clutter/'
classes = ('A', 'B', 'E', 'H', 'K', 'M', 'R', 'S', 'X', 'Z', '3', '4')
metainfo = dict(classes=classes)
img_scale = (160, 160)

model = dict(
    rpn_head=dict(anchor_generator=dict(scales=[2])),
    roi_head=dict(bbox_head=dict(num_classes=len(classes)), mask_head=dict(num_classes=len(classes))),
    test_cfg=dict(rpn=dict(max_per_img=100), rcnn=dict(max_per_img=40)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='PackDetInputs'),
]
# the base's data_root was substituted into its dataloaders when it was parsed: name ours explicitly
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
