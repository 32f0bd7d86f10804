"""Metrics for a ranked list of leads: higher is better for every name in ``METRICS``.

Leads are worked from the top of the list, so besides ROC-AUC and average precision the
``topK_capture`` metrics give the share of all positives found in the top K% of the ranking, and
``topK_lift`` that share divided by K% (how many times better than working leads at random).
The top K% is the first ``ceil(K% x rows)`` rows by descending score; ties keep row order, so a
constant score captures exactly the positives among the first rows.

numpy only at import: spec parsing (which serving processes do) reads ``METRICS``.
"""

from __future__ import annotations

import math

import numpy as np

_TOP = {"top10": 0.10, "top20": 0.20}
METRICS = (
    "roc_auc",
    "average_precision",
    "top10_capture",
    "top20_capture",
    "top10_lift",
    "top20_lift",
    "neg_log_loss",
    "neg_brier_score",
)
"""What a spec's ``metric`` may name: the selection and gate metric."""


def top_capture(y: np.ndarray, p: np.ndarray, share: float) -> float:
    """Share of the positives found in the top ``share`` of rows ranked by ``p``."""
    y = np.asarray(y)
    positives = int(y.sum())
    if positives == 0:
        return 0.0
    k = math.ceil(share * len(y) - 1e-9)
    order = np.argsort(-np.asarray(p, dtype=np.float64), kind="stable")
    return float(y[order[:k]].sum() / positives)


def metric_value(name: str, y: np.ndarray, p: np.ndarray) -> float:
    """The metric ``name`` (one of ``METRICS``) of positive-class probabilities ``p`` against labels ``y``."""
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    if name.endswith(("_capture", "_lift")):
        top, kind = name.split("_")
        capture = top_capture(y, p, _TOP[top])
        return capture if kind == "capture" else capture / _TOP[top]
    if name == "roc_auc":
        return float(roc_auc_score(y, p))
    if name == "average_precision":
        return float(average_precision_score(y, p))
    if name == "neg_log_loss":
        return -float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]))
    if name == "neg_brier_score":
        return -float(brier_score_loss(y, p))
    raise ValueError(f"unknown metric {name!r}; choose from {METRICS}")


def ranking_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Every ranking metric plus log loss and Brier score, rounded for a card."""
    numbers = {name: metric_value(name, y, p) for name in METRICS[:6]}
    numbers["log_loss"] = -metric_value("neg_log_loss", y, p)
    numbers["brier"] = -metric_value("neg_brier_score", y, p)
    return {k: round(v, 5) for k, v in numbers.items()}
