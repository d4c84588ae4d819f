from .kl_divergence import FEATURE_MODES, KL_REDUCTIONS, feature_kl, logits_kl

__all__ = ['FEATURE_MODES', 'KL_REDUCTIONS', 'feature_kl', 'logits_kl']
