"""ml_core.context: each feature's rule, each text signal with positive, negative and negated phrases."""

from __future__ import annotations

from typing import Any

import pytest

from ml_core.context import derive_features
from ml_core.context.derive import NO_EXCHANGE_HOURS, UNANSWERED_HOURS
from ml_core.spec import ModelSpec


def thread(*lead_texts: str, gap_hours: float = 2.0) -> list[dict[str, Any]]:
    """An agent message then the lead's reply ``gap_hours`` later, once per text."""
    messages = []
    for k, text in enumerate(lead_texts):
        day = f"2026-03-{k + 1:02d}"
        messages.append({"from": "agent", "at": f"{day}T08:00:00Z", "text": "Hello, any news?"})
        messages.append({"from": "lead", "at": f"{day}T{8 + int(gap_hours):02d}:{int(gap_hours % 1 * 60):02d}:00Z", "text": text})
    return messages


def derived(spec: ModelSpec, *lead_texts: str, **fields: Any) -> dict[str, Any]:
    features, problems = derive_features(spec, {"messages": thread(*lead_texts), **fields})
    assert not problems and features is not None
    return features


BOOLEAN_CASES = [
    # feature, positive, negative (no signal), negated
    ("price_range_mentioned", "Our budget is $450k.", "We like big kitchens.", "We have no budget yet."),
    ("price_range_mentioned", "We could go up to 500k.", "It has 3 bedrooms.", "We haven't set a price range."),
    ("financing_mentioned", "We're pre-approved for a mortgage.", "We like the garden.", "Not pre-approved yet."),
    ("financing_mentioned", "We'd be paying cash.", "Is it sunny?", "We don't need a loan."),
    ("financing_mentioned", "Our preapproval came through.", "Nice photos.", "Pre-approval still pending."),
    ("previous_real_estate_experience", "We sold our condo last year.", "We rent now.", "We have never owned a home."),
    ("previous_real_estate_experience", "We own our current house.", "First time looking.", "I haven't bought before."),
]


@pytest.mark.parametrize(("feature", "positive", "negative", "negated"), BOOLEAN_CASES)
def test_boolean_signals_read_positive_negative_and_negated_phrases(
    spec: ModelSpec, feature: str, positive: str, negative: str, negated: str
) -> None:
    assert derived(spec, positive)[feature] is True
    assert derived(spec, negative)[feature] is False
    assert derived(spec, negated)[feature] is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Somewhere near 450k.", True), ("Up to 1.2 million.", True), ("About .5 million.", True), ("We have 450,000 saved.", False),
        ("Call me at 5551234567.", False), ("1" * 2000, False), ("1.," * 600 + "5k", True),
        ("1" * 1990 + " grand", False),  # no amount has 1,990 digits
    ],
)
def test_amounts_are_read_from_the_start_of_a_number_only(spec: ModelSpec, text: str, expected: bool) -> None:
    # the amount pattern starts only where a run of digits starts and reads at most 16 characters
    # of it: tried from every digit to the end of the run, a long number cost the square of its
    # length (0.1 s per message of 2,000 digits, 20 s per thread of them)
    assert derived(spec, text)["price_range_mentioned"] is expected


def test_household_counts_even_when_negated_no_kids_says_who_lives_there(spec: ModelSpec) -> None:
    assert derived(spec, "It's me, my wife and two kids.")["family_size_mentioned"] is True
    assert derived(spec, "We have no kids.")["family_size_mentioned"] is True
    assert derived(spec, "We like quiet streets.")["family_size_mentioned"] is False
    assert derived(spec, "Hello.", household_size=3)["family_size_mentioned"] is True


def test_a_negation_reaches_only_its_own_clause_and_message(spec: ModelSpec) -> None:
    # "not" ends with its clause: the mortgage is talked about in the next one
    assert derived(spec, "Not sure yet, but we have a mortgage lined up.")["financing_mentioned"] is True
    assert derived(spec, "We are not", "pre-approved for a mortgage.")["financing_mentioned"] is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("We need to move asap.", 1.0),
        ("Our lease ends this month.", 1.0),
        ("Hoping to move in the next few months.", 0.7),
        ("Sometime next year.", 0.35),
        ("Probably next year.", 0.35 * 0.6),  # hedged
        ("Just browsing for now.", 0.05),
        ("No rush at all.", 0.1),  # negated urgent phrase
        ("It's not urgent.", 0.1),
        ("Maybe this month.", 0.6),  # hedged: 1.0 x 0.6
        ("We like gardens.", 0.25),  # nothing said: the default
        ("We need it asap. Actually no rush, next year is fine.", 0.35),  # the last statement wins
    ],
)
def test_timeline_urgency_levels_negation_and_hedges(spec: ModelSpec, text: str, expected: float) -> None:
    assert derived(spec, text)["timeline_urgency"] == pytest.approx(expected)


