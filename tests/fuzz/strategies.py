"""Hypothesis strategies for malformed leads: anything JSON can carry, and then some."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from ml_core.spec import ModelSpec

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
    st.integers(min_value=10_000, max_value=100_000).map(lambda n: "x" * n),  # huge strings
)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)


def deeply_nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"x": [value]}
    return value


def valid_leads(spec: ModelSpec) -> st.SearchStrategy[dict[str, Any]]:
    fields = {}
    for f in spec.features:
        if f.kind == "boolean":
            fields[f.name] = st.booleans()
        elif f.kind == "integer":
            fields[f.name] = st.integers(min_value=int(f.min), max_value=int(min(f.max, 10**6)))
        elif f.kind == "categorical":
            fields[f.name] = st.sampled_from(f.categories)
        else:
            fields[f.name] = st.floats(min_value=f.min, max_value=f.max, allow_nan=False)
    return st.fixed_dictionaries({"id": st.uuids().map(str), **fields})


def malformed_leads(spec: ModelSpec) -> st.SearchStrategy[Any]:
    """A valid lead with one thing broken, or something that is not a lead at all."""
    names = list(spec.feature_names)

    @st.composite
    def broken(draw: st.DrawFn) -> Any:
        lead = dict(draw(valid_leads(spec)))
        how = draw(st.sampled_from(["wrong_value", "missing", "extra", "bad_id", "nested", "not_object"]))
        field = draw(st.sampled_from(names))
        if how == "wrong_value":
            boolean = spec.features[names.index(field)].kind == "boolean"

            def wrong(v: Any) -> bool:
                if isinstance(v, bool):
                    return not boolean  # true/false is a valid boolean, never a valid number
                return not isinstance(v, (int, float)) or v != v or abs(v) > 1e6

            lead[field] = draw(json_values.filter(wrong))
        elif how == "missing":
            del lead[field]
        elif how == "extra":
            lead[draw(st.text(min_size=1, max_size=30).filter(lambda k: k not in names and k != "id"))] = draw(json_values)
        elif how == "bad_id":
            lead["id"] = draw(st.one_of(st.none(), st.booleans(), st.just(""), st.text(min_size=129, max_size=300), st.lists(st.integers(), max_size=2)))
        elif how == "nested":
            lead[field] = deeply_nested(draw(st.integers(min_value=1, max_value=10)))  # deeper ones: refused unread
        else:
            return draw(json_values.filter(lambda v: not isinstance(v, dict)))
        return lead

    return broken()
