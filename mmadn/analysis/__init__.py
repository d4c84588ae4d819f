from .measure import active_parameters, count_flops, measure_latency, pareto_front, peak_memory
from .report import write_report

__all__ = ['active_parameters', 'count_flops', 'measure_latency', 'peak_memory', 'pareto_front', 'write_report']
