from __future__ import annotations

import copy
import hashlib
import math
import tomllib

import pytest

from ml_core.errors import ModelNotFoundError, SpecError
from ml_core.spec import Bands, EscalationRule, Feature, available_models, load_spec, parse_spec

from .helpers import MODEL, SPEC_FILE, categorical_spec_data, copy_spec


def test_lead_scorer_spec_matches_its_file(spec):
    raw = tomllib.loads(SPEC_FILE.read_text())
    assert spec.name == MODEL
    assert spec.target == raw["target"] == "converted"
    assert len(spec.features) == 10
    assert spec.feature_names == tuple(f["name"] for f in raw["features"])
    assert [f.kind for f in spec.features] == [f["kind"] for f in raw["features"]]
    # no categoricals: one matrix column per feature
    assert spec.columns == spec.feature_names
    assert spec.bands == Bands(hot=float(raw["bands"]["hot"]), warm=float(raw["bands"]["warm"]), hot_share=0.1, warm_share=0.3)
    assert 0 <= spec.bands.warm <= spec.bands.hot <= 100 and spec.bands.by_share
    assert spec.fallback.intercept == raw["fallback"]["intercept"]
    assert spec.fallback.weights == raw["fallback"]["weights"]
    assert set(spec.fallback.weights) == set(spec.feature_names)
    assert spec.quality_gate == raw["quality_gate"]
    assert spec.confidence_threshold is None
    assert spec.escalation == EscalationRule("budget", raw["escalation_budget"]) == EscalationRule("budget", 0.25)
    assert spec.metric == "roc_auc"
    assert spec.sha256 == hashlib.sha256(SPEC_FILE.read_bytes()).hexdigest()


def test_boolean_features_are_bounded_to_zero_and_one(spec):
    booleans = [f for f in spec.features if f.kind == "boolean"]
    assert booleans
    assert all((f.min, f.max) == (0.0, 1.0) for f in booleans)


def test_all_lead_scorer_features_are_required(spec):
    assert all(f.required for f in spec.features)


def test_feature_required_and_columns():
    assert Feature("a", "numeric").required
    assert not Feature("a", "numeric", default=0).required
    assert not Feature("a", "boolean", default=False).required
    assert Feature("a", "integer").columns == ("a",)
    assert Feature("c", "categorical", categories=("x", "y")).columns == ("c=x", "c=y")


def test_available_models_and_unknown_model(tmp_path):
    copy_spec(tmp_path)
    (tmp_path / "not_a_model").mkdir()
    assert available_models(tmp_path) == [MODEL]
    with pytest.raises(ModelNotFoundError) as info:
        load_spec(tmp_path, "nope")
    assert info.value.model == "nope"


def test_invalid_toml_is_a_spec_error(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "spec.toml").write_text("target = \n")
    with pytest.raises(SpecError, match="not valid TOML") as info:
        load_spec(tmp_path, "broken")
    assert info.value.model == "broken"


# ---------------------------------------------------------------- parse_spec errors


def minimal():
    return copy.deepcopy(categorical_spec_data())


def test_minimal_spec_parses():
    spec = parse_spec("m", minimal())
    assert spec.fallback.weights["channel"] == {"referral": 1.5, "ads": -0.5}
    assert spec.confidence_threshold is None
    assert spec.escalation == EscalationRule("budget", 0.25)  # no rule stated: the default budget
    assert not spec.bands.by_share
    assert spec.metric == "roc_auc"


def test_fallback_is_optional():
    data = minimal()
    del data["fallback"]
    assert parse_spec("m", data).fallback is None  # rules then come from the champion's card


@pytest.mark.parametrize("key", ["features", "target", "bands", "quality_gate"])
def test_missing_top_level_key(key):
    data = minimal()
    del data[key]
    with pytest.raises(SpecError, match=f"missing key '{key}'") as info:
        parse_spec("m", data)
    assert info.value.model == "m"


@pytest.mark.parametrize("key", ["hot", "warm"])
def test_missing_band(key):
    data = minimal()
    del data["bands"][key]
    with pytest.raises(SpecError, match=f"missing key '{key}'"):
        parse_spec("m", data)


def test_duplicate_features():
    data = minimal()
    data["features"].append(dict(data["features"][0]))
    with pytest.raises(SpecError, match="feature names repeat"):
        parse_spec("m", data)


@pytest.mark.parametrize(
    ("hot", "warm"),
    [(30, 60), (101, 30), (60, -1), (-5, -10)],
)
def test_bad_bands(hot, warm):
    data = minimal()
    data["bands"] = {"hot": hot, "warm": warm}
    with pytest.raises(SpecError, match="bands need 0 <= warm <= hot <= 100"):
        parse_spec("m", data)


@pytest.mark.parametrize(("hot", "warm"), [(50, 50), (100, 0), (0, 0)])
def test_edge_bands_are_allowed(hot, warm):
    data = minimal()
    data["bands"] = {"hot": hot, "warm": warm}
    assert parse_spec("m", data).bands == Bands(hot=hot, warm=warm)


def test_fallback_weight_for_unknown_feature():
    data = minimal()
    data["fallback"]["weights"]["shoe_size"] = 1.0
    with pytest.raises(SpecError, match=r"fallback weights name unknown features \['shoe_size'\]"):
        parse_spec("m", data)


def test_categorical_without_categories():
    data = minimal()
    data["features"][1]["categories"] = []
    with pytest.raises(SpecError, match="categorical feature 'channel' lists no categories"):
        parse_spec("m", data)


