from .feature_recorder import FeatureRecorder
from .sub_path_distillation import SubPathDistillation, default_distill_features

__all__ = ['FeatureRecorder', 'SubPathDistillation', 'default_distill_features']
