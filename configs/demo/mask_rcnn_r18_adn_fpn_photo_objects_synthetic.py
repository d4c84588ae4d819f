# The demo detector (mask_rcnn_r18_adn_fpn_synthetic.py: Mask R-CNN, ResNet-18-ADN, 160x160, Algorithm 1, same
# schedule and backbone hand-over) on the photo-object set (tools/misc/make_photo_objects.py -> data/photo_objects/):
# nine classes of real photo content (scikit-image's sample photographs) pasted on real textures, 12-88 pixels, with
# occlusion and unlabelled texture distractors. Only the data and the number of classes change: the objects span
# about the shapes' scales, so the demo's anchors (scales=[4]: 16-256 pixels over the five FPN levels) still fit.
_base_ = './mask_rcnn_r18_adn_fpn_synthetic.py'

data_root = 'data/photo_objects/'
classes = ('astronaut', 'cat', 'coffee', 'motorcycle', 'rocket', 'cameraman', 'coin', 'face', 'horse')
metainfo = dict(classes=classes)

model = dict(roi_head=dict(bbox_head=dict(num_classes=len(classes)), mask_head=dict(num_classes=len(classes))))

# the base's data_root was substituted into its dataloaders when it was parsed: name ours explicitly
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
