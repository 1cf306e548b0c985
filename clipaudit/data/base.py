"""The one dataset shape every adapter produces: a label table plus a way to open images.

Everything downstream (embedding cache, scoring, statistics) sees only
:class:`ImageDataset`, so adding a dataset format means writing a loader that builds one,
never touching the pipeline.
"""
from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pandas as pd
from PIL import Image, UnidentifiedImageError

from clipaudit.data.pixels import as_upright_rgb
from clipaudit.data.safe_files import MAX_IMAGE_BYTES, FileRefused, first_shared_file, read_file_inside, real_folder
from clipaudit.errors import DataError, UnreadableImage
from clipaudit import progress
from clipaudit.files import DigestMemo

# Bump when the bytes fed to the fingerprint hash change meaning, so caches never match
# across layouts.
FINGERPRINT_FORMAT = 1

# Rows handed to the thread pool at a time, and the size from which progress is shown.
_CHUNK_ROWS = 256
_PROGRESS_FROM_ROWS = 2000

T = TypeVar("T")

# Problems named by find_bad_images(); the CLI shows them as "a.jpg (missing)".
MISSING = "missing"
NOT_AN_IMAGE = "not an image"

# Decoding errors PIL raises for files that are not (complete, supported) images; hostile
# files reach the less usual ones (struct.error, EOFError, IndexError, ...) too.
_DECODE_ERRORS = (
    UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
    struct.error, EOFError, IndexError, KeyError, TypeError, ZeroDivisionError,
)


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
        # Images the fingerprint pass could not read ('a.jpg (missing)'), so a run can stop
        # before encoding instead of after it.
        self.unreadable_found: list[str] = []

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
        """Decode row ``index``'s image (its first frame) as 8-bit RGB, upright as EXIF says.

        The conversion rules for deep, float, CMYK and transparent images are in
        :mod:`clipaudit.data.pixels`.
        """
        encoded = self._read_image_bytes(index)
        try:
            with Image.open(io.BytesIO(encoded)) as image:
                image.load()
                return as_upright_rgb(image)
        except _DECODE_ERRORS as error:
            raise UnreadableImage(
                self.image_id(index), self._image_location(index), NOT_AN_IMAGE, _one_line(error)
            ) from None

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

    def _map_rows(self, work: Callable[[int], T], *, description: str) -> Iterator[T]:
        """``work(i)`` for every row, in row order, on a few threads, with a progress bar.

        File reads, hashing and JPEG decoding release the GIL, so threads give real
        parallelism without pickling the dataset into processes.
        """
        workers = min(8, os.cpu_count() or 1)
        counted = len(self) >= _PROGRESS_FROM_ROWS  # smaller datasets take well under 2 s
        with ThreadPoolExecutor(max_workers=workers) as pool, \
                progress.bar(total=len(self), what=description, worth_showing=counted) as shown:
            for start in range(0, len(self), _CHUNK_ROWS):
                indices = range(start, min(start + _CHUNK_ROWS, len(self)))
                for result in pool.map(work, indices):
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
        """sha256 naming exactly these images; embedding caches are keyed on it.

        Computed on first use (it reads every image) and kept, pickles included.
        """
        if self._fingerprint is None:
            self._fingerprint = self._compute_fingerprint()
        return self._fingerprint

    def _compute_fingerprint(self) -> str:
        digest = hashlib.sha256(f"clipaudit-images-v{FINGERPRINT_FORMAT}\n".encode())
        for index, image_digest in enumerate(self._image_digests()):
            digest.update(self.image_id(index).encode("utf-8") + b"\0")
            digest.update(image_digest)
        self._after_fingerprint()
        return digest.hexdigest()

    def _after_fingerprint(self) -> None:
        """Called once every image was hashed (folder datasets save their digest memo)."""

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

    def memoise_digests(self, cache_dir: Path | None) -> None:
        """Keep each image's digest in ``cache_dir``, keyed by what ``stat`` says of the file, so that
        fingerprinting an unchanged dataset again reads no image (see :class:`clipaudit.files.DigestMemo`)."""
        self._digests = DigestMemo(cache_dir, self._real_root)

    def _image_digests(self) -> Iterator[bytes]:
        # An unchanged folder: one stat per file in this thread, no pool, no image read.
        known = []
        for index in range(len(self)):
            entry = self._memoised(index, self._status(index))
            if entry is None:  # a new or changed file: the full pass (memoised files cost a stat there too)
                return super()._image_digests()
            known.append(entry)
        self.unreadable_found += [f"{self.image_id(index)} ({problem})"
                                  for index, (_, problem) in enumerate(known) if problem]
        return iter([digest for digest, _ in known])

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
                self.unreadable_found.append(f"{image_id} ({problem})")
            return digest
        try:
            encoded = self._read_image_bytes(index)
        except UnreadableImage as error:  # found again next time: only the bytes' verdict is memoised
            return note_unreadable(self, error)
        problem = header_problem(encoded)
        if problem:
            self.unreadable_found.append(f"{image_id} ({problem})")
        digest = hashlib.sha256(encoded).digest()
        if status is not None:
            self._digests.remember(image_id, status, [digest.hex(), problem])
        return digest

    def _after_fingerprint(self) -> None:
        self._digests.save()

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


