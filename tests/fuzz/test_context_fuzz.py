"""Property: any JSON as a context (or as its parts) gives the derived features or problems naming
parts of the context, never an exception, and no problem repeats what a message said."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ml_core.context import derive_features, encode_with_context
from ml_core.spec import load_spec
from tests.fuzz.strategies import json_values
from tests.unit.helpers import MODEL, REPO_MODELS

SPEC = load_spec(REPO_MODELS, MODEL)
MARK = "Wq9-secret"  # in every text a message carries: no problem may echo it

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
times = st.one_of(st.datetimes().map(lambda t: t.isoformat()), st.datetimes(timezones=offsets).map(lambda t: t.isoformat()), st.text(max_size=30), json_values)
messages = st.fixed_dictionaries(
    {"from": st.one_of(st.sampled_from(["lead", "agent"]), json_values), "at": times, "text": st.text(max_size=200).map(lambda t: MARK + t)},
    optional={"extra": json_values},
)
contexts = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"messages": st.one_of(st.lists(st.one_of(messages, json_values), max_size=12), json_values)},
        optional={
            "timeline": st.one_of(st.dates().map(lambda d: d.isoformat()), json_values),
            **{k: json_values for k in ("budget", "employment", "previous_transactions", "household_size")},
        },
    ),
)


@settings(max_examples=400, deadline=None)
@given(contexts)
def test_any_context_gives_features_or_named_problems(context: Any) -> None:
    features, problems = derive_features(SPEC, context)
    assert (features is None) == bool(problems)
    for part, problem in problems:
        assert part.startswith("context") and problem and MARK not in part + problem
    if features is not None:
        encoded, _ = encode_with_context(SPEC, [{"id": "f-1", "context": context}])
        assert not encoded.errors and encoded.X.shape == (1, len(SPEC.columns))
