"""What results.json's ``manifest.statistics`` says of each method, in words: which test, which
interval, at which level, with its reference, so that a reader of the file alone knows how each
number was computed (the report's caveats and method notes quote them)."""
from __future__ import annotations

from clipaudit.stats.intervals import INTERVAL_LABELS
from clipaudit.stats.multiple import CORRECTION_LABELS
from clipaudit.stats.settings import StatsSettings
from clipaudit.stats.spread import FOUR_FIFTHS, SPREAD_METHOD


def method_notes(settings: StatsSettings, *, gap_level: float) -> dict[str, str]:
    """The methods in force under ``settings``; ``gap_level`` is the level of the gaps' family intervals."""
    confidence = f"{100 * settings.confidence:g}%"
    return {
        "interval_method": INTERVAL_LABELS[settings.interval],
        "test": "exact group-vs-rest tests (Fisher 1922) Bonferroni-combined over the k groups: "
                "p = min(1, k x smallest p) (k = 2: the one test)",
        "pairwise_test": "Fisher exact test (Fisher 1922), two-sided; group against the rest of the "
                         "population when the reference is overall or rest; p-values against a "
                         "data-chosen reference (best) multiplied by k - 1",
        "trend_test": "Cochran-Armitage test for trend (scores = order of the attribute's values) "
                      "on slices over one ordered attribute, when every expected count is >= 5",
        "difference_interval": (f"Newcombe hybrid score (Newcombe 1998, method 10): {confidence} per comparison "
                                "(difference_ci_*; none against a data-chosen reference, best, "
                                "where it could not have that coverage); simultaneous over the whole family "
                                f"(simultaneous_ci_*: {confidence} for all together, "
                                "MOVER-Jeffreys (Laud 2017) at the Bonferroni level, Dunn 1961)"),
        "ratio_interval": "log (Katz et al. 1978); odds ratio: logit (Woolf 1955); "
                          "Haldane-Anscombe +0.5 on zero cells; per comparison (none against best)",
        "spread_interval": SPREAD_METHOD,
        "gap_family_interval": (f"the gap's simultaneous interval with each pair of groups at {gap_level:.6g} = 1 - "
                                f"{1 - settings.confidence:g} / max(family size, gaps), its lower "
                                "bound raised by the comparisons' simultaneous bounds on "
                                "|group - reference| (<= gap); every gap and comparison interval "
                                f"together: at least {1 - 2 * (1 - settings.confidence):g} (gap_family_ci_*)"),
        "verdict": ("per slice x metric: significant when any of its tests (omnibus, trend, a group "
                    "comparison) is significant after the correction; p_adjusted is that test's "
                    "(findings first)"),
        "four_fifths_rule": (f"true when the simultaneous interval of min / max lies wholly below "
                             f"{FOUR_FIFTHS:g}, false when wholly at or above, null when undecided"),
        "significance": (f"adjusted p < {settings.alpha:g} ({CORRECTION_LABELS[settings.correction]}) "
                         f"and effect >= {settings.min_effect:g} ({100 * settings.min_effect:g} percentage points)"),
    }
