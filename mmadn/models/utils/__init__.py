from .backbone_handoff import check_backbone_fits, classifier_backbone_state
from .adaptive_depth import AdaptiveDepthMixin, all_skips, parse_skip, skip_to_str
from .feature_recorder import FeatureRecorder
from .recalibration import recalibrate_norms, recalibrated
from .skippable import BlockGroup, SkippableStage, SwitchableNorm, num_mandatory_blocks
from .subnet import adaptive_backbones, set_subnet, subnet

__all__ = [
    'AdaptiveDepthMixin', 'parse_skip', 'skip_to_str', 'all_skips', 'adaptive_backbones', 'set_subnet',
    'subnet', 'recalibrate_norms', 'recalibrated', 'classifier_backbone_state', 'check_backbone_fits',
    'FeatureRecorder', 'SkippableStage', 'SwitchableNorm', 'BlockGroup', 'num_mandatory_blocks'
]
