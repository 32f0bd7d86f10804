"""The one lead factory of the test suite: synthetic leads of a committed model, as a caller sends
them (the target column dropped), seeded so a test sees the same leads on every run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ml_core.spec import load_spec
from ml_core.synthetic import generate

REPO_MODELS = Path(__file__).resolve().parents[1] / "models"
MODEL = "lead_scorer"


def lead_frame(n: int, seed: int = 7, *, model: str = MODEL, prefix: str | None = None) -> pd.DataFrame:
    """``n`` leads as a table (for CSV and Parquet files); ``prefix`` gives ids ``<prefix>-<i>``."""
    frame = generate(model, n, seed).drop(columns=load_spec(REPO_MODELS, model).target)
    if prefix is not None:
        frame["id"] = [f"{prefix}-{i}" for i in range(n)]
    return frame


def leads(n: int, seed: int = 7, *, model: str = MODEL, prefix: str | None = None) -> list[dict[str, Any]]:
    """``n`` leads as the JSON objects ``score_lead`` and ``predict_batch`` take."""
    return lead_frame(n, seed, model=model, prefix=prefix).to_dict("records")  # type: ignore[return-value]


def lead(seed: int = 7, *, model: str = MODEL) -> dict[str, Any]:
    """One lead."""
    return leads(1, seed, model=model)[0]
