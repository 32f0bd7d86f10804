"""Malformed leads thrown at a real worker: typed errors, valid neighbours scored, worker healthy."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore import ping, predict_batch, score_lead
from ml_core.errors import InvalidBatchError, InvalidLeadError, InvalidPayloadError
from ml_core.spec import load_spec
from tests import factories
from tests.fuzz.strategies import deeply_nested, malformed_leads, valid_leads
from tests.unit.helpers import MODEL, REPO_MODELS

SPEC = load_spec(REPO_MODELS, MODEL)
BUDGET = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@BUDGET
@given(lead=malformed_leads(SPEC))
def test_score_lead_answers_every_malformed_lead_with_a_typed_error(worker: Path, lead: object) -> None:
    with pytest.raises(InvalidLeadError) as caught:
        score_lead.delay(lead).get(timeout=10)
    assert caught.value.problems


@BUDGET
@given(good=st.lists(valid_leads(SPEC), min_size=1, max_size=20), bad=st.lists(malformed_leads(SPEC), min_size=1, max_size=20), data=st.randoms())
def test_predict_batch_scores_valid_leads_beside_malformed_ones(worker: Path, good: list, bad: list, data) -> None:  # type: ignore[no-untyped-def]
    batch = [(lead, True) for lead in good] + [(lead, False) for lead in bad]
    data.shuffle(batch)
    results = predict_batch.delay([lead for lead, _ in batch]).get(timeout=20)
    assert len(results) == len(batch)
    for result, (lead, ok) in zip(results, batch):
        if ok:
            assert result["lead_id"] == lead["id"] and "error" not in result
        else:
            assert result["error"] == "InvalidLeadError" and result["problems"]


def test_empty_oversized_and_deeply_nested_batches(worker: Path) -> None:
    assert predict_batch.delay([]).get(timeout=10) == []
    with pytest.raises(InvalidBatchError):
        predict_batch.delay([{}] * 10_001).get(timeout=20)
    # A lead nested hundreds of levels deep once killed the whole prefork worker (pickling it for
    # the child overflowed the stack), and acks_late brought it back: now it is refused unread.
    poison = predict_batch.delay([deeply_nested(300)])
    with pytest.raises(InvalidPayloadError, match="nested deeper than 32 levels"):
        poison.get(timeout=10)
    assert ping.delay().get(timeout=10)["pong"] is True
    assert "JSON nested deeper than 32 levels" in worker.read_text()
    assert score_lead.delay({**factories.lead(8), "id": "after-poison"}).get(timeout=10)["lead_id"] == "after-poison"
