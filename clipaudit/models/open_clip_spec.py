"""What an ``open_clip:ARCH:PRETRAINED_TAG`` or ``open_clip:ARCH:FILE`` spec names, read without torch:
the architecture, the tag or checkpoint file, and the files beside a checkpoint that loading it reads."""
from __future__ import annotations

from pathlib import Path

from clipaudit.errors import ModelError

OPEN_CLIP_PREFIX = "open_clip:"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
LOCAL_CONFIG = "open_clip_config.json"
# Beside a checkpoint file: its configuration and the tokenizer files transformers' CLIP tokenizer reads.
FILES_READ_BESIDE = (LOCAL_CONFIG, "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                     "added_tokens.json", "vocab.json", "merges.txt")


def parse_spec(spec: str) -> tuple[str, str]:
    """``open_clip:ARCH:TAG_OR_FILE`` -> (ARCH, TAG_OR_FILE); one line naming the form otherwise."""
    arch, _, source = spec.removeprefix(OPEN_CLIP_PREFIX).partition(":")
    if not arch or not source:
        raise ModelError(f"--model {spec!r}: expected open_clip:ARCH:PRETRAINED_TAG or open_clip:ARCH:FILE "
                         "(e.g. open_clip:ViT-B-32:laion2b_s34b_b79k or open_clip:ViT-L-14:/models/ckpt.safetensors)")
    return arch, source


def is_file_source(source: str) -> bool:
    return "/" in source or "\\" in source or source.endswith(CHECKPOINT_SUFFIXES) or Path(source).is_file()


def checkpoint_file(spec: str) -> Path | None:
    """The local checkpoint file an ``open_clip:ARCH:FILE`` spec names (None for a tag or a bad spec)."""
    try:
        _, source = parse_spec(spec)
    except ModelError:
        return None
    if not is_file_source(source):
        return None
    path = Path(source).expanduser()
    return path if path.is_file() else None
