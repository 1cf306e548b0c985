"""The embedding engine: image and text embeddings, computed once and cached on disk in shards.

Names are imported on first use: the command line's parser reads :mod:`clipaudit.embed.shards`
(through :mod:`clipaudit.embed.parts`) without pulling in the engine (pandas, PIL) for every command.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "ImageEmbeddings": "clipaudit.embed.engine",
    "embed_images": "clipaudit.embed.engine",
    "embed_texts": "clipaudit.embed.engine",
    "image_cache_folder": "clipaudit.embed.engine",
    "text_cache_path": "clipaudit.embed.engine",
    "LazyModel": "clipaudit.embed.lazy_model",
    "open_model": "clipaudit.embed.lazy_model",
    "SHARD_IMAGES": "clipaudit.embed.parts",
    "Part": "clipaudit.embed.parts",
    "parse_part": "clipaudit.embed.parts",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clipaudit.embed' has no attribute {name!r}")
