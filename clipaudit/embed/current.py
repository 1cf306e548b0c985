"""Which cached shards still hold the images as they are now: a shard serves a run only when every
row's image digest equals the one the shard was computed from.

Known without a read: a folder's unchanged files, by their memoised digests (one ``stat`` each).
Read and hashed: the other files, but only where a cached shard has to be checked against them. A
shard that must be encoded is never hashed beforehand: the decode workers hash the very bytes
they decode (a cold run reads each image once), and those digests are recorded, and memoised, as
each shard completes, so that a rerun after ``kill -9`` finds the finished shards by ``stat`` alone.
The dataset fingerprint is then assembled from the digests every shard carries.
"""
from __future__ import annotations

from collections.abc import Sequence

from clipaudit.data.image_bytes import ImageDigest
from clipaudit.embed.shards import Shard, ShardContent


class CurrentDigests:
    """The digest of each row's image now, as far as the run has needed to learn it."""

    def __init__(self, dataset):
        self.dataset = dataset
        self._known: dict[int, bytes] = dataset.known_digests()

    def serving(self, shard: Shard, content: ShardContent | None) -> ShardContent | None:
        """``content`` when it was computed from the images as they are now; None when absent or stale."""
        if content is None:
            return None
        rows = range(shard.start, shard.stop)
        unknown = [row for row in rows if row not in self._known]
        if unknown:
            self._known.update(self.dataset.digests_of(unknown))
        return content if b"".join(self._known[row] for row in rows) == content.digests.tobytes() else None

    def record(self, digests: Sequence[ImageDigest]) -> None:
        """Take the digests of a shard's reads by the encoder; the files not known before are memoised."""
        self.dataset.remember_digests([entry for entry in digests if entry.row not in self._known])
        self._known.update((entry.row, entry.digest) for entry in digests)
