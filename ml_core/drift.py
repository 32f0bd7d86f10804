"""Drift: has the traffic moved away from what the champion was trained on?

At registration a version keeps a *profile* (``profile.json``): for every encoded column, decile
bin edges of its training values and the share of training rows in each bin; and the share of
held-out scores in ten equal-width probability bins. The daily check bins the recent scored
traffic the same way and computes the population stability index

    PSI = sum over bins of (actual - expected) * ln(actual / expected)

per column (a categorical feature reports its worst category column) and for the scores. Rules
of thumb: below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a major one; the alert threshold
is ``drift_psi_threshold`` (0.2).

Blanks are counted apart: bins and PSI read the values that are there, and the profile keeps each
feature's share of blank rows. A share that rises by more than ``drift_missing_margin`` (0.1,
i.e. 10 points) over training's drifts the feature too: a sudden rise in blanks is the most
common data break in production. (Profiles written before blanks were counted have no shares:
that check is skipped for them.)

What the deep tier and the agents feel first is checked too (``check_rates``): the share of the
recent leads escalated, and the share in each label band, decided by the version's own card
numbers, against the shares the card expects (out of fold). A share further than
``drift_rate_margin`` from its expected value has drifted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ml_core.decision import Decision
from ml_core.spec import ModelSpec

_FLOOR = 1e-4  # an empty bin would make ln(actual / expected) infinite
SCORE_EDGES = [round(x, 1) for x in np.linspace(0.1, 0.9, 9)]
PROFILE_FILE = "profile.json"
"""The reference profile of a version, registered beside its model and checksummed in its card."""


def profile(spec: ModelSpec, X_train: np.ndarray, holdout_proba: np.ndarray) -> dict[str, Any]:
    columns = {}
    for j, column in enumerate(spec.columns):
        values = _present(X_train[:, j])
        edges = np.unique(np.quantile(values, np.linspace(0.1, 0.9, 9))).tolist() if len(values) else []
        columns[column] = {"edges": edges, "expected": _shares(values, edges)}
    return {
        "columns": columns,
        "missing": missing_shares(spec, X_train),
        "score": {"edges": SCORE_EDGES, "expected": _shares(holdout_proba, SCORE_EDGES)},
        "rows": int(len(X_train)),
    }


def psi(expected: list[float], actual: list[float]) -> float:
    e = np.maximum(np.asarray(expected, dtype=np.float64), _FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def missing_shares(spec: ModelSpec, X: np.ndarray) -> dict[str, float]:
    """Each feature's share of rows where it is blank (a blank is NaN in all its columns)."""
    shares, at = {}, 0
    for feature in spec.features:
        shares[feature.name] = round(float(np.isnan(X[:, at]).mean()) if len(X) else 0.0, 6)
        at += len(feature.columns)
    return shares


def check(
    spec: ModelSpec,
    reference: dict[str, Any],
    X_recent: np.ndarray,
    proba_recent: np.ndarray,
    threshold: float,
    missing_margin: float = 0.1,
) -> dict[str, Any]:
    """PSI per feature (worst column of each) and of the score distribution, the rise in each
    feature's share of blanks, and what drifted."""
    by_column = {
        column: psi(reference["columns"][column]["expected"], _shares(_present(X_recent[:, j]), reference["columns"][column]["edges"]))
        for j, column in enumerate(spec.columns)
        if column in reference["columns"]
    }
    by_feature = {
        f.name: round(max(by_column.get(c, 0.0) for c in f.columns), 5) for f in spec.features
    }
    score_psi = round(psi(reference["score"]["expected"], _shares(proba_recent, reference["score"]["edges"])), 5)
    expected_missing = reference.get("missing")
    recent_missing = missing_shares(spec, X_recent)
    missing = {
        name: {"expected": expected_missing.get(name, 0.0), "recent": share}
        for name, share in recent_missing.items()
    } if expected_missing is not None else {}
    missing_drifted = sorted(name for name, m in missing.items() if m["recent"] - m["expected"] > missing_margin)
    drifted = sorted({name for name, value in by_feature.items() if value > threshold} | set(missing_drifted))
    return {
        "features": by_feature,
        "missing": missing,
        "missing_margin": missing_margin,
        "missing_drifted": missing_drifted,
        "score": score_psi,
        "threshold": threshold,
        "drifted_features": drifted,
        "score_drifted": score_psi > threshold,
        "drifted": bool(drifted) or score_psi > threshold,
        "recent_rows": int(len(X_recent)),
        "reference_rows": reference["rows"],
    }


def _present(values: np.ndarray) -> np.ndarray:
    present: np.ndarray = values[~np.isnan(values)]
    return present


def check_rates(card_decision: dict[str, Any], proba_recent: np.ndarray, margin: float) -> dict[str, Any]:
    """Realized escalation rate and band shares of ``proba_recent`` against the card's ``decision``."""
    decision = Decision.from_card({"decision": card_decision})
    assert decision is not None
    p = np.asarray(proba_recent, dtype=np.float64)
    labels = decision.labels(np.round(p * 100.0, 2))
    rates = {"escalated": (card_decision["escalation"]["budget"], float(np.mean(decision.escalated(p))))}
    for label, expected in card_decision["bands"]["shares"].items():
        rates[label] = (expected, float(np.mean(labels == label)))
    return {
        "rates": {name: {"expected": round(e, 4), "actual": round(a, 4)} for name, (e, a) in rates.items()},
        "margin": margin,
        "drifted_rates": sorted(name for name, (e, a) in rates.items() if abs(a - e) > margin),
    }


def _shares(values: np.ndarray, edges: list[float]) -> list[float]:
    counts = np.bincount(np.searchsorted(np.asarray(edges), values, side="right"), minlength=len(edges) + 1)
    shares: list[float] = (counts / max(1, len(values))).round(6).tolist()
    return shares
