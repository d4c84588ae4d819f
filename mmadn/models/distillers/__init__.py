from .sub_path_distillation import SubPathDistillation, default_distill_features

__all__ = ['SubPathDistillation', 'default_distill_features']
