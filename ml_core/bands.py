"""Label bands by share of the score distribution, and a lead's percentile in it.

``hot_share = 0.10`` means: the cut-off above which 10 % of the out-of-fold scores lie. Training
resolves the shares into cut-offs on the 0-100 score (``score = 100 x p``) and keeps them in the
card with 101 quantiles of the scores (0th to 100th percentile), from which a served lead's
``percentile`` is read. Fixed cut-offs (``hot``/``warm``) are kept as the spec gives them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ml_core.spec import Bands

QUANTILES = 101
LABELS = ("hot", "warm", "cold")


def cut_offs(bands: Bands, p: np.ndarray) -> tuple[float, float]:
    """(hot, warm) lower cut-offs on the 0-100 score: resolved from ``p`` by share, else the fixed ones."""
    if not bands.by_share:
        return bands.hot, bands.warm
    hot_share, warm_share = float(bands.hot_share), float(bands.warm_share or 0.0)  # type: ignore[arg-type]
    hot = float(np.quantile(p, 1.0 - hot_share)) * 100.0
    warm = float(np.quantile(p, 1.0 - hot_share - warm_share)) * 100.0
    return round(hot, 2), round(min(warm, hot), 2)


def labels(scores: np.ndarray, hot: float, warm: float) -> np.ndarray:
    return np.where(scores >= hot, "hot", np.where(scores >= warm, "warm", "cold"))


def shares(scores: np.ndarray, hot: float, warm: float) -> dict[str, float]:
    """Share of scores in each band."""
    found = labels(scores, hot, warm)
    return {label: round(float(np.mean(found == label)), 6) if len(found) else 0.0 for label in LABELS}


def quantiles(p: np.ndarray) -> list[float]:
    """The 0th to 100th percentile of ``p``: a compact copy of the distribution for the card."""
    return [round(float(q), 6) for q in np.quantile(p, np.linspace(0.0, 1.0, QUANTILES))]


def percentile(p: np.ndarray, table: tuple[float, ...] | list[float]) -> np.ndarray:
    """Where each p lies in the distribution ``table`` describes, 0 to 100 (interpolated)."""
    xs, ranks = _interpolation(tuple(table))
    if len(xs) == 1:
        return np.full(len(p), 50.0)
    percentiles: np.ndarray = np.round(np.interp(p, xs, ranks), 1)
    return percentiles


@lru_cache(maxsize=64)
def _interpolation(table: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    # once per served version, not per score (two sorts of the table each time otherwise)
    q = np.asarray(table, dtype=np.float64)
    # np.interp needs increasing x: where quantiles tie (a plateau of equal scores), the leads on it
    # get the plateau's middle rank
    xs, first = np.unique(q, return_index=True)
    last = len(q) - 1 - np.unique(q[::-1], return_index=True)[1]
    return xs, (first + last) / 2.0 * (100.0 / (len(q) - 1))


def resolve(bands: Bands, p: np.ndarray) -> dict[str, Any]:
    """The card's ``bands`` section: cut-offs, how they were set, and the share of ``p`` in each band."""
    hot, warm = cut_offs(bands, p)
    section: dict[str, Any] = {"by": "share" if bands.by_share else "cut_off", "hot": hot, "warm": warm}
    if bands.by_share:
        section["requested"] = {"hot_share": bands.hot_share, "warm_share": bands.warm_share}
    section["shares"] = shares(np.round(p * 100.0, 2), hot, warm)
    return section
