"""clipaudit: fairness and bias audits for CLIP-style zero-shot image classifiers."""
from __future__ import annotations

__version__ = "0.1.0"
