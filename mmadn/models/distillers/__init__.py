from .feature_sources import ModuleOutput, RoILogits
from .sub_path_distillation import SubPathDistillation, default_distill_features

__all__ = ['ModuleOutput', 'RoILogits', 'SubPathDistillation', 'default_distill_features']
