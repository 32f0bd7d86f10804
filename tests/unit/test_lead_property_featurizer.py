"""Pair features derived from preferences and listings: values, broadcasting, tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_core.errors import DatasetError
from ml_core.features import encode_leads, fields
from ml_core.featurizers import featurize_table, load_featurizer
from ml_core.spec import load_spec
from ml_core.synthetic import generate
from tests.unit.pairs import PAIR_MODELS, REPO_MODELS, listing, preferences

FEATURIZER = load_featurizer("lead_property")


def derive(prefs: dict, listings: list[dict]) -> dict[str, np.ndarray]:
    p_schema, l_schema = FEATURIZER.inputs["preferences"], FEATURIZER.inputs["property"]
    p = encode_leads(p_schema, [{**prefs, "id": "lead"}])
    ls = encode_leads(l_schema, listings, entity="property")
    assert not p.errors and not ls.errors
    return FEATURIZER.derive({"preferences": fields(p_schema, p.X), "property": fields(l_schema, ls.X)})


def test_pair_features_have_the_documented_values() -> None:
    prefs = preferences(must_haves=["parking", "garden"])
    listings = [
        listing("fits"),
        listing("dear-small-far", price=600_000, bedrooms=1, latitude=40.4168 + 0.2, property_type="house", amenities=["garden", "pool", "storage"]),
    ]
    d = derive(prefs, listings)
    assert d["price_to_budget"] == pytest.approx([0.9, 1.2])
    assert d["over_budget"] == pytest.approx([0.0, 0.2])
    assert d["within_budget"].tolist() == [1.0, 0.0]
    assert d["bedroom_shortfall"].tolist() == [0, 1] and d["bedroom_surplus"].tolist() == [0, 0]
    # 0.01 and 0.2 degrees of latitude are 1.11 km and 22.2 km on the sphere
    assert d["distance_km"] == pytest.approx([1.112, 22.24], rel=1e-3)
    assert d["distance_to_radius"] == pytest.approx([0.1112, 2.224], rel=1e-3)
    assert d["type_match"].tolist() == [1.0, 0.0]
    assert d["must_have_coverage"].tolist() == [0.5, 0.5]
    assert d["missing_must_haves"].tolist() == [1, 1]
    assert d["extra_amenities"].tolist() == [1, 2]
    assert d["area_per_bedroom"] == pytest.approx([42.5, 85.0])


def test_any_type_and_no_must_haves_always_match() -> None:
    d = derive(preferences(property_type="any", must_haves=[]), [listing("a", property_type="studio", amenities=[])])
    assert d["type_match"].tolist() == [1.0]
    assert d["must_have_coverage"].tolist() == [1.0]


def test_derived_features_stay_in_every_spec_range_on_extreme_inputs() -> None:
    extreme = listing("x", price=1e9, bedrooms=0, latitude=-89.0, longitude=179.0, area_sqm=100000, days_on_market=3650, photo_count=500)
    d = derive(preferences(budget_min=0, budget_max=1, bedrooms_min=20, max_distance_km=0.1), [extreme])
    for name in PAIR_MODELS:
        for feature in load_spec(REPO_MODELS, name).features:
            assert feature.min <= float(d[feature.name][0]) <= feature.max, feature.name


def test_a_raw_table_is_derived_exactly_like_serving() -> None:
    spec = load_spec(REPO_MODELS, "property_matcher")
    raw = generate("property_matcher", 50, seed=5)
    table = featurize_table(spec, raw)
    assert list(table.columns) == [*spec.feature_names, spec.target]
    row = raw.iloc[7]
    prefs = {k.split(".", 1)[1]: v for k, v in row.items() if k.startswith("preferences.")}
    prop = {k.split(".", 1)[1]: v for k, v in row.items() if k.startswith("property.")}
    served = derive(prefs, [{**prop, "id": "p"}])
    for name in spec.feature_names:
        assert table[name].iloc[7] == pytest.approx(float(served[name][0]), rel=1e-6), name


def test_a_table_that_already_holds_the_features_is_used_as_it_is() -> None:
    spec = load_spec(REPO_MODELS, "property_matcher")
    table = featurize_table(spec, generate("property_matcher", 20, seed=1))
    assert featurize_table(spec, table) is table


def test_an_invalid_raw_row_stops_training_with_its_row_and_field() -> None:
    spec = load_spec(REPO_MODELS, "viewing_probability_predictor")
    raw = generate("viewing_probability_predictor", 30, seed=2)
    raw["property.bedrooms"] = raw["property.bedrooms"].astype(float)
    raw.loc[12, "property.bedrooms"] = 2.5
    with pytest.raises(DatasetError, match=r"1 invalid rows, first is row 12: property.bedrooms: expected an integer"):
        featurize_table(spec, raw)
    raw = generate("viewing_probability_predictor", 30, seed=2)
    raw.loc[4, "preferences.budget_min"] = raw.loc[4, "preferences.budget_max"] + 1
    with pytest.raises(DatasetError, match=r"row 4: preferences.budget_min: greater than budget_max"):
        featurize_table(spec, raw)


def test_tags_in_a_csv_table_are_pipe_separated() -> None:
    spec = load_spec(REPO_MODELS, "property_matcher")
    raw = generate("property_matcher", 10, seed=3)
    as_csv = raw.assign(
        **{c: raw[c].map("|".join) for c in ("preferences.must_haves", "property.amenities")}
    )
    pd.testing.assert_frame_equal(featurize_table(spec, as_csv), featurize_table(spec, raw))
