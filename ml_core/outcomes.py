"""Outcomes: what actually happened to a scored lead, kept with the features it was scored on.

The store is one SQLite file (``<data_dir>/outcomes.sqlite3``) in WAL mode with
``synchronous=FULL``: a commit returns only after the write-ahead log is fsynced, so an outcome
whose recording returned survives a crash of the process, of Redis, or of the machine. One row per
model and lead: recording again (a redelivered task, a correction) replaces the row.

No training/serving skew: the features stored are the snapshot a worker recorded when it scored
the lead (``leadscore/worker/snapshots.py``), the last one taken at or before the outcome occurred. Features
scored only after the outcome would leak the outcome into training, and a lead never scored has
none: such an outcome is stored with ``features`` NULL (the label is never lost) and left out of
training, which reports how many were.

Pair models (``property_matcher`` and the others that score a lead against a listing) learn from
outcomes of a (lead, property) pair: such an outcome names the property too, and its features are
the derived pair features the lead was ranked with for that listing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_core.errors import InvalidOutcomeError
from ml_core.identifiers import id_problem
from ml_core.timestamps import utc_iso

if TYPE_CHECKING:
    import pandas as pd

FILE = "outcomes.sqlite3"
EARLIEST_OUTCOME = datetime(2000, 1, 1, tzinfo=UTC)
"""Older dates are typos (year 0001, 1970 epochs): no CRM outcome predates this product's leads."""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    model          TEXT NOT NULL,
    lead_id        TEXT NOT NULL,
    property_id    TEXT NOT NULL DEFAULT '',
    outcome        INTEGER NOT NULL CHECK (outcome IN (0, 1)),
    occurred_at    TEXT NOT NULL,
    recorded_at    TEXT NOT NULL,
    features       TEXT,
    scored_version TEXT,
    scored_at      TEXT,
    PRIMARY KEY (model, lead_id, property_id)
)
"""


@dataclass(frozen=True)
class Snapshot:
    """The features a lead was scored with, the version that scored it, and when (epoch seconds)."""

    features: dict[str, Any]
    version: str
    scored_at: float


def subject(lead_id: str, property_id: str | None = None) -> str:
    """What an outcome is about, as one string: the lead, or the (lead, property) pair (unambiguous
    whatever the ids contain)."""
    return lead_id if property_id is None else json.dumps([lead_id, property_id], separators=(",", ":"))


def parse_outcome(
    lead_id: Any, outcome: Any, occurred_at: Any, property_id: Any = None, *, pair_model: bool = False
) -> tuple[str, int, datetime]:
    """Validate the inputs of ``record_outcome``; raise ``InvalidOutcomeError`` naming the field.
    A pair model's outcome needs ``property_id``; a lead model's must not have one."""
    problem = id_problem(lead_id) or ("" if isinstance(lead_id, str) else "expected a string id")
    if problem:
        raise InvalidOutcomeError(None, f"lead_id: {problem}")
    if pair_model and property_id is None:
        raise InvalidOutcomeError(lead_id, "property_id: required, the model scores (lead, property) pairs")
    if not pair_model and property_id is not None:
        raise InvalidOutcomeError(lead_id, "property_id: not expected, the model scores leads alone")
    if property_id is not None:
        problem = id_problem(property_id) or ("" if isinstance(property_id, str) else "expected a string id")
        if problem:
            raise InvalidOutcomeError(lead_id, f"property_id: {problem}")
    if isinstance(outcome, bool) or outcome in (0, 1):
        label = int(outcome)
    else:
        raise InvalidOutcomeError(lead_id, "outcome: expected true/false or 0/1")
    if not isinstance(occurred_at, str):
        raise InvalidOutcomeError(lead_id, "occurred_at: expected an ISO 8601 string")
    try:
        when = datetime.fromisoformat(occurred_at.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidOutcomeError(lead_id, "occurred_at: not an ISO 8601 date-time") from None
    if when.tzinfo is None:
        raise InvalidOutcomeError(lead_id, "occurred_at: needs a timezone (e.g. Z for UTC)")
    if when > datetime.now(UTC):
        raise InvalidOutcomeError(lead_id, "occurred_at: in the future")
    if when < EARLIEST_OUTCOME:
        raise InvalidOutcomeError(lead_id, f"occurred_at: before {EARLIEST_OUTCOME.date().isoformat()}")
    return lead_id, label, when


def snapshot_before(snapshots: Iterable[Snapshot], occurred_at: datetime) -> Snapshot | None:
    """The newest snapshot taken at or before the outcome, or ``None``."""
    cutoff = occurred_at.timestamp()
    eligible = [s for s in snapshots if s.scored_at <= cutoff]
    return max(eligible, key=lambda s: s.scored_at) if eligible else None


class OutcomeStore:
    """Thread-safe; one connection per store, opened on first use."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(_SCHEMA)
            self._conn = conn
        return self._conn

    def record(
        self, model: str, lead_id: str, outcome: int, occurred_at: datetime, snapshot: Snapshot | None, property_id: str | None = None
    ) -> dict[str, Any]:
        """Store (or replace) the outcome of a lead, or of a (lead, property) pair; durable when this returns."""
        row = {
            "model": model,
            "lead_id": lead_id,
            "property_id": property_id or "",
            "outcome": int(outcome),
            "occurred_at": utc_iso(occurred_at.timestamp()),
            "recorded_at": utc_iso(),
            "features": json.dumps(snapshot.features, separators=(",", ":")) if snapshot else None,
            "scored_version": snapshot.version if snapshot else None,
            "scored_at": utc_iso(snapshot.scored_at) if snapshot else None,
        }
        with self._lock:
            self._db().execute(
                "INSERT OR REPLACE INTO outcomes VALUES "
                "(:model, :lead_id, :property_id, :outcome, :occurred_at, :recorded_at, :features, :scored_version, :scored_at)",
                row,
            )
        return {k: v for k, v in row.items() if k != "features"} | {"property_id": property_id, "with_features": snapshot is not None}

    def get(self, model: str, lead_id: str, property_id: str | None = None) -> dict[str, Any] | None:
        with self._lock:
            cur = self._db().execute(
                "SELECT * FROM outcomes WHERE model = ? AND lead_id = ? AND property_id = ?", (model, lead_id, property_id or "")
            )
            found = cur.fetchone()
            names = [d[0] for d in cur.description]
        if found is None:
            return None
        row = dict(zip(names, found))
        row["features"] = json.loads(row["features"]) if row["features"] else None
        row["property_id"] = row["property_id"] or None
        return row

    def counts(self, model: str) -> dict[str, int]:
        with self._lock:
            total, with_features, positive = self._db().execute(
                "SELECT COUNT(*), COUNT(features), COALESCE(SUM(outcome), 0) FROM outcomes WHERE model = ?",
                (model,),
            ).fetchone()
        return {"outcomes": int(total), "with_features": int(with_features), "without_features": int(total - with_features), "positive": int(positive)}

    def training_frame(self, model: str, target: str) -> pd.DataFrame:
        import pandas as pd  # retraining only: scoring workers record outcomes without pandas

        """Outcomes that have features, as a table of the snapshot's features and ``target``."""
        with self._lock:
            rows = self._db().execute(
                "SELECT lead_id, features, outcome FROM outcomes WHERE model = ? AND features IS NOT NULL ORDER BY lead_id, property_id",
                (model,),
            ).fetchall()
        records = [{"id": lead_id, **json.loads(features), target: outcome} for lead_id, features, outcome in rows]
        return pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=["id", target])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
