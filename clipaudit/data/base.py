"""The one dataset shape every adapter produces: a label table plus a way to open images.

Everything downstream (embedding cache, scoring, statistics) sees only
:class:`ImageDataset`, so adding a dataset format means writing a loader that builds one,
never touching the pipeline.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pandas as pd
from PIL import Image

from clipaudit.data.image_bytes import (
    DECODE_ERRORS, FINGERPRINT_FORMAT, MISSING, NOT_AN_IMAGE, ImageDigest, ImageRead, decoded, fingerprint_of,
    header_problem, image_digest, image_ids_key, unreadable_digest,
)
from clipaudit.data.safe_files import MAX_IMAGE_BYTES, FileRefused, read_file_inside, real_folder
from clipaudit.data.table_checks import require_complete, require_distinct_files, require_unique_ids
from clipaudit.errors import DataError, UnreadableImage
from clipaudit import progress
from clipaudit.files import DigestMemo

__all__ = ["FINGERPRINT_FORMAT", "MISSING", "NOT_AN_IMAGE", "FolderImageDataset", "ImageDataset",  # re-exported
           "describe_bad_images", "digest_and_check", "header_problem", "note_unreadable", "require_complete",
           "require_distinct_files", "require_unique_ids", "unreadable_digest"]

# Rows handed to the thread pool at a time, and the size from which progress is shown.
_CHUNK_ROWS = 256
_PROGRESS_FROM_ROWS = 2000

T = TypeVar("T")


class ImageDataset:
    """Labelled images: ``frame`` holds ``image_id`` then one str column per attribute.

    Subclasses say where image bytes come from (:meth:`_read_image_bytes`) and how the
    dataset is fingerprinted; decoding, checking and hashing live here once.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        spec: str,
        root: Path | None = None,
        notes: dict[str, str] | None = None,
        skipped: list[str] | None = None,
    ) -> None:
        self.frame = frame.reset_index(drop=True)
        self.attributes: list[str] = [name for name in self.frame.columns if name != "image_id"]
        self.spec = spec
        self.root = root
        self.notes: dict[str, str] = dict(notes or {})
        self.skipped: list[str] = list(skipped or [])
        self._fingerprint: str | None = None
        # Bad images known before encoding ('a.jpg (missing)': a failed stat, a memoised problem,
        # a file read to check a cached shard), so a run can stop before encoding instead of after it.
        self.unreadable_found: set[str] = set()

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.spec!r}, images={len(self)}, attributes={self.attributes})"

    # -- images ---------------------------------------------------------------------------

    def image_id(self, index: int) -> str:
        return str(self.frame.at[index, "image_id"])

    def _read_image_bytes(self, index: int) -> bytes:
        """The encoded image at row ``index``; raises UnreadableImage(reason=MISSING)."""
        raise NotImplementedError

    def _image_location(self, index: int) -> str:
        """Where row ``index``'s image lives, for error messages (a path when there is one)."""
        return f"{self.spec}: image {self.image_id(index)}"

    def open_image(self, index: int) -> Image.Image:
        """Decode row ``index``'s image (its first frame) as 8-bit RGB, upright as EXIF says;
        raises UnreadableImage with the reason.

        The conversion rules for deep, float, CMYK and transparent images are in
        :mod:`clipaudit.data.pixels`.
        """
        read = self.read_image(index)
        if read.error is not None:
            raise read.error
        return read.image

    def read_image(self, index: int) -> ImageRead:
        """Read row ``index``'s image once: the digest of the very bytes decoded (the one the
        fingerprint uses) and the picture, or why there is none."""
        try:
            encoded = self._read_image_bytes(index)
        except UnreadableImage as error:
            return ImageRead(unreadable_digest(error), None, error, bytes_read=False)
        digest = image_digest(encoded)
        try:
            return ImageRead(digest, decoded(encoded), None, bytes_read=True)
        except DECODE_ERRORS as error:
            unreadable = UnreadableImage(self.image_id(index), self._image_location(index), NOT_AN_IMAGE,
                                         _one_line(error))
            return ImageRead(digest, None, unreadable, bytes_read=True)

    def find_bad_images(self, limit: int | None = None) -> list[str]:
        """Every image that cannot be read, as 'image_id (reason)', in table order.

        Run before encoding so a run fails up front with the whole list rather than
        hours in on the first bad file. ``limit`` stops after that many are found.
        """
        bad: list[str] = []
        for problem in self._iter_problems():
            if problem is None:
                continue
            bad.append(problem)
            if limit is not None and len(bad) >= limit:
                break
        return bad

    def check_images(self, *, shown: int = 3) -> None:
        """Raise one DataError listing the unreadable images, if there are any."""
        bad = self.find_bad_images()
        if bad:
            raise DataError(describe_bad_images(bad, shown=shown))

    def _iter_problems(self) -> Iterator[str | None]:
        return self._map_rows(self._problem_with, description="checking images")

    def _map_rows(self, work: Callable[[int], T], *, description: str,
                  rows: Sequence[int] | None = None) -> Iterator[T]:
        """``work(i)`` for every row (or each of ``rows``), in order, on a few threads, with a progress bar.

        File reads, hashing and JPEG decoding release the GIL, so threads give real
        parallelism without pickling the dataset into processes.
        """
        rows = range(len(self)) if rows is None else rows
        workers = min(8, os.cpu_count() or 1)
        counted = len(rows) >= _PROGRESS_FROM_ROWS  # fewer images take well under 2 s
        with ThreadPoolExecutor(max_workers=workers) as pool, \
                progress.bar(total=len(rows), what=description, worth_showing=counted) as shown:
            for start in range(0, len(rows), _CHUNK_ROWS):
                for result in pool.map(work, rows[start : start + _CHUNK_ROWS]):
                    shown.update()
                    yield result

    def _problem_with(self, index: int) -> str | None:
        try:
            self.open_image(index).close()
        except UnreadableImage as error:
            return f"{error.image_id} ({error.reason})"
        return None

    # -- labels ---------------------------------------------------------------------------

    def attribute_values(self, name: str) -> set[str]:
        """The distinct values of attribute ``name``."""
        self._require_attribute(name)
        return set(self.frame[name].astype(str))

    def check_attribute_values(self, name: str, allowed: Collection[str], *, context: str = "") -> None:
        """Raise DataError when ``name`` holds values outside ``allowed`` (e.g. a probe's classes).

        The message carries the dataset's own note on that attribute, which is where the
        reason lives when the vocabulary differs by design (UTKFace race).
        """
        unknown = sorted(self.attribute_values(name) - set(allowed))
        if not unknown:
            return
        where = f"{context}: " if context else ""
        message = (
            f"{where}dataset {self.spec!r} has {name} values {', '.join(map(repr, unknown))} "
            f"that are not among {', '.join(map(repr, allowed))}"
        )
        note = self.notes.get(name)
        raise DataError(f"{message}; {note}" if note else message)

    def _require_attribute(self, name: str) -> None:
        if name not in self.attributes:
            raise DataError(
                f"dataset {self.spec!r} has no attribute {name!r}; it has {', '.join(self.attributes)}"
            )

    # -- identity -------------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        """sha256 naming exactly these images (their ids and bytes, in row order).

        The encoder assembles it from its own reads (:meth:`fingerprint_from`); asked for before,
        it is computed by a pass that reads every image. Kept once known, pickles included.
        """
        if self._fingerprint is None:
            self._fingerprint = fingerprint_of(self.frame["image_id"].astype(str), self._image_digests())
            self.save_digests()
        return self._fingerprint

    def fingerprint_from(self, digests: Sequence[bytes]) -> None:
        """Adopt the fingerprint made of every row's digest as the encoder's reads gave them."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint_of(self.frame["image_id"].astype(str), digests)

    @property
    def image_ids_key(self) -> str:
        """sha256 naming the rows (their image ids, in order) but not their bytes: read no image."""
        return image_ids_key(self.frame["image_id"].astype(str))

    def memoise_digests(self, cache_dir: Path | None) -> None:
        """Keep the images' digests in ``cache_dir`` for the next run, where the dataset can tell an
        unchanged image without reading it (folders by each file's stat, tables by their files')."""

    def known_digests(self) -> dict[int, bytes]:
        """The digest of each image that is known without reading it: none here (folders memoise theirs)."""
        return {}

    def digests_of(self, rows: Sequence[int]) -> dict[int, bytes]:
        """Read and hash the images at ``rows`` (on threads), e.g. to check a cached shard against them."""
        digests = dict(zip(rows, self._map_rows(self._image_digest, description="checking images", rows=rows)))
        self.save_digests()
        return digests

    def remember_digests(self, hashed: Sequence[ImageDigest]) -> None:
        """Keep the digests the encoder's reads gave (folders memoise them for the next run)."""

    def save_digests(self) -> None:
        """Write what was memoised (folders)."""

    def _image_digests(self) -> Iterator[bytes]:
        """sha256 of every image's bytes, in row order (subclasses may read in batches)."""
        return self._map_rows(self._image_digest, description="fingerprinting images")

    def _image_digest(self, index: int) -> bytes:
        # A missing file is part of what the dataset is: it gets a digest of its own, so that
        # the encoder (not the fingerprint) reports it, together with every other bad image.
        try:
            return digest_and_check(self, index, self._read_image_bytes(index))
        except UnreadableImage as error:
            return note_unreadable(self, error)


