"""Training tables: a user's CRM export (CSV or Parquet) or synthetic data, checked against a spec."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml_core.errors import DatasetError, listing
from ml_core.features import encode_frame
from ml_core.spec import ModelSpec


@dataclass(frozen=True)
class TrainingSet:
    X: np.ndarray
    y: np.ndarray
    source: str

    @property
    def fingerprint(self) -> dict[str, object]:
        digest = hashlib.sha256(np.ascontiguousarray(self.X).tobytes())
        digest.update(self.y.astype(np.int8).tobytes())
        return {
            "sha256": digest.hexdigest(),
            "rows": int(len(self.y)),
            "positive_rate": round(float(self.y.mean()), 4),
            "source": self.source,
        }


def read_table(path: Path) -> pd.DataFrame:
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    raise DatasetError(path.stem, f"{path.name}: expected a .csv or .parquet file")


def training_set(spec: ModelSpec, frame: pd.DataFrame, source: str) -> TrainingSet:
    """Every row must be valid: training on silently dropped rows would bias the model."""
    if spec.target not in frame.columns:
        raise DatasetError(spec.name, f"target column {spec.target!r} is missing")
    missing = [f.name for f in spec.features if f.required and f.name not in frame.columns]
    if missing:
        raise DatasetError(spec.name, f"feature columns missing: {listing(missing)}")
    y = pd.to_numeric(frame[spec.target], errors="coerce").to_numpy()
    bad_y = ~np.isin(y, (0, 1))
    if bad_y.any():
        raise DatasetError(spec.name, f"target {spec.target!r} must be 0 or 1; {int(bad_y.sum())} rows are not (first at row {int(np.argmax(bad_y))})")
    encoded = encode_frame(spec, frame)
    if encoded.errors:
        first = encoded.errors[0]
        detail = "; ".join(f"{f}: {p}" for f, p in first.problems)
        raise DatasetError(spec.name, f"{len(encoded.errors)} invalid rows, first is row {first.index}: {detail}")
    if len(np.unique(y)) < 2:
        raise DatasetError(spec.name, "the target has a single class; nothing to learn")
    return TrainingSet(X=encoded.X, y=y.astype(np.int8), source=source)
