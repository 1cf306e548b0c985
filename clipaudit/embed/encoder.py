"""Decode, preprocess and encode dataset images in batches (DataLoader workers decode)."""
from __future__ import annotations

import numpy as np

from clipaudit.errors import UnreadableImage
from clipaudit.models.base import ZeroShotModel


class _PixelDataset:
    """Decodes and preprocesses one image per item, inside DataLoader workers."""

    def __init__(self, dataset, model: ZeroShotModel, rows: list[int]):
        self.dataset = dataset
        self.preprocess = model.preprocess
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        row = self.rows[index]
        try:
            return row, self.preprocess(self.dataset.open_image(row)), None
        except UnreadableImage as error:
            return row, None, error.reason


def encode_rows(model, dataset, rows, *, batch_size: int, num_workers: int, progress: bool):
    """Encode the images at dataset positions `rows`: (rows read, unit-norm float32 embeddings,
    [(image_id, reason)] of the images that could not be read)."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    wanted = [int(row) for row in rows]
    loader = DataLoader(
        _PixelDataset(dataset, model, wanted),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=list,
    )
    read_rows: list[int] = []
    chunks: list[np.ndarray] = []
    bad_images: list[tuple[str, str]] = []
    image_ids = dataset.frame["image_id"].tolist()
    with tqdm(total=len(wanted), desc="encoding images", unit="img", disable=not progress) as bar:
        for batch in loader:
            good = [(row, pixels) for row, pixels, _ in batch if pixels is not None]
            bad_images += [(image_ids[row], reason) for row, pixels, reason in batch if pixels is None]
            if good:
                pixel_values = torch.stack([pixels for _, pixels in good])
                chunks.append(normalised(model.encode_images(pixel_values).numpy()))
                read_rows += [row for row, _ in good]
            bar.update(len(batch))
    dimension = chunks[0].shape[1] if chunks else 0
    embeddings = np.concatenate(chunks) if chunks else np.zeros((0, dimension), np.float32)
    return np.asarray(read_rows, dtype=np.int64), embeddings, bad_images


def normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)
