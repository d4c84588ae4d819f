from .controller import CallRecord, DeadlineController
from .detector_export import DeployableDetector, export_detector
from .export_subnet import export_backbone, export_model
from .selection import Budget, Selection, load_table, select_subnet

__all__ = [
    'export_backbone', 'export_model', 'Budget', 'Selection', 'load_table', 'select_subnet', 'DeadlineController',
    'CallRecord', 'DeployableDetector', 'export_detector'
]
