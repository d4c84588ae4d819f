from .adn_distill_hook import ADNDistillHook

__all__ = ['ADNDistillHook']
