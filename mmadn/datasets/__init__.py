from .glyph_clutter import GLYPH_CLASSES, make_glyph_clutter
from .photo_objects import PHOTO_CLASSES, make_photo_objects
from .scene_coco import SceneSplits
from .synthetic_coco import DET_CLASSES, make_coco_instances, make_instance_crops
from .synthetic_digits import DIGITS, make_digits_folder
from .synthetic_shapes import SHAPES, draw_shape, make_classification_folder

__all__ = [
    'SHAPES', 'DET_CLASSES', 'DIGITS', 'draw_shape', 'make_classification_folder', 'make_coco_instances', 'make_instance_crops',
    'make_digits_folder', 'GLYPH_CLASSES', 'make_glyph_clutter', 'PHOTO_CLASSES', 'make_photo_objects',
    'SceneSplits'
]
