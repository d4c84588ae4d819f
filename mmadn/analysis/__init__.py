from .benchmark import QUALITY_KEYS, RuntimeTarget, canonical_skips, measure_subnets, recalibration_batches
from .measure import (DepthCheck, active_parameters, active_weight_bytes, check_depths, count_flops, pareto_front,
                      runs_blocks_of)
from .report import write_report

__all__ = [
    'active_parameters', 'active_weight_bytes', 'count_flops', 'pareto_front', 'check_depths', 'runs_blocks_of',
    'DepthCheck', 'write_report', 'QUALITY_KEYS', 'canonical_skips', 'measure_subnets', 'recalibration_batches',
    'RuntimeTarget'
]
