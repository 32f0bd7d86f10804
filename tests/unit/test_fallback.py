from __future__ import annotations

import math

import numpy as np
import pytest

from ml_core.fallback import RuleScorer
from ml_core.features import encode_leads

from .helpers import valid_lead


def test_probability_is_the_sigmoid_of_the_weighted_sum(spec):
    lead = valid_lead("x", response_time_hours=12.0, questions_asked=5, timeline_urgency=0.75)
    logit = spec.fallback.intercept + sum(
        spec.fallback.weights.get(name, 0.0) * float(lead[name]) for name in spec.feature_names
    )

    (p,) = RuleScorer(spec, "test").predict_proba(encode_leads(spec, [lead]).X)

    assert p == pytest.approx(1 / (1 + math.exp(-logit)), rel=1e-9)


def test_monotone_in_a_positively_weighted_feature(spec):
    name = max(spec.fallback.weights, key=spec.fallback.weights.get)
    assert spec.fallback.weights[name] > 0
    feature = next(f for f in spec.features if f.name == name)
    values = np.linspace(feature.min, min(feature.max, feature.min + 10), 11)
    X = encode_leads(spec, [valid_lead(str(i), **{name: float(v)}) for i, v in enumerate(values)]).X

    p = RuleScorer(spec, "test").predict_proba(X)

    assert np.all(np.diff(p) > 0)


def test_monotone_decreasing_in_a_negatively_weighted_feature(spec):
    name = min(spec.fallback.weights, key=spec.fallback.weights.get)
    assert spec.fallback.weights[name] < 0
    X = encode_leads(spec, [valid_lead(str(v), **{name: float(v)}) for v in range(0, 100, 10)]).X
    assert np.all(np.diff(RuleScorer(spec, "test").predict_proba(X)) < 0)


def test_categorical_weights_are_a_table_by_category(cat_spec):
    leads = [
        {"id": c, "budget": 100, "channel": c, "region": "south", "visits": 2}
        for c in ("ads", "referral", "walk_in")
    ]
    p = RuleScorer(cat_spec, "test").predict_proba(encode_leads(cat_spec, leads).X)
    base = cat_spec.fallback.intercept + 0.01 * 100  # region, visits and has_agent weigh nothing
    table = cat_spec.fallback.weights["channel"]
    expected = [1 / (1 + math.exp(-(base + table.get(c, 0.0)))) for c in ("ads", "referral", "walk_in")]
    np.testing.assert_allclose(p, expected, rtol=1e-9)


def test_identity_and_reason(spec):
    scorer = RuleScorer(spec, "no champion")
    assert (scorer.name, scorer.version, scorer.served_by, scorer.reason) == (spec.name, "rules", "fallback", "no champion")
