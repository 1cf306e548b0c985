"""A model that is loaded only when something must be computed with it.

Its identity (the checkpoint files' hashes, memoised by path, size and modification time, plus the
device, precision and clipaudit version) keys a memo of its :class:`ModelInfo` in the cache, and
the text cache records each prompt's token count: so an audit whose every image and text
embedding is cached checks its taxonomy, scores and writes its manifest without loading the model
(nor importing torch or transformers).
"""
from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

from clipaudit.embed.engine import cached_token_counts
from clipaudit.files import atomic_write_bytes, cache_key
from clipaudit.models.base import ModelInfo
from clipaudit.models.checkpoint_files import known_files_sha256
from clipaudit.models.devices import resolve_device, resolve_dtype
from clipaudit.version import __version__

MODEL_MEMO_FORMAT = 1


class LazyModel:
    """The ZeroShotModel protocol over a model loaded on first use; ``info`` from the memo when known."""

    def __init__(self, load: Callable[[], object], *, cache_dir: Path, identity: str | None = None):
        self._load = load
        self._model = None
        self._cache_dir = Path(cache_dir)
        self._memo_path = Path(cache_dir) / "model-info" / f"{identity}.json" if identity else None
        self._info = _read_info(self._memo_path) if self._memo_path else None
        self._token_counts: Callable[[str], int | None] | None = None
        self.load_seconds = 0.0

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def info(self) -> ModelInfo:
        if self._info is None:
            self.model()
        return self._info

    def model(self):
        """The loaded model (loading it now if it is not yet)."""
        if self._model is None:
            started = time.perf_counter()
            self._model = self._load()
            self.load_seconds += time.perf_counter() - started
            if self._info is None:
                self._info = self._model.info
                self._remember_info()
        return self._model

    def count_tokens(self, prompt: str) -> int:
        """From the text cache where the prompt was embedded before, else from the tokenizer."""
        if self._model is None:
            if self._token_counts is None:
                self._token_counts = cached_token_counts(self._cache_dir, self.info)
            known = self._token_counts(prompt)
            if known is not None:
                return known
        return self.model().count_tokens(prompt)

    def __getattr__(self, name: str):
        # Everything else (preprocess, encode_images, encode_texts, ...) needs the model itself.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.model(), name)

    def _remember_info(self) -> None:
        if self._memo_path is None:
            return
        try:
            atomic_write_bytes(self._memo_path, json.dumps(dataclasses.asdict(self._info)).encode())
        except OSError:
            pass  # a memo only saves a load next time


def open_model(spec: str, *, device: str, dtype: str, cache_dir: Path, trust_remote_code: bool,
               load: Callable[[], object], compile: bool = False) -> LazyModel:
    """``spec`` as a LazyModel whose ``load()`` runs only when needed; where the checkpoint's files are
    not known without loading (open_clip pretrained tags, hub ids while online) it is loaded at once."""
    identity = model_identity(spec, device=device, dtype=dtype, cache_dir=cache_dir,
                              trust_remote_code=trust_remote_code, compile=compile)
    model = LazyModel(load, cache_dir=cache_dir, identity=identity)
    if identity is None:
        model.model()
    return model


def model_identity(spec: str, *, device: str, dtype: str, cache_dir: Path, trust_remote_code: bool,
                   compile: bool = False) -> str | None:
    """A key naming everything a loaded model's info depends on, or None when only loading can tell."""
    files = known_files_sha256(spec, cache_dir=cache_dir)
    if files is None:
        return None
    device = resolve_device(device)
    # open_clip and torchvision decide whether an open_clip: spec runs through open_clip or is converted.
    return cache_key(format=MODEL_MEMO_FORMAT, clipaudit=__version__, transformers=_installed("transformers"),
                     torch=_installed("torch"), open_clip=_installed("open_clip_torch"),
                     torchvision=_installed("torchvision"), spec=spec, device=device,
                     dtype=resolve_dtype(dtype, device), trust_remote_code=trust_remote_code, compile=compile,
                     files=files)


def _installed(distribution: str) -> str | None:
    """A library's installed version, read from its metadata (importing transformers takes seconds)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _read_info(path: Path) -> ModelInfo | None:
    try:
        return ModelInfo(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
