"""Training tables: a user's CRM export (CSV, Parquet or JSON lines) or synthetic data, checked against a spec.

A JSON-lines table holds one lead per line, as bulk scoring reads them, with its label:
``{"id": ..., "context": {...}, "<target>": 0 | 1}`` (or the features instead of the context).
A conversation's features are derived by ``ml_core.context``, the code that derives them when the
lead is scored, so a model trains on exactly what serving will derive; the table keeps only the
derived values, never the text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml_core.errors import DatasetError, listing
from ml_core.features import encode_frame
from ml_core.identifiers import id_problem
from ml_core.json_values import json_type
from ml_core.lead_files import CSV_SUFFIXES, JSONL_SUFFIXES, PARQUET_SUFFIXES, read_lead_file
from ml_core.spec import ModelSpec

_JSONL_CHUNK = 2_000  # lines derived at a time: a file's text is never all in memory


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
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return pd.read_parquet(path)
    if path.suffix.lower() in CSV_SUFFIXES:
        return pd.read_csv(path)
    raise DatasetError(path.stem, f"{path.name}: expected a .csv or .parquet file")


def read_training_table(spec: ModelSpec, path: Path) -> tuple[pd.DataFrame, str]:
    """The table to train ``spec`` on from a file, and its source as a card records it."""
    path = Path(path)
    if path.suffix.lower() not in JSONL_SUFFIXES:
        if path.suffix.lower() not in CSV_SUFFIXES + PARQUET_SUFFIXES:
            raise DatasetError(spec.name, f"{path.name}: expected a .csv, .parquet or .jsonl file")
        return read_table(path), path.name
    frame, conversations = json_lines_table(spec, path)
    if not conversations:
        return frame, path.name
    from ml_core.context import version

    return frame, f"{path.name} ({conversations:,} conversations derived by {version(spec)})"


def json_lines_table(spec: ModelSpec, path: Path) -> tuple[pd.DataFrame, int]:
    """Each line's features (derived from its context, or as given) and label, indexed by row (0-based
    among the non-blank lines); and how many rows were conversations. Every row must be valid, as in
    ``training_set``: a bad one is a ``DatasetError`` naming its row, id and the part of the lead."""
    from ml_core.context import expand_leads

    rows: list[dict[str, object]] = []
    first_bad: tuple[int, object, list[list[str]]] | None = None
    n_bad = conversations = 0

    def refuse(row: int, lead_id: object, problems: list[list[str]]) -> None:
        nonlocal first_bad, n_bad
        n_bad += 1
        if first_bad is None or row < first_bad[0]:  # a chunk's derivation errors come after its unreadable lines
            first_bad = (row, lead_id if not id_problem(lead_id) else None, problems)

    for chunk in read_lead_file(Path(path), spec, _JSONL_CHUNK):
        leads, labels, at = [], [], []
        for pos, lead in enumerate(chunk.leads):
            row = chunk.first_row + pos
            if pos in chunk.rejected:
                refuse(row, None, [[p["field"], p["problem"]] for p in chunk.rejected[pos]["problems"]])
            elif not isinstance(lead, dict):
                refuse(row, None, [["row", f"expected a JSON object, got {json_type(lead)}"]])
            elif "context" in lead and spec.context is None:
                refuse(row, lead.get("id"), [["context", f"model {spec.name!r} is not scored from conversations (its spec has no [context])"]])
            else:
                leads.append({k: v for k, v in lead.items() if k != spec.target})
                labels.append(lead.get(spec.target))
                at.append(row)
        expanded, derived, errors = expand_leads(spec, leads)
        conversations += len(derived)
        for i, lead in enumerate(expanded):
            if i in errors:
                refuse(at[i], errors[i].lead_id, errors[i].problems)
            else:
                rows.append({**lead, spec.target: labels[i]})
    if first_bad is not None:
        row, lead_id, problems = first_bad
        named = f" (id {lead_id})" if lead_id is not None else ""
        detail = "; ".join(f"{f}: {p}" for f, p in problems)
        raise DatasetError(spec.name, f"{Path(path).name}: {n_bad:,} invalid rows, first is row {row}{named}: {detail}")
    frame = pd.DataFrame(rows, index=pd.RangeIndex(len(rows)))
    if spec.target not in frame.columns:
        frame[spec.target] = np.nan  # no row had a label: training_set names the target
    return frame, conversations


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
