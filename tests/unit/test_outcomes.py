"""The outcome store and the choice of a lead's scored features (no services)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ml_core.errors import InvalidOutcomeError
from ml_core.outcomes import OutcomeStore, Snapshot, parse_outcome, snapshot_before, subject
from ml_core.store.state import StateStore, embedded_url

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lead_id", "outcome", "occurred_at", "problem"),
    [
        ("", True, "2026-01-01T00:00:00Z", "lead_id"),
        ("l-1", "yes", "2026-01-01T00:00:00Z", "outcome"),
        ("l-1", 2, "2026-01-01T00:00:00Z", "outcome"),
        ("l-1", True, "2026-01-01T00:00:00", "timezone"),
        ("l-1", True, "yesterday", "ISO 8601"),
        ("l-1", True, "2999-01-01T00:00:00Z", "future"),
    ],
)
def test_bad_outcomes_are_typed_errors_naming_the_field(lead_id, outcome, occurred_at, problem) -> None:
    with pytest.raises(InvalidOutcomeError, match=problem):
        parse_outcome(lead_id, outcome, occurred_at)


def test_an_outcome_takes_the_last_snapshot_taken_before_it() -> None:
    snaps = [Snapshot({"x": i}, f"v{i}", (NOW + timedelta(days=d)).timestamp()) for i, d in enumerate((-10, -2, 1))]
    assert snapshot_before(snaps, NOW).features == {"x": 1}
    assert snapshot_before(snaps, NOW - timedelta(days=20)) is None  # scored only after: would leak the outcome


def test_store_is_durable_idempotent_and_yields_training_rows(tmp_path: Path) -> None:
    store = OutcomeStore(StateStore(embedded_url(tmp_path)))
    snap = Snapshot({"timeline_urgency": 0.5, "questions_asked": 3}, "v1", NOW.timestamp() - 60)
    store.record("lead_scorer", "a", 1, NOW, snap)
    store.record("lead_scorer", "a", 0, NOW, snap)  # a redelivery or a correction replaces the row
    store.record("lead_scorer", "b", 1, NOW, None)
    with store.store.reading() as conn:
        mode, sync = conn.exec_driver_sql("PRAGMA journal_mode").scalar(), conn.exec_driver_sql("PRAGMA synchronous").scalar()
    assert (mode, sync) == ("wal", 2)  # 2 is FULL: every commit fsyncs the log
    store.store.close()

    reopened = OutcomeStore(StateStore(embedded_url(tmp_path)))
    assert reopened.counts("lead_scorer") == {"outcomes": 2, "with_features": 1, "without_features": 1, "positive": 1}
    frame = reopened.training_frame("lead_scorer", "converted")
    assert frame.to_dict("records") == [{"id": "a", "timeline_urgency": 0.5, "questions_asked": 3, "converted": 0}]
    assert reopened.get("lead_scorer", "a")["scored_version"] == "v1"
    assert reopened.get("churn_predictor", "a") is None


def test_a_pair_model_outcome_names_its_property_and_a_lead_model_outcome_does_not() -> None:
    with pytest.raises(InvalidOutcomeError, match="property_id: required"):
        parse_outcome("l-1", True, "2026-01-01T00:00:00Z", pair_model=True)
    with pytest.raises(InvalidOutcomeError, match="property_id: not expected"):
        parse_outcome("l-1", True, "2026-01-01T00:00:00Z", "p-1")
    with pytest.raises(InvalidOutcomeError, match="property_id: expected a string id"):
        parse_outcome("l-1", True, "2026-01-01T00:00:00Z", 7, pair_model=True)
    assert parse_outcome("l-1", 1, "2026-01-01T00:00:00Z", "p-1", pair_model=True)[:2] == ("l-1", 1)


def test_pair_subjects_are_unambiguous_and_kept_per_property(tmp_path: Path) -> None:
    assert subject("a", None) == "a"
    assert subject("a/b", "c") != subject("a", "b/c")
    store = OutcomeStore(StateStore(embedded_url(tmp_path)))
    for property_id, label in (("p-1", 1), ("p-2", 0)):
        store.record("property_matcher", "a", label, NOW, Snapshot({"within_budget": label}, "v1", NOW.timestamp()), property_id)
    assert store.counts("property_matcher")["outcomes"] == 2
    assert store.get("property_matcher", "a", "p-2")["features"] == {"within_budget": 0}
    assert store.get("property_matcher", "a") is None
    frame = store.training_frame("property_matcher", "matched")
    assert frame[["within_budget", "matched"]].values.tolist() == [[1, 1], [0, 0]]
