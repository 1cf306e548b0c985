"""What "significant" means, once, for every job (audit, sweep, compare).

A test is significant when its p-value, adjusted over its family (Holm 1979 or Benjamini &
Hochberg 1995, :mod:`clipaudit.stats.multiple`), is below ``alpha`` *and* the effect it measures
is at least ``min_effect`` on the rate scale (0.02 = 2 percentage points). The effect bound is a
floor on practical importance: with many images a tiny difference is "detectable" but not worth
a finding. Effects equal to ``min_effect`` up to floating-point rounding (0.12 - 0.10) reach it.
"""
from __future__ import annotations

from collections.abc import Sequence

from clipaudit.stats.multiple import Correction, adjust_p_values

EFFECT_TOLERANCE = 1e-12


def is_significant(p_adjusted: float | None, effect: float | None, *, alpha: float, min_effect: float) -> bool:
    """``p_adjusted < alpha`` and ``effect >= min_effect`` (None for either: not significant)."""
    if p_adjusted is None or effect is None:
        return False
    return bool(p_adjusted < alpha and effect >= min_effect - EFFECT_TOLERANCE)


def is_significant_worsening(p_adjusted: float | None, worsening: float | None, *, alpha: float) -> bool:
    """A regression check's "significant worsening": significant with no effect floor, and a change
    in the worse direction beyond floating-point rounding (``worsening`` is the change signed so that
    positive is worse)."""
    return (worsening is not None and worsening > EFFECT_TOLERANCE
            and is_significant(p_adjusted, worsening, alpha=alpha, min_effect=0.0))


def correct_family(p_values: Sequence[float], effects: Sequence[float], *, correction: Correction, alpha: float,
                   min_effect: float) -> list[tuple[float, bool]]:
    """Adjusted p-value and significance of each test of one family, in the input order."""
    adjusted = adjust_p_values(list(p_values), method=correction) if len(p_values) else []
    return [(float(p_adjusted), is_significant(float(p_adjusted), effect, alpha=alpha, min_effect=min_effect))
            for p_adjusted, effect in zip(adjusted, effects)]

