"""clipaudit: fairness and bias audits for CLIP-style zero-shot image classifiers.

The few names most users need; each is imported on first use, so that `import clipaudit`
stays cheap and the statistics side never pulls in torch.
"""
from __future__ import annotations

import importlib

from clipaudit.version import __version__

_EXPORTS = {
    "AuditOptions": "clipaudit.audit",
    "run_audit": "clipaudit.audit",
    "load_taxonomy": "clipaudit.taxonomy",
    "Taxonomy": "clipaudit.taxonomy",
    "load_dataset": "clipaudit.data",
    "load_model": "clipaudit.models",
    "StatsSettings": "clipaudit.stats",
    "compute_statistics": "clipaudit.stats",
    "group_table": "clipaudit.stats",
    "render_report": "clipaudit.report",
    "run_sweep": "clipaudit.sweep",
    "run_compare": "clipaudit.compare",
    "ClipauditError": "clipaudit.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clipaudit' has no attribute {name!r}")
