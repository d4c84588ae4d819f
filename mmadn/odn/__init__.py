"""ODN: progressive depth expansion to the optimal depth (spec: odn.md)."""
