"""Decode, preprocess and encode dataset images: decode workers feed the device in fixed-size batches.

The data path, for a model whose image processor splits (:mod:`clipaudit.models.pixels`):

* DataLoader workers read and decode images, resize and crop them in 8 bits, and put a chunk of
  images into one uint8 tensor made in shared memory (one block per chunk, not one per image);
  an image that cannot be read is named with its reason instead; every image's bytes are hashed
  as they are read (:class:`ImageDigest`), so that the dataset is fingerprinted from the
  encoder's own reads, never by a separate pass;
* on a GPU the chunk arrives in pinned memory and is copied without blocking;
* the device turns uint8 into normalised values (a lookup table with the processor's own
  arithmetic) and the tower encodes full batches while the workers decode the next ones; the
  embeddings of a batch are fetched only after the next batch has been queued.

Chunks are smaller than model batches so that the first batch arrives after a chunk's worth of
decoding, not after every worker has decoded a whole batch. A model without a split processor
goes the same way with the processor's float pixels.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from clipaudit.data.image_bytes import ImageDigest
from clipaudit.models.base import ZeroShotModel

DECODE_CHUNK = 32  # most images a worker decodes into one shared-memory block
PREFETCH_CHUNKS = 4  # chunks each worker keeps ready


class _PixelChunks:
    """Item k: the images of chunk k decoded and preprocessed, inside a DataLoader worker:
    (rows read, pixels (n, C, H, W) in one tensor, [(row, reason)] of the images that could not be read,
    an :class:`ImageDigest` of every row's bytes as read)."""

    def __init__(self, dataset, prepare, rows: list[int], chunk: int):
        self.dataset, self.prepare, self.rows, self.chunk = dataset, prepare, rows, chunk

    def __len__(self) -> int:
        return -(-len(self.rows) // self.chunk)

    def __getitem__(self, index: int):
        import torch

        read_rows, arrays, bad, hashed = [], [], [], []
        for row in self.rows[index * self.chunk : (index + 1) * self.chunk]:
            read = self.dataset.read_image(row)
            problem = read.error.reason if read.error is not None else None
            hashed.append(ImageDigest(row, read.digest, problem, read.bytes_read))
            if read.image is None:
                bad.append((row, problem))
            else:
                arrays.append(self.prepare(read.image))
                read_rows.append(row)
        pixels = None
        if arrays:
            dtype = torch.from_numpy(np.empty(0, arrays[0].dtype)).dtype
            pixels = torch.empty((len(arrays), *arrays[0].shape), dtype=dtype)
            if torch.utils.data.get_worker_info() is not None:
                pixels.share_memory_()  # filled in place, then handed to the main process without a copy
            np.stack(arrays, out=pixels.numpy())
        return torch.tensor(read_rows, dtype=torch.int64), pixels, bad, hashed


def _processor_pixels(model: ZeroShotModel):
    """The float path: the model's own per-image preprocessing, as a numpy array."""
    def prepare(image):
        return model.preprocess(image).numpy()
    return prepare


class EncodedRows(NamedTuple):
    rows: np.ndarray                         # int64 dataset rows read, in order
    embeddings: np.ndarray                   # unit-norm float32, one per row read
    bad_images: list[tuple[str, str]]        # (image_id, reason) of the images that could not be read
    digests: list[ImageDigest]               # of every row asked for, in row order, from the read that was encoded


def encode_rows(model, dataset, rows, *, batch_size: int, num_workers: int, progress: bool) -> EncodedRows:
    """Encode the images at dataset positions `rows`, reading each file once."""
    from tqdm.auto import tqdm

    wanted = [int(row) for row in rows]
    batches = _DeviceBatches(model, batch_size)
    bad_images: list[tuple[str, str]] = []
    digests: list[ImageDigest] = []
    with tqdm(total=len(wanted), desc="encoding images", unit="img", disable=not progress) as bar:
        with _cores_left_to_workers(batches.device, num_workers):
            for read_rows, pixels, bad, hashed in pixel_chunk_loader(model, dataset, wanted, batch_size, num_workers):
                bad_images += [(dataset.image_id(row), reason) for row, reason in bad]
                digests += hashed
                if pixels is not None:
                    batches.add(read_rows, pixels)
                bar.update(len(read_rows) + len(bad))
        read_rows, embeddings = batches.finish()  # the last batch has every core
    return EncodedRows(read_rows, embeddings, bad_images, digests)


@contextmanager
def _cores_left_to_workers(device, num_workers: int):
    """On the CPU, the tower runs on the cores the decode workers do not use while they run: torch's
    threads wait for each other by spinning, and one busy core more than they own stalls them all."""
    import torch

    threads = torch.get_num_threads()
    if device.type == "cpu" and num_workers:
        torch.set_num_threads(max(1, threads - num_workers))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def pixel_chunk_loader(model, dataset, rows: list[int], batch_size: int, num_workers: int):
    """The DataLoader that yields (rows read, pixels, [(row, reason)], [ImageDigest]) chunk by chunk, in row order."""
    from torch.utils.data import DataLoader

    if num_workers:
        # Workers are forked after the tokenizer ran; saying so up front keeps the tokenizers library
        # from printing a warning in every worker.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    spec = getattr(model, "pixel_spec", None)
    prepare = spec.to_uint8 if spec is not None else _processor_pixels(model)
    chunks = _PixelChunks(dataset, prepare, rows, decode_chunk(batch_size))
    on_gpu = _device_of(model).type == "cuda"
    return DataLoader(chunks, batch_size=None, shuffle=False, num_workers=num_workers, pin_memory=on_gpu,
                      prefetch_factor=PREFETCH_CHUNKS if num_workers else None)


def _device_of(model):
    import torch

    return torch.device(model.info.device)


def decode_chunk(batch_size: int) -> int:
    """Images per worker chunk: a quarter of a batch, so a batch fills from several workers and the
    first arrives early; at most DECODE_CHUNK, and at least 8 (or the batch) to keep chunks worth sending."""
    return max(min(batch_size, 8), min(DECODE_CHUNK, batch_size // 4))


class _DeviceBatches:
    """Collects chunks on the device into model batches, encodes each full batch, and keeps one
    batch in flight: a batch's embeddings are copied back after the next batch is queued."""

    def __init__(self, model, batch_size: int):
        self.model, self.batch_size = model, batch_size
        self.split = getattr(model, "pixel_spec", None) is not None
        self.device = _device_of(model)
        self.pending_rows: list = []
        self.pending_pixels: list = []
        self.pending_count = 0
        self.in_flight = None
        self.rows: list = []
        self.chunks: list[np.ndarray] = []

    def add(self, rows, pixels) -> None:
        pixels = pixels.to(self.device, non_blocking=True)
        self.pending_rows.append(rows)
        self.pending_pixels.append(self.model.normalise_pixels(pixels) if self.split else pixels)
        self.pending_count += len(rows)
        while self.pending_count >= self.batch_size:
            self._encode(self.batch_size)

    def finish(self):
        if self.pending_count:
            self._encode(self.pending_count)
        self._collect()
        rows = np.concatenate(self.rows).astype(np.int64) if self.rows else np.zeros(0, np.int64)
        dimension = self.chunks[0].shape[1] if self.chunks else 0
        embeddings = np.concatenate(self.chunks) if self.chunks else np.zeros((0, dimension), np.float32)
        return rows, embeddings

    def _encode(self, count: int) -> None:
        import torch

        rows, pixels = torch.cat(self.pending_rows), torch.cat(self.pending_pixels)
        self.pending_rows, self.pending_pixels = [rows[count:]], [pixels[count:]]
        self.pending_count -= count
        if self.split:
            features = self.model.image_features(pixels[:count])
        else:
            features = self.model.encode_images(pixels[:count])
        self._collect()
        self.in_flight = (rows[:count], features)

    def _collect(self) -> None:
        if self.in_flight is not None:
            rows, features = self.in_flight
            self.rows.append(rows.numpy())
            self.chunks.append(normalised(features.cpu().numpy()))
            self.in_flight = None


def normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)
