"""Multiple-testing control over a family of p-values.

- ``"holm"`` (default): Holm's (1979) step-down procedure, which controls the
  family-wise error rate (the chance of any false positive in the family) under any
  dependence between the tests.
- ``"bh"``: the Benjamini & Hochberg (1995) step-up procedure, which controls the
  false discovery rate (the expected share of false positives among the rejections)
  for independent or positively dependent tests.
"""
from __future__ import annotations

from typing import Callable, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clipaudit.errors import ClipauditError

Correction = Literal["holm", "bh"]


def holm(p_values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Holm (1979) step-down adjusted p-values, controlling the family-wise error rate.

    With ``p_(1) <= ... <= p_(m)``, ``p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``:
    monotone in the raw order and capped at 1. Ties keep their input order
    (stable sort), which does not change the adjusted values. Assumes values in [0, 1].
    """
    m = p_values.size
    if m == 0:
        return np.empty(0, dtype=np.float64)
    order = np.argsort(p_values, kind="stable")
    multipliers = np.arange(m, 0, -1, dtype=np.float64)
    stepped = np.minimum(1.0, np.maximum.accumulate(multipliers * p_values[order]))
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = stepped
    return adjusted


def benjamini_hochberg(p_values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Benjamini & Hochberg (1995) step-up adjusted p-values (false discovery rate).

    With ``p_(1) <= ... <= p_(m)``, ``p~_(i) = min_{j >= i} min(1, m p_(j) / j)``.
    Assumes values in [0, 1].
    """
    m = p_values.size
    if m == 0:
        return np.empty(0, dtype=np.float64)
    order = np.argsort(p_values, kind="stable")
    scaled = p_values[order] * m / np.arange(1, m + 1, dtype=np.float64)
    stepped = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = stepped
    return adjusted


CORRECTIONS: dict[str, Callable[[NDArray[np.float64]], NDArray[np.float64]]] = {
    "holm": holm, "bh": benjamini_hochberg}
#: Each correction's name, its method in a sentence, and what its adjusted p-values control:
#: the words every output uses for it.
CORRECTION_NAMES: dict[str, str] = {"holm": "Holm", "bh": "BH"}
CORRECTION_LABELS: dict[str, str] = {key: f"{name}-adjusted" for key, name in CORRECTION_NAMES.items()}
CORRECTION_DESCRIPTIONS: dict[str, str] = {
    "holm": "Holm step-down correction (Holm 1979), controlling the family-wise error rate",
    "bh": "Benjamini\u2013Hochberg correction (Benjamini & Hochberg 1995), controlling the false discovery rate",
}
CORRECTION_CONTROLS: dict[str, str] = {
    "holm": "family-wise error rate (Holm 1979)",
    "bh": "false discovery rate (Benjamini & Hochberg 1995)",
}


def adjust_p_values(p_values: ArrayLike, *, method: Correction = "holm") -> NDArray[np.float64]:
    """Adjusted p-values for one family, in the input order.

    ``method`` is one of :data:`CORRECTIONS` (``"holm"``: Holm 1979; ``"bh"``:
    Benjamini & Hochberg 1995). An empty
    family gives an empty array; p-values outside [0, 1] or NaN raise
    :class:`~clipaudit.errors.ClipauditError`.
    """
    if method not in CORRECTIONS:
        raise ClipauditError(f"unknown correction {method!r}; known: {sorted(CORRECTIONS)}")
    values = np.asarray(p_values, dtype=np.float64).ravel()
    if np.any(~np.isfinite(values)) or np.any(values < 0.0) or np.any(values > 1.0):
        raise ClipauditError(f"p-values must lie in [0, 1], got {values.tolist()!r}")
    return CORRECTIONS[method](values)
