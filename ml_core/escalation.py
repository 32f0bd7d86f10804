"""Escalation with a stated meaning: split conformal prediction on out-of-fold scores.

A lead's *confidence* is ``max(p, 1 - p)``, the probability the calibrated model gives to the
outcome it predicts (``p >= 0.5``: converts). The nonconformity of a labelled row is
``s = 1 - p(true outcome)``. For a threshold ``t``, a lead's prediction set holds each outcome
``c`` with ``1 - p(c) < t``: both outcomes exactly when ``confidence < t``, and that is when the
lead is **escalated**. A set that holds one outcome, or neither (only when ``t < 0.5``), is a
fast-path call: the predicted outcome.

The guarantee. A fast-path call that is wrong has ``p(true) <= 1 - confidence <= 1 - t``, i.e.
``s >= t``: its set misses the true outcome. Split conformal bounds that event on a new,
exchangeable lead: with ``n`` calibration rows, ``P(s >= t) <= (#{s_i >= t} + 1) / (n + 1)``,
the threshold's *certified* ``alpha``. So **at most alpha of all leads are handled by the fast
path and labelled wrong**, and the fast path's accuracy on the leads it keeps is at least
``1 - alpha / (1 - budget)``, ``budget`` being the share escalated.

Marginal, not class-conditional (Mondrian): with one threshold on ``max(p, 1 - p)`` the rule is
the one ``confidence_threshold`` always served, so a legacy spec maps onto it exactly (its
alpha and budget are derived, its decisions unchanged) and serving needs one number. A
per-class threshold would rest, at a 5 % base rate, on a few dozen positives per fold; the
share of positives the fast path calls "no" is reported instead (``positives_missed``).

The calibration rows are out-of-fold scores of the training rows (cross-conformal): each score
comes from a model that did not see its row, the served model is refit on all rows; the
guarantee is approximate to that extent and ``check_out_of_fold`` measures it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ml_core.spec import EscalationRule


def confidence(p: np.ndarray) -> np.ndarray:
    """How far a probability is from a coin toss: ``max(p, 1 - p)``, from 0.5 to 1."""
    farther: np.ndarray = np.maximum(p, 1.0 - p)
    return farther


def nonconformity(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``1 - p(true outcome)`` per row."""
    return 1.0 - np.where(np.asarray(y) == 1, p, 1.0 - np.asarray(p))


_EVERYONE = math.nextafter(1.0, 2.0)  # confidence <= 1 < this: every lead escalated


def certified_alpha(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    """The smallest alpha split conformal certifies for ``threshold`` on calibration rows (y, p)."""
    s = nonconformity(y, p)
    return float((np.count_nonzero(s >= threshold) + 1) / (len(s) + 1))


def threshold_for_alpha(y: np.ndarray, p: np.ndarray, alpha: float) -> float:
    """The lowest threshold (fewest escalations) whose certified alpha is at most ``alpha``."""
    s = np.sort(nonconformity(y, p))
    k = math.ceil((len(s) + 1) * (1.0 - alpha))
    if k > len(s):  # alpha below 1 / (n + 1): no threshold is certified but escalating everyone
        return _EVERYONE
    return math.nextafter(float(s[k - 1]), 2.0)  # just above the k-th smallest: s_i >= t for n - k rows


def threshold_for_budget(p: np.ndarray, budget: float) -> float:
    """The threshold under which ``budget`` of the rows' confidences fall."""
    c = np.sort(confidence(np.asarray(p)))
    m = round(budget * len(c))
    if m <= 0:
        return 0.5
    if m >= len(c):
        return _EVERYONE
    return float(c[m])


@dataclass(frozen=True)
class Escalation:
    """A resolved escalation rule: what serving uses (``threshold``) and what it means."""

    rule: str
    """``budget``, ``alpha`` or ``threshold``: what the spec set; the other numbers are derived."""
    requested: float
    threshold: float
    """Escalated when ``confidence < threshold``."""
    alpha: float
    """Certified: at most this share of all leads is handled by the fast path and wrong."""
    budget: float
    """Share of the calibration rows escalated."""
    fast_path_accuracy: float | None
    """Measured on the calibration rows not escalated (None when every row is escalated)."""
    fast_path_accuracy_bound: float
    """``1 - alpha / (1 - budget)``, the accuracy the guarantee implies for the kept leads."""
    positives_missed: float | None
    """Share of positive rows the fast path calls negative (the small class's cost)."""
    rows: int

    def to_card(self) -> dict[str, Any]:
        return asdict(self)


def resolve(rule: EscalationRule, y: np.ndarray, p: np.ndarray) -> Escalation:
    """The threshold ``rule`` asks for on calibration rows (y, p), with its budget and guarantee."""
    y, p = np.asarray(y), np.asarray(p, dtype=np.float64)
    if rule.kind == "budget":
        threshold = threshold_for_budget(p, rule.value)
    elif rule.kind == "alpha":
        threshold = threshold_for_alpha(y, p, rule.value)
    else:
        threshold = rule.value
    return describe(rule.kind, rule.value, threshold, y, p)


def describe(rule: str, requested: float, threshold: float, y: np.ndarray, p: np.ndarray) -> Escalation:
    escalated = confidence(p) < threshold
    kept = ~escalated
    called = p >= 0.5
    budget = float(escalated.mean()) if len(p) else 0.0
    alpha = certified_alpha(y, p, threshold)
    positives = (y == 1) & kept
    return Escalation(
        rule=rule,
        requested=requested,
        threshold=threshold,
        alpha=round(alpha, 6),
        budget=round(budget, 6),
        fast_path_accuracy=round(float((called[kept] == (y[kept] == 1)).mean()), 6) if kept.any() else None,
        fast_path_accuracy_bound=round(max(0.0, 1.0 - alpha / (1.0 - budget)), 6) if budget < 1 else 0.0,
        positives_missed=round(float((~called[positives]).sum() / max(1, (y == 1).sum())), 6) if (y == 1).any() else None,
        rows=len(p),
    )


def curve(y: np.ndarray, p: np.ndarray, budgets: np.ndarray | None = None) -> list[dict[str, float | None]]:
    """Escalation budget against the guarantee it buys and the fast path's accuracy, for the report."""
    y, p = np.asarray(y), np.asarray(p, dtype=np.float64)
    budgets = np.linspace(0.0, 0.6, 25) if budgets is None else budgets
    points = []
    for b in budgets:
        e = describe("budget", float(b), threshold_for_budget(p, float(b)), y, p)
        points.append({"budget": e.budget, "alpha": e.alpha, "fast_path_accuracy": e.fast_path_accuracy})
    return points


def check_out_of_fold(rule: EscalationRule, y: np.ndarray, p: np.ndarray, folds: int = 5, seed: int = 0) -> dict[str, float]:
    """Does the rule keep its word on rows it was not resolved on? Resolve on all folds but one,
    apply to the one left out; report the realized share escalated and the realized share of
    leads the fast path got wrong (to compare with alpha)."""
    y, p = np.asarray(y), np.asarray(p, dtype=np.float64)
    order = np.random.default_rng(seed).permutation(len(p))
    escalated = wrong = 0
    for part in np.array_split(order, folds):
        rest = np.setdiff1d(order, part, assume_unique=True)
        t = resolve(rule, y[rest], p[rest]).threshold
        esc = confidence(p[part]) < t
        escalated += int(esc.sum())
        wrong += int((~esc & ((p[part] >= 0.5) != (y[part] == 1))).sum())
    return {"escalated": round(escalated / len(p), 6), "fast_path_wrong": round(wrong / len(p), 6), "folds": folds}
