"""The summary of a bulk job, built from its recorded chunks one at a time.

Scores carry two decimals, so an exact histogram has 10,001 bins (0.00 to 100.00): percentiles
come from it exactly (nearest rank, as ``numpy.percentile(..., method="inverted_cdf")``) without
holding a million scores. Memory is one chunk plus that histogram, whatever the job's size.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
HISTOGRAM_EDGES = tuple(range(0, 101, 10))
MAX_LISTED_INVALID = 1000
"""Invalid leads listed in a summary; every one of them is in the job's results."""
_STEPS = 10_001


class SummaryBuilder:
    def __init__(self) -> None:
        self._hist = np.zeros(_STEPS, dtype=np.int64)
        self._labels: Counter[str] = Counter()
        self._served_by: Counter[str] = Counter()
        self._versions: Counter[str] = Counter()
        self._fallback_reasons: set[str] = set()
        self._chunks = 0
        self._leads = 0
        self._invalid = 0
        self._escalated = 0
        self._listed: list[dict[str, Any]] = []

    def add(self, packed: dict[str, Any]) -> None:
        """Fold in one recorded chunk (``ml_core.bulk_chunk.pack``). Each chunk exactly once."""
        scored = packed["scored"]
        n_scored = len(scored["pos"])
        self._chunks += 1
        self._leads += packed["n"]
        self._invalid += len(packed["invalid"])
        if n_scored:
            steps = np.rint(np.asarray(scored["score"], dtype=np.float64) * 100).astype(np.int64)
            self._hist += np.bincount(np.clip(steps, 0, _STEPS - 1), minlength=_STEPS)
            self._labels.update(scored["label"])
            self._escalated += sum(map(bool, scored["escalated"]))
            self._served_by[packed["served_by"]] += n_scored
            self._versions[packed["model_version"]] += n_scored
            if packed["fallback_reason"]:
                self._fallback_reasons.add(packed["fallback_reason"])
        room = MAX_LISTED_INVALID - len(self._listed)
        for error in packed["invalid"][: max(room, 0)]:
            self._listed.append({"row": packed["first_row"] + error["pos"], **{k: error[k] for k in ("lead_id", "problems", "message")}})

    def summary(self) -> dict[str, Any]:
        scored = int(self._hist.sum())
        values = np.arange(_STEPS) / 100.0
        return {
            "chunks": self._chunks,
            "leads": self._leads,
            "scored": scored,
            "invalid": self._invalid,
            "labels": {label: self._labels.get(label, 0) for label in ("hot", "warm", "cold")},
            "escalated": self._escalated,
            "served_by": dict(self._served_by),
            "model_versions": dict(self._versions),
            "fallback_reasons": sorted(self._fallback_reasons),
            "score_mean": round(float((self._hist * values).sum() / scored), 4) if scored else None,
            "score_percentiles": {f"p{q}": self._percentile(q, scored) for q in PERCENTILES},
            "score_histogram": self._histogram(),
            "invalid_leads": self._listed,
            "invalid_leads_listed": len(self._listed),
        }

    def _percentile(self, q: float, scored: int) -> float | None:
        if not scored:
            return None
        rank = max(int(np.ceil(q / 100.0 * scored)), 1)
        return float(np.searchsorted(np.cumsum(self._hist), rank) / 100.0)

    def _histogram(self) -> list[dict[str, Any]]:
        bins = []
        for lo, hi in zip(HISTOGRAM_EDGES, HISTOGRAM_EDGES[1:]):
            top = hi * 100 + (1 if hi == 100 else 0)  # the last bin includes 100.00
            bins.append({"from": lo, "to": hi, "count": int(self._hist[lo * 100 : top].sum())})
        return bins