class FolderImageDataset(ImageDataset):
    """Images stored as files; ``image_id`` is each file's path relative to ``root``.

    Only regular files that resolve (symlinks too) inside ``root`` and are at most
    MAX_IMAGE_BYTES are read; anything else is an unreadable image, with its reason.
    """

    root: Path

    def __init__(self, frame: pd.DataFrame, *, spec: str, root: Path, **kwargs) -> None:
        super().__init__(frame, spec=spec, root=root, **kwargs)
        self._real_root = real_folder(root)
        self._digests = DigestMemo(None, root)
        self._statuses: dict[int, os.stat_result] = {}  # of the files whose digest is not memoised

    def memoise_digests(self, cache_dir: Path | None) -> None:
        """Keep each image's digest in ``cache_dir``, keyed by what ``stat`` says of the file, so that
        fingerprinting an unchanged dataset again reads no image (see :class:`clipaudit.files.DigestMemo`)."""
        self._digests = DigestMemo(cache_dir, self._real_root)

    def known_digests(self) -> dict[int, bytes]:
        """The memoised digest of every unchanged file (one stat each, no read); a missing file and
        a memoised problem are noted in ``unreadable_found``. The other files' status is kept, taken
        before the encoder reads them, to memoise what it finds (:meth:`remember_digests`)."""
        known: dict[int, bytes] = {}
        self._statuses = {}
        for index in range(len(self)):
            try:
                status = os.stat(self.image_path(index))
            except FileNotFoundError:
                self.unreadable_found.add(f"{self.image_id(index)} ({MISSING})")
                continue
            except OSError:
                continue  # unreachable: reading it says why
            entry = self._memoised(index, status)
            if entry is None:
                self._statuses[index] = status
                continue
            digest, problem = entry
            if problem:
                self.unreadable_found.add(f"{self.image_id(index)} ({problem})")
            known[index] = digest
        return known

    def remember_digests(self, hashed) -> None:
        for row, digest, problem, bytes_read in hashed:
            if bytes_read and row in self._statuses:  # only the bytes' verdict: a missing file is looked at again
                self._digests.remember(self.image_id(row), self._statuses[row], [digest.hex(), problem])
        self._digests.save()

    def save_digests(self) -> None:
        self._digests.save()

    def _image_digests(self) -> Iterator[bytes]:
        # An unchanged folder: one stat per file in this thread, no pool, no image read.
        known = self.known_digests()
        if len(known) == len(self):
            return iter([known[index] for index in range(len(self))])
        return super()._image_digests()  # a new or changed file: the full pass (memoised files cost a stat there too)

    def _status(self, index: int) -> os.stat_result | None:
        try:
            return os.stat(self.image_path(index))
        except OSError:
            return None  # missing or unreachable: reading it says why

    def _memoised(self, index: int, status: os.stat_result | None) -> tuple[bytes, str | None] | None:
        """(digest, problem) memoised for the file as ``status`` describes it, or None."""
        known = self._digests.lookup(self.image_id(index), status) if status is not None else None
        if isinstance(known, list) and len(known) == 2 and isinstance(known[0], str):
            return bytes.fromhex(known[0]), known[1]
        return None

    def _image_digest(self, index: int) -> bytes:
        image_id, status = self.image_id(index), self._status(index)
        known = self._memoised(index, status)
        if known is not None:
            digest, problem = known
            if problem:
                self.unreadable_found.add(f"{image_id} ({problem})")
            return digest
        try:
            encoded = self._read_image_bytes(index)
        except UnreadableImage as error:  # found again next time: only the bytes' verdict is memoised
            return note_unreadable(self, error)
        problem = header_problem(encoded)
        if problem:
            self.unreadable_found.add(f"{image_id} ({problem})")
        digest = image_digest(encoded)
        if status is not None:
            self._digests.remember(image_id, status, [digest.hex(), problem])
        return digest

    def image_path(self, index: int) -> Path:
        return self.root / self.image_id(index)

    def _image_location(self, index: int) -> str:
        return str(self.image_path(index))

    def _read_image_bytes(self, index: int) -> bytes:
        path = self.image_path(index)
        try:
            return read_file_inside(path, self._real_root, limit=MAX_IMAGE_BYTES)
        except FileNotFoundError:
            raise UnreadableImage(self.image_id(index), str(path), MISSING) from None
        except FileRefused as refused:
            raise UnreadableImage(self.image_id(index), str(path), refused.reason, refused.detail) from None
        except OSError as error:
            raise UnreadableImage(self.image_id(index), str(path), "unreadable", _one_line(error)) from None


def digest_and_check(dataset: ImageDataset, index: int, encoded: bytes) -> bytes:
    """The digest of an image's bytes; bytes that are no image format at all (a header check,
    no decoding) are recorded as unreadable, so a run can stop before encoding."""
    problem = header_problem(encoded)
    if problem:
        dataset.unreadable_found.add(f"{dataset.image_id(index)} ({problem})")
    return image_digest(encoded)


def note_unreadable(dataset: ImageDataset, error: UnreadableImage) -> bytes:
    """Record an image the fingerprint pass could not read and return its digest."""
    dataset.unreadable_found.add(f"{error.image_id} ({error.reason})")
    return unreadable_digest(error)


def describe_bad_images(bad: list[str], *, shown: int = 3) -> str:
    """'3 images cannot be read: a.jpg (missing), b.jpg (not an image), ... and 1 more'."""
    count = len(bad)
    noun = "image cannot" if count == 1 else "images cannot"
    listed = ", ".join(bad[:shown])
    rest = f" and {count - shown} more" if count > shown else ""
    return f"{count} {noun} be read: {listed}{rest}"


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
