from .export_subnet import export_backbone, export_model

__all__ = ['export_backbone', 'export_model']