def test_a_timeline_date_is_measured_from_the_last_message_not_the_clock(spec: ModelSpec) -> None:
    # the thread's last message is on 2026-03-01
    assert derived(spec, "Hi.", timeline="2026-03-20")["timeline_urgency"] == 1.0
    assert derived(spec, "Hi.", timeline="2027-06-01")["timeline_urgency"] == pytest.approx(0.05)
    middle = derived(spec, "Hi.", timeline="2026-09-01")["timeline_urgency"]
    assert 0.05 < middle < 1.0
    # a time at the edge of the calendar is measured too, not an overflow
    edge = {"messages": [{"from": "lead", "at": "0001-01-01T00:00:00+01:00", "text": "hi"}], "timeline": "9999-12-31"}
    assert derive_features(spec, edge)[0]["timeline_urgency"] == pytest.approx(0.05)  # type: ignore[index]
    # the CRM's timeline wins over what the lead said
    assert derived(spec, "No rush.", timeline="within 3 months")["timeline_urgency"] == 0.7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("We love 14 Elm Street.", 1.0),
        ("Something in the Lincoln school district.", 0.7),
        ("Somewhere in the suburbs.", 0.4),
        ("Anywhere really.", 0.1),
        ("I'm not sure which neighborhood.", 0.2),  # negated: no better than naming none
        ("We like gardens.", 0.2),
    ],
)
def test_location_specificity_levels(spec: ModelSpec, text: str, expected: float) -> None:
    assert derived(spec, text)["location_specificity"] == pytest.approx(expected)


def test_location_takes_the_most_precise_place_named(spec: ModelSpec) -> None:
    assert derived(spec, "Anywhere in the suburbs.", "Actually 220 Harbor Road.")["location_specificity"] == 1.0


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    [
        ("I have a permanent position.", {}, 0.85),
        ("I was laid off last month.", {}, 0.2),
        ("It's not a permanent job.", {}, 0.25),  # negated stable phrase
        ("I like my commute.", {}, 0.5),
        ("I was laid off.", {"employment": {"status": "employed"}}, 0.6),  # the CRM wins
        ("Hi.", {"employment": {"status": "employed", "years_in_role": 5}}, 0.9),
        ("Hi.", {"employment": {"status": "unemployed", "years_in_role": 0}}, 0.05),
    ],
)
def test_job_stability(spec: ModelSpec, text: str, fields: dict[str, Any], expected: float) -> None:
    assert derived(spec, text, **fields)["job_stability_score"] == pytest.approx(expected)


def test_structured_fields_decide_price_and_ownership(spec: ModelSpec) -> None:
    assert derived(spec, "Hi.", budget={"max": 400000})["price_range_mentioned"] is True
    assert derived(spec, "We sold our condo.", previous_transactions=0)["previous_real_estate_experience"] is False
    assert derived(spec, "Hi.", previous_transactions=2)["previous_real_estate_experience"] is True


def test_reply_delay_is_the_median_from_an_agent_run_to_the_next_lead_message(spec: ModelSpec) -> None:
    messages = [
        {"from": "agent", "at": "2026-03-01T08:00:00Z", "text": "a"},
        {"from": "agent", "at": "2026-03-01T09:00:00Z", "text": "a nudge"},  # the run counts from its first message
        {"from": "lead", "at": "2026-03-01T12:00:00Z", "text": "b"},  # 4 h
        {"from": "lead", "at": "2026-03-01T13:00:00Z", "text": "c"},  # not a reply: nothing was waiting
        {"from": "agent", "at": "2026-03-02T08:00:00+02:00", "text": "d"},  # 06:00 UTC
        {"from": "lead", "at": "2026-03-02T07:00:00Z", "text": "e"},  # 1 h
        {"from": "agent", "at": "2026-03-03T08:00:00Z", "text": "f"},
        {"from": "lead", "at": "2026-03-03T18:00:00Z", "text": "g?"},  # 10 h
        {"from": "agent", "at": "2026-03-04T08:00:00Z", "text": "h"},  # unanswered at the end: left out
    ]
    features, problems = derive_features(spec, {"messages": messages})
    assert not problems and features is not None
    assert features["response_time_hours"] == 4.0
    assert features["message_length_avg"] == pytest.approx(5 / 4)
    assert features["questions_asked"] == 1


def test_unanswered_and_empty_threads(spec: ModelSpec) -> None:
    unanswered = [{"from": "agent", "at": "2026-03-01T08:00:00Z", "text": "Hi?"}]
    assert derive_features(spec, {"messages": unanswered})[0]["response_time_hours"] == UNANSWERED_HOURS  # type: ignore[index]
    lead_first = [{"from": "lead", "at": "2026-03-01T08:00:00Z", "text": "Is it available??"}]
    features = derive_features(spec, {"messages": lead_first})[0]
    assert features is not None
    assert features["response_time_hours"] == NO_EXCHANGE_HOURS and features["questions_asked"] == 1
    empty = derive_features(spec, {"messages": []})[0]
    assert empty is not None and empty["message_length_avg"] == 0.0 and empty["questions_asked"] == 0


def test_agent_text_is_never_read_as_the_leads(spec: ModelSpec) -> None:
    messages = [{"from": "agent", "at": "2026-03-01T08:00:00Z", "text": "Are you pre-approved? What is your budget? Move asap?"}]
    features = derive_features(spec, {"messages": messages})[0]
    assert features is not None
    assert not features["financing_mentioned"] and not features["price_range_mentioned"] and features["questions_asked"] == 0
    assert features["timeline_urgency"] == 0.25


def test_derivation_is_deterministic_and_within_the_spec(spec: ModelSpec) -> None:
    context = {"messages": thread("Budget $400k, pre-approved, asap, 12 Oak Street, my wife and kids. Parking?")}
    first = derive_features(spec, context)[0]
    assert first == derive_features(spec, context)[0]
    assert first is not None and set(first) == set(spec.feature_names)
    for feature in spec.features:
        value = first[feature.name]
        assert feature.min <= float(value) <= feature.max
