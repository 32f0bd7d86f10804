"""Which candidate to serve: paired comparison on the same folds, with a one-standard-error rule.

Every candidate is scored on the same repeated stratified folds, so for two candidates the
per-fold differences d_i = score_complex,i - score_simple,i pair out the folds' own difficulty.
Their standard error uses the Nadeau-Bengio correction for cross-validation (the training sets of
the folds overlap, so the plain std / sqrt(n) is too optimistic):

    se(d) = std(d) * sqrt(1 / n + 1 / (folds - 1))        n = folds x repeats fold scores

The rule (``RULE``): take the candidate with the best mean score; serve the simplest candidate
(``ml_core.candidates.SIMPLICITY``) whose paired mean difference to it is at most one standard
error, i.e. a more complex candidate is served only when it beats every simpler one by more than
one standard error of the paired difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

RULE = (
    "one-standard-error rule on paired folds: the simplest candidate (logistic_regression < gradient_boosting "
    "< blend < mlp) whose mean fold score is within one standard error of the paired difference from the best"
)


@dataclass(frozen=True)
class Choice:
    family: str
    reason: str
    comparisons: list[dict[str, Any]] = field(default_factory=list)


def paired_se(d: np.ndarray, folds: int) -> float:
    """Corrected standard error of the mean of paired fold differences ``d``."""
    if len(d) < 2:
        return 0.0
    return float(np.std(d, ddof=1) * np.sqrt(1.0 / len(d) + 1.0 / max(folds - 1, 1)))


def choose(scores: dict[str, np.ndarray], order: tuple[str, ...], folds: int, metric: str) -> Choice:
    """Apply ``RULE`` to per-fold ``scores`` (same folds, same order for every candidate)."""
    ranked = [name for name in order if name in scores]
    best = max(ranked, key=lambda name: (float(np.mean(scores[name])), -ranked.index(name)))
    comparisons: list[dict[str, Any]] = []
    within: dict[str, Any] | None = None
    for name in ranked[: ranked.index(best)]:
        d = scores[best] - scores[name]
        mean, se = float(np.mean(d)), paired_se(d, folds)
        comparisons.append({"simpler": name, "better": best, "mean_difference": round(mean, 5), "se": round(se, 5)})
        if within is None and mean <= se:
            within = comparisons[-1]
    if within is not None:
        c = within
        return Choice(c["simpler"], (
                f"chosen because {best} beats it by only {c['mean_difference']:+.4f} {metric}, within one standard error "
                f"({c['se']:.4f}) of the paired difference: the simpler model is kept"), comparisons)
    if not comparisons:
        others = [n for n in ranked if n != best]
        reason = f"chosen because it has the best mean {metric}" + (f" and is the simplest candidate (against {', '.join(others)})" if others else "")
        return Choice(best, reason, comparisons)
    margins = ", ".join(f"{c['simpler']} by {c['mean_difference']:+.4f} > SE {c['se']:.4f}" for c in comparisons)
    why = f"chosen because it has the best mean {metric} and beats every simpler candidate by more than one standard error ({margins})"
    return Choice(best, why, comparisons)
