"""IMTA: multi-exit MSDNet with gradient equilibrium, ISC and OFA distillation (spec: imta.md)."""
