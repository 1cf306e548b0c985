"""An image's bytes, read once: their digest (what the dataset fingerprint is made of), whether
they are an image at all, and the picture they decode to.

The encoder's decode workers and the fingerprint pass use the same rules from here, so a
fingerprint assembled from the workers' reads equals the one a separate pass would compute.
"""
from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Iterable
from typing import NamedTuple

from PIL import Image, UnidentifiedImageError

from clipaudit.data.pixels import as_upright_rgb
from clipaudit.errors import UnreadableImage

# Bump when the bytes fed to the fingerprint hash change meaning, so caches never match
# across layouts.
FINGERPRINT_FORMAT = 1

# Problems named by find_bad_images(); the CLI shows them as "a.jpg (missing)".
MISSING = "missing"
NOT_AN_IMAGE = "not an image"

# Decoding errors PIL raises for files that are not (complete, supported) images; hostile
# files reach the less usual ones (struct.error, EOFError, IndexError, ...) too.
DECODE_ERRORS = (
    UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
    struct.error, EOFError, IndexError, KeyError, TypeError, ZeroDivisionError,
)


class ImageRead(NamedTuple):
    """One read of one image: the digest of the bytes read, and the picture, or why there is none."""

    digest: bytes                        # sha256 of the bytes, or of the reason they could not be read
    image: Image.Image | None            # upright 8-bit RGB; None when unreadable
    error: UnreadableImage | None        # why not
    bytes_read: bool                     # the bytes were read (so their verdict can be memoised)


class ImageDigest(NamedTuple):
    """What an encoder's read tells of row ``row``'s file, for the digest memo and the fingerprint."""

    row: int
    digest: bytes
    problem: str | None      # the reason it could not be used, or None
    bytes_read: bool


def image_digest(encoded: bytes) -> bytes:
    return hashlib.sha256(encoded).digest()


def unreadable_digest(error: UnreadableImage) -> bytes:
    """What an unreadable image contributes to the fingerprint: its reason, not its bytes."""
    return hashlib.sha256(f"unreadable: {error.reason}".encode()).digest()


def decoded(encoded: bytes) -> Image.Image:
    """The first frame of the encoded image as upright 8-bit RGB; raises one of DECODE_ERRORS."""
    with Image.open(io.BytesIO(encoded)) as image:
        image.load()
        return as_upright_rgb(image)


def header_problem(encoded: bytes) -> str | None:
    """NOT_AN_IMAGE when the bytes are no image format PIL knows (a header check, no decoding)."""
    try:
        with Image.open(io.BytesIO(encoded)):
            return None
    except DECODE_ERRORS:
        return NOT_AN_IMAGE


def fingerprint_of(image_ids: Iterable[str], digests: Iterable[bytes]) -> str:
    """sha256 over every (image id, image digest) in row order: the dataset fingerprint."""
    fingerprint = hashlib.sha256(f"clipaudit-images-v{FINGERPRINT_FORMAT}\n".encode())
    for image_id, digest in zip(image_ids, digests, strict=True):
        fingerprint.update(str(image_id).encode("utf-8") + b"\0")
        fingerprint.update(digest)
    return fingerprint.hexdigest()


def image_ids_key(image_ids: Iterable[str]) -> str:
    """sha256 naming the dataset's rows (their image ids, in order) but not their bytes."""
    key = hashlib.sha256(f"clipaudit-image-ids-v{FINGERPRINT_FORMAT}\n".encode())
    for image_id in image_ids:
        key.update(str(image_id).encode("utf-8") + b"\0")
    return key.hexdigest()
