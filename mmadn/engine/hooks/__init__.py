from .adn_distill_hook import ADNDistillHook
from .atomic_checkpoint_hook import AtomicCheckpointHook, AtomicLocalBackend

__all__ = ['ADNDistillHook', 'AtomicCheckpointHook', 'AtomicLocalBackend']
