"""Outcomes: what actually happened to a scored lead, kept with the features it was scored on.

Outcomes live in the state store's ``outcomes`` table (``ml_core.store``): SQLite by default (WAL,
``synchronous=FULL``: a commit returns only after the log is fsynced), PostgreSQL for a fleet, so
outcomes recorded by any worker of any host land in the one table a retrain reads. An outcome whose
recording returned survives a crash of the process, of Redis, or of the machine. One row per model
and lead: recording again (a redelivered task, a correction) replaces the row.

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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ml_core.errors import InvalidOutcomeError
from ml_core.identifiers import id_problem
from ml_core.store.state import StateStore
from ml_core.timestamps import utc_iso

if TYPE_CHECKING:
    import pandas as pd

LEGACY_FILE = "outcomes.sqlite3"
"""Where outcomes were kept before the state store (``leadscore db import`` reads it)."""
EARLIEST_OUTCOME = datetime(2000, 1, 1, tzinfo=UTC)
"""Older dates are typos (year 0001, 1970 epochs): no CRM outcome predates this product's leads."""
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
    """The outcomes of a ``StateStore``."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

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
        self.put([row])
        return {k: v for k, v in row.items() if k != "features"} | {"property_id": property_id, "with_features": snapshot is not None}

    def put(self, rows: list[dict[str, Any]]) -> None:
        """Insert or replace whole rows (the table's columns), in one transaction."""
        from ml_core.store.schema import outcomes

        if not rows:
            return
        with self.store.writing() as conn:
            for row in rows:
                insert = self.store.upsert(outcomes).values(**row)
                keep = {c: insert.excluded[c] for c in row if c not in ("model", "lead_id", "property_id")}
                conn.execute(insert.on_conflict_do_update(index_elements=["model", "lead_id", "property_id"], set_=keep))

    def get(self, model: str, lead_id: str, property_id: str | None = None) -> dict[str, Any] | None:
        from sqlalchemy import select

        from ml_core.store.schema import outcomes as t

        with self.store.reading() as conn:
            found = conn.execute(select(t).where(t.c.model == model, t.c.lead_id == lead_id, t.c.property_id == (property_id or ""))).first()
        if found is None:
            return None
        row = dict(found._mapping)
        row["features"] = json.loads(row["features"]) if row["features"] else None
        row["property_id"] = row["property_id"] or None
        return row

    def counts(self, model: str) -> dict[str, int]:
        from sqlalchemy import func, select

        from ml_core.store.schema import outcomes as t

        with self.store.reading() as conn:
            total, with_features, positive = conn.execute(
                select(func.count(), func.count(t.c.features), func.coalesce(func.sum(t.c.outcome), 0)).where(t.c.model == model)
            ).one()
        return {"outcomes": int(total), "with_features": int(with_features), "without_features": int(total - with_features), "positive": int(positive)}

    def training_frame(self, model: str, target: str) -> pd.DataFrame:
        """Outcomes that have features, as a table of the snapshot's features and ``target``."""
        import pandas as pd  # retraining only: scoring workers record outcomes without pandas
        from sqlalchemy import select

        from ml_core.store.schema import outcomes as t

        with self.store.reading() as conn:
            rows = conn.execute(
                select(t.c.lead_id, t.c.features, t.c.outcome).where(t.c.model == model, t.c.features.is_not(None))
                .order_by(t.c.lead_id, t.c.property_id)
            ).all()
        records = [{"id": lead_id, **json.loads(features), target: outcome} for lead_id, features, outcome in rows]
        return pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=["id", target])
