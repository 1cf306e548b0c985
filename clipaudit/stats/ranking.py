"""Which of several models has the smallest gap between groups, and how sure that is.

The models ran on the same images (paired): one bootstrap resample of the images (Efron &
Tibshirani 1993) is shared by every model, so the ranking's uncertainty reflects the images, not
noise between models. In each resample every model's gap (max - min rate over the groups with at
least ``min_n`` images in the full sample, as :func:`clipaudit.stats.disparities.gap` compares
them) is recomputed and the models ranked (1 = smallest gap; ties share the better rank). Each
model gets the share of resamples in which it ranked first and a percentile interval of its rank.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


#: Resampled image indices held at once (draws x images), so memory stays bounded on large datasets.
CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class GapRank:
    """One model's rank by gap (1 = smallest), the share of resamples it ranked first, its rank interval."""

    rank: int
    gap: float | None
    probability_first: float
    rank_low: int
    rank_high: int


def rank_by_gap(codes: NDArray[np.intp], n_groups: int, counted: Sequence[NDArray[np.bool_]],
                success: Sequence[NDArray[np.bool_]], *, min_n: int, resamples: int, confidence: float,
                seed: int) -> list[GapRank]:
    """``codes``: each image's group (-1: none) shared by the models; ``counted`` / ``success``:
    per model, the metric's outcome per image. A model with fewer than two groups of ``min_n``
    has no gap and ranks last."""
    compared = [_group_counts(codes, n_groups, c)[0] >= min_n for c in counted]
    observed = np.array([_gap(codes, n_groups, c, s, mask) for c, s, mask in zip(counted, success, compared)])
    rng = np.random.default_rng(seed)
    ranks = np.empty((resamples, len(counted)), dtype=np.int64)
    chunk = max(1, CHUNK_CELLS // max(1, len(codes)))
    for start in range(0, resamples, chunk):
        index = rng.integers(0, len(codes), (min(chunk, resamples - start), len(codes)))
        gaps = np.stack([_resampled_gaps(codes, n_groups, c, s, mask, index)
                         for c, s, mask in zip(counted, success, compared)], axis=1)
        ranks[start:start + len(index)] = _ranks(gaps)
    tail = (1 - confidence) / 2
    observed_ranks = _ranks(observed)
    return [
        GapRank(rank=int(observed_ranks[m]), gap=None if np.isnan(observed[m]) else float(observed[m]),
                probability_first=float(np.mean(ranks[:, m] == 1)) if resamples else float("nan"),
                rank_low=int(np.quantile(ranks[:, m], tail, method="inverted_cdf")) if resamples else int(observed_ranks[m]),
                rank_high=int(np.quantile(ranks[:, m], 1 - tail, method="inverted_cdf")) if resamples else int(observed_ranks[m]))
        for m in range(len(counted))
    ]


def _resampled_gaps(codes: NDArray[np.intp], n_groups: int, counted: NDArray[np.bool_], success: NDArray[np.bool_],
                    compared: NDArray[np.bool_], index: NDArray[np.intp]) -> NDArray[np.float64]:
    """The gap in each resample (a row of ``index``), with one bincount over all of them."""
    draws = len(index)
    picked_codes, keep = codes[index], ((codes >= 0) & counted)[index]
    cell = np.arange(draws)[:, None] * n_groups + picked_codes
    n = np.bincount(cell[keep], minlength=draws * n_groups).reshape(draws, n_groups)
    hits = np.bincount(cell[keep & success[index]], minlength=draws * n_groups).reshape(draws, n_groups)
    usable = compared[None, :] & (n > 0)
    rates = np.where(usable, hits / np.maximum(n, 1), np.nan)
    with np.errstate(all="ignore"):
        gaps = np.nanmax(np.where(usable, rates, -np.inf), axis=1) - np.nanmin(np.where(usable, rates, np.inf), axis=1)
    return np.where(usable.sum(axis=1) >= 2, gaps, np.nan)


def _group_counts(codes: NDArray[np.intp], n_groups: int, counted: NDArray[np.bool_]) -> tuple[NDArray, NDArray]:
    keep = (codes >= 0) & counted
    return np.bincount(codes[keep], minlength=n_groups), keep


def _gap(codes: NDArray[np.intp], n_groups: int, counted: NDArray[np.bool_], success: NDArray[np.bool_],
         compared: NDArray[np.bool_]) -> float:
    n, keep = _group_counts(codes, n_groups, counted)
    successes = np.bincount(codes[keep & success], minlength=n_groups)
    usable = compared & (n > 0)
    if usable.sum() < 2:
        return float("nan")
    rates = successes[usable] / n[usable]
    return float(rates.max() - rates.min())


def _ranks(gaps: NDArray[np.float64]) -> NDArray[np.int64]:
    """Along the last axis (the models): 1 + the number of models with a strictly smaller gap; no
    gap (NaN) ranks last. A (resamples, models) array is ranked resample by resample."""
    filled = np.where(np.isnan(gaps), np.inf, gaps)
    return 1 + (filled[..., None, :] < filled[..., :, None]).sum(axis=-1)