def test_categorical_default_outside_its_categories():
    data = minimal()
    data["features"][2]["default"] = "east"
    with pytest.raises(SpecError, match="default 'east' of feature 'region'"):
        parse_spec("m", data)


@pytest.mark.parametrize(
    "feature",
    [{"kind": "numeric"}, {"name": "x"}, {"name": "x", "kind": "text"}, {"name": 3, "kind": "numeric"}],
)
def test_feature_needs_a_name_and_a_known_kind(feature):
    data = minimal()
    data["features"].append(feature)
    with pytest.raises(SpecError, match="needs a name and a kind"):
        parse_spec("m", data)


def test_min_above_max():
    data = minimal()
    data["features"][0].update(min=10, max=1)
    with pytest.raises(SpecError, match="'budget' has min > max"):
        parse_spec("m", data)


@pytest.mark.parametrize("name", ["won", "id"])
def test_target_and_id_cannot_be_features(name):
    data = minimal()
    data["features"].append({"name": name, "kind": "numeric"})
    with pytest.raises(SpecError, match="cannot also be features"):
        parse_spec("m", data)


def test_unbounded_numeric_feature():
    data = minimal()
    data["features"].append({"name": "free", "kind": "numeric"})
    free = parse_spec("m", data).features[-1]
    assert (free.min, free.max) == (-math.inf, math.inf)


@pytest.mark.parametrize(
    "feature",
    [
        pytest.param({"name": "x", "kind": "numeric", "default": "abc"}, id="string-default"),
        pytest.param({"name": "x", "kind": "boolean", "default": 5}, id="boolean-default-5"),
        pytest.param({"name": "x", "kind": "numeric", "min": 0, "max": 1, "default": 7}, id="default-out-of-range"),
    ],
)
def test_bad_default_is_a_spec_error(feature):
    data = minimal()
    data["features"].append(feature)
    with pytest.raises(SpecError):
        parse_spec("m", data)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"quality_gate": "high"}, id="quality-gate-string"),
        pytest.param({"bands": {"hot": "high", "warm": 30}}, id="band-string"),
        pytest.param({"bands": 60}, id="bands-not-a-table"),
        pytest.param({"features": ["budget"]}, id="feature-not-a-table"),
        pytest.param({"features": [{"name": "x", "kind": "numeric", "min": "0"}]}, id="min-string"),
    ],
)
def test_wrongly_typed_values_are_spec_errors(change):
    data = minimal()
    data.update(change)
    data["fallback"] = {}
    with pytest.raises(SpecError):
        parse_spec("m", data)


# ---------------------------------------------------------------- bands


@pytest.mark.parametrize(
    ("score", "label"),
    [(100, "hot"), (60, "hot"), (59.99, "warm"), (30, "warm"), (29.99, "cold"), (0, "cold")],
)
def test_bands_label(score, label):
    assert Bands(hot=60, warm=30).label(score) == label


def test_equal_bands_have_no_warm_label():
    bands = Bands(hot=50, warm=50)
    assert [bands.label(s) for s in (49.99, 50, 51)] == ["cold", "hot", "hot"]


# ---------------------------------------------------------------- escalation rule and bands by share


@pytest.mark.parametrize(
    ("given", "rule"),
    [
        ({"escalation_budget": 0.2}, EscalationRule("budget", 0.2)),
        ({"escalation_alpha": 0.1}, EscalationRule("alpha", 0.1)),
        ({"confidence_threshold": 0.85}, EscalationRule("threshold", 0.85)),
    ],
)
def test_one_escalation_rule(given, rule):
    data = minimal() | given
    assert parse_spec("m", data).escalation == rule


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({"escalation_budget": 0.2, "escalation_alpha": 0.1}, "set one escalation rule"),
        ({"escalation_budget": 0.2, "confidence_threshold": 0.9}, "set one escalation rule"),
        ({"escalation_budget": 1.0}, r"escalation_budget must lie in \(0, 1\)"),
        ({"escalation_alpha": 0}, r"escalation_alpha must lie in \(0, 1\)"),
        ({"escalation_alpha": "low"}, "escalation_alpha must be a number"),
        ({"confidence_threshold": 0.3}, r"confidence_threshold must lie in \[0.5, 1\]"),
    ],
)
def test_bad_escalation_rules(given, problem):
    with pytest.raises(SpecError, match=problem):
        parse_spec("m", minimal() | given)


def test_bands_by_share_alone_read_the_shares_on_a_uniform_scale_for_the_rules():
    data = minimal()
    data["bands"] = {"hot_share": 0.1, "warm_share": 0.3}
    bands = parse_spec("m", data).bands
    assert bands.by_share and (bands.hot_share, bands.warm_share) == (0.1, 0.3)
    assert (bands.hot, bands.warm) == pytest.approx((90.0, 60.0))


@pytest.mark.parametrize(
    ("bands", "problem"),
    [
        ({"hot_share": 0.1}, "need both 'hot_share' and 'warm_share'"),
        ({"hot_share": 0.7, "warm_share": 0.3}, "hot_share \\+ warm_share < 1"),
        ({"hot_share": 0, "warm_share": 0.3}, "0 < hot_share"),
        ({}, "bands need hot_share and warm_share"),
    ],
)
def test_bad_share_bands(bands, problem):
    data = minimal()
    data["bands"] = bands
    with pytest.raises(SpecError, match=problem):
        parse_spec("m", data)