def unreadable_digest(error: UnreadableImage) -> bytes:
    """What an unreadable image contributes to the fingerprint: its reason, not its bytes."""
    return hashlib.sha256(f"unreadable: {error.reason}".encode()).digest()


def digest_and_check(dataset: ImageDataset, index: int, encoded: bytes) -> bytes:
    """The digest of an image's bytes; bytes that are no image format at all (a header check,
    no decoding) are recorded as unreadable, so a run can stop before encoding."""
    problem = header_problem(encoded)
    if problem:
        dataset.unreadable_found.append(f"{dataset.image_id(index)} ({problem})")
    return hashlib.sha256(encoded).digest()


def header_problem(encoded: bytes) -> str | None:
    """NOT_AN_IMAGE when the bytes are no image format PIL knows (a header check, no decoding)."""
    try:
        with Image.open(io.BytesIO(encoded)):
            return None
    except _DECODE_ERRORS:
        return NOT_AN_IMAGE


def note_unreadable(dataset: ImageDataset, error: UnreadableImage) -> bytes:
    """Record an image the fingerprint pass could not read and return its digest."""
    dataset.unreadable_found.append(f"{error.image_id} ({error.reason})")
    return unreadable_digest(error)


def describe_bad_images(bad: list[str], *, shown: int = 3) -> str:
    """'3 images cannot be read: a.jpg (missing), b.jpg (not an image), ... and 1 more'."""
    count = len(bad)
    noun = "image cannot" if count == 1 else "images cannot"
    listed = ", ".join(bad[:shown])
    rest = f" and {count - shown} more" if count > shown else ""
    return f"{count} {noun} be read: {listed}{rest}"


def require_complete(frame: pd.DataFrame, *, source: str, row_label: str = "row", first_row: int = 0) -> None:
    """Raise DataError naming the first empty cell: labels are never silently dropped.

    ``first_row`` is the number the first data row carries in ``source`` (2 for a CSV
    line under its header), so messages point where the user will look.
    """
    for column in frame.columns:
        values = frame[column]
        empty = values.isna() | (values.astype(str).str.strip() == "")
        if empty.any():
            position = int(empty.to_numpy().nonzero()[0][0])
            raise DataError(f"{source}: {row_label} {position + first_row}: column {column!r} is empty")


def require_unique_ids(frame: pd.DataFrame, *, source: str, row_label: str = "row", first_row: int = 0) -> None:
    """Raise DataError on a repeated image id, which would merge two rows downstream."""
    duplicated = frame["image_id"].duplicated(keep=False)
    if duplicated.any():
        positions = duplicated.to_numpy().nonzero()[0]
        image_id = frame["image_id"].iloc[positions[0]]
        rows = [str(p + first_row) for p in positions if frame["image_id"].iloc[p] == image_id]
        raise DataError(f"{source}: image {image_id!r} appears more than once ({row_label}s {', '.join(rows)})")


def require_distinct_files(
    frame: pd.DataFrame, root: Path, *, source: str, row_label: str | None = None, first_row: int = 0
) -> None:
    """Raise DataError when two rows name one file ('x.jpg' and './x.jpg', or through a symlink).

    Such a table counts one image twice in every statistic; paths are compared resolved.
    Rows are named by ``row_label`` and number when given (CSV lines), else by image id only.
    """
    image_ids = frame["image_id"].astype(str).tolist()
    shared = first_shared_file([root / image_id for image_id in image_ids])
    if shared is None:
        return
    first, second, resolved = shared
    named = [repr(image_ids[position]) for position in (first, second)]
    if row_label is not None:
        named = [f"{row_label} {position + first_row} ({name})" for position, name in zip((first, second), named)]
    raise DataError(f"{source}: {named[0]} and {named[1]} are the same file, {resolved}; list each image once")


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
