"""A checkpoint identified by its files: the sha256 of each file a transformers checkpoint folder
holds (weights, config, image processor and tokenizer files), or of an open_clip checkpoint file and
the files beside it that loading reads, memoised in the cache by path, size and modification time,
so that a second run hashes nothing and needs no model loaded to know which weights it would use."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from pathlib import Path

from clipaudit.files import DigestMemo, file_sha256
from clipaudit.models.demo import DEMO_MODEL_SPEC, demo_model_dir
from clipaudit.models.open_clip_spec import FILES_READ_BESIDE, OPEN_CLIP_PREFIX, checkpoint_file

# Weights of other frameworks, which transformers' PyTorch classes never read.
OTHER_FRAMEWORK_FILES = ("flax_model", "tf_model", "rust_model")
OTHER_FRAMEWORK_SUFFIXES = (".msgpack", ".h5", ".onnx", ".ot", ".mlmodel")
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def known_files_sha256(spec: str, *, cache_dir: Path | None) -> str | None:
    """The digest of the files a spec loads, when they are known without loading it: a transformers
    folder (:func:`checkpoint_folder`) or an ``open_clip:ARCH:FILE`` checkpoint; None otherwise."""
    if spec.startswith(OPEN_CLIP_PREFIX):
        file = checkpoint_file(spec)
        if file is None:
            return None  # a pretrained tag: open_clip resolves (and may download) it when loading
        return checkpoint_files_sha256(file.parent, cache_dir=cache_dir, only={file.name, *FILES_READ_BESIDE})
    folder = checkpoint_folder(spec)
    return None if folder is None else checkpoint_files_sha256(folder, cache_dir=cache_dir)


def checkpoint_folder(spec: str) -> Path | None:
    """The folder whose files a transformers spec loads, when it is known without loading: 'demo',
    a local folder, or a hub id already in the local hub cache while the hub is switched off
    (``HF_HUB_OFFLINE=1``; online, transformers may fetch a newer revision, so the model is loaded)."""
    if spec == DEMO_MODEL_SPEC:
        return demo_model_dir()
    if spec.startswith(OPEN_CLIP_PREFIX):
        return None
    folder = Path(spec).expanduser()
    if folder.is_dir():
        return folder
    if any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on") for name in OFFLINE_VARIABLES):
        return hub_snapshot_folder(spec, revision=None)
    return None


def hub_snapshot_folder(spec: str, *, revision: str | None) -> Path | None:
    """The local hub cache's snapshot folder of ``spec`` at ``revision`` (None: the cached main), if any."""
    if spec.count("/") > 1 or not spec.strip():
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(spec, "config.json", revision=revision)
    except (ImportError, ValueError, OSError):
        return None
    return Path(found).parent if isinstance(found, str) else None


def checkpoint_files_sha256(folder: Path, *, cache_dir: Path | None, only: Collection[str] | None = None) -> str:
    """sha256 over the name and content digest of every file of the checkpoint folder (of those
    named in ``only``, when given)."""
    memo = DigestMemo(cache_dir, folder)
    digest = hashlib.sha256(b"clipaudit-checkpoint-files-v1\n")
    for path in sorted(Path(folder).iterdir()):
        # Named files are hashed whatever their name looks like ('.epoch3.pt', 'tf_model_ft.pt').
        wanted = _is_checkpoint_file(path) if only is None else path.name in only and path.is_file()
        if not wanted:
            continue
        digest.update(path.name.encode("utf-8") + b"\0")
        digest.update(bytes.fromhex(file_sha256(path, memo)))
    memo.save()
    return digest.hexdigest()


def checkpoint_file_sha256(path: Path, *, cache_dir: Path | None) -> str:
    """sha256 of one checkpoint file, memoised like the folders' files."""
    memo = DigestMemo(cache_dir, Path(path).parent)
    digest = file_sha256(path, memo)
    memo.save()
    return digest


def _is_checkpoint_file(path: Path) -> bool:
    name = path.name
    if name.startswith(".") or not path.is_file():
        return False
    return not (name.startswith(OTHER_FRAMEWORK_FILES) or name.endswith(OTHER_FRAMEWORK_SUFFIXES))
