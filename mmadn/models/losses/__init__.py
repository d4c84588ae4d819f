from .kl_divergence import FEATURE_MODES, feature_kl, logits_kl

__all__ = ['FEATURE_MODES', 'feature_kl', 'logits_kl']
