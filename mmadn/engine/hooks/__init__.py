from .adn_distill_hook import ADNDistillHook
from .atomic_checkpoint_hook import AtomicCheckpointHook, AtomicLocalBackend, find_resume_checkpoint

__all__ = ['ADNDistillHook', 'AtomicCheckpointHook', 'AtomicLocalBackend', 'find_resume_checkpoint']
