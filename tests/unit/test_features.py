from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ml_core import synthetic
from ml_core.features import encode_frame, encode_leads
from ml_core.spec import parse_spec

from .helpers import valid_lead


def expected_row(spec, lead):
    return np.array([float(lead[name]) for name in spec.columns], dtype=np.float32)


# ---------------------------------------------------------------- encode_leads: valid batches


def test_valid_batch_encodes_in_spec_column_order(spec):
    leads = [
        valid_lead("a"),
        valid_lead("b", questions_asked=7, timeline_urgency=1.0, financing_mentioned=True),
        # key order in the JSON object must not matter
        dict(reversed(list(valid_lead("c", response_time_hours=0.0).items()))),
    ]

    encoded = encode_leads(spec, leads)

    assert encoded.X.shape == (3, len(spec.columns))
    assert encoded.X.dtype == np.float32
    assert encoded.errors == []
    assert encoded.ids == ["a", "b", "c"]
    assert encoded.index.tolist() == [0, 1, 2]
    assert encoded.n_input == 3
    for row, lead in zip(encoded.X, leads):
        np.testing.assert_array_equal(row, expected_row(spec, lead))


def test_empty_batch_encodes_to_an_empty_matrix(spec):
    encoded = encode_leads(spec, [])
    assert encoded.X.shape == (0, len(spec.columns))
    assert encoded.ids == [] and encoded.errors == [] and encoded.n_input == 0


def test_integer_ids_are_accepted_as_strings(spec):
    assert encode_leads(spec, [valid_lead(17), valid_lead(-3)]).ids == ["17", "-3"]


@pytest.mark.parametrize("value", [True, False, 0, 1, 0.0, 1.0, np.bool_(True), np.int64(0)])
def test_booleans_accept_true_false_zero_and_one(spec, value):
    encoded = encode_leads(spec, [valid_lead(price_range_mentioned=value)])
    assert encoded.errors == []
    column = spec.columns.index("price_range_mentioned")
    assert encoded.X[0, column] == float(value)


def test_numpy_scalars_count_as_numbers(spec):
    lead = valid_lead(questions_asked=np.int64(4), timeline_urgency=np.float32(0.5))
    encoded = encode_leads(spec, [lead])
    assert encoded.errors == []
    np.testing.assert_array_equal(encoded.X[0], expected_row(spec, lead))


# ---------------------------------------------------------------- encode_leads: invalid values

BAD_VALUES = [
    pytest.param("timeline_urgency", "0.5", "expected a number, got string", id="string-for-number"),
    pytest.param("response_time_hours", True, "expected a number, got boolean", id="boolean-for-number"),
    pytest.param("questions_asked", False, "expected a number, got boolean", id="boolean-for-integer"),
    pytest.param("message_length_avg", {"v": 1}, "expected a number, got object", id="object-for-number"),
    pytest.param("message_length_avg", [1, 2], "expected a number, got array", id="array-for-number"),
    pytest.param("job_stability_score", math.nan, "is NaN", id="nan"),
    pytest.param("job_stability_score", math.inf, "is infinite", id="+inf"),
    pytest.param("response_time_hours", -math.inf, "is infinite", id="-inf"),
    pytest.param("timeline_urgency", 1.5, "out of range [0, 1]", id="above-max"),
    pytest.param("response_time_hours", -1, "out of range [0, 2160]", id="below-min"),
    pytest.param("questions_asked", 2.5, "expected an integer, got 2.5", id="non-integer"),
    pytest.param("price_range_mentioned", 2, "expected a boolean (true/false or 0/1), got 2", id="boolean-as-2"),
    pytest.param("financing_mentioned", 0.5, "expected a boolean (true/false or 0/1)", id="boolean-as-half"),
    pytest.param("financing_mentioned", "true", "expected a boolean, got string", id="string-for-boolean"),
    pytest.param("financing_mentioned", [True], "expected a boolean, got array", id="array-for-boolean"),
    pytest.param("questions_asked", 10**400, "number too large", id="huge-int"),
    pytest.param("price_range_mentioned", 10**400, "number too large", id="huge-int-boolean"),
    pytest.param("timeline_urgency", None, "missing (required)", id="null"),
]


@pytest.mark.parametrize(("field", "value", "problem"), BAD_VALUES)
def test_invalid_value_names_lead_field_and_problem(spec, field, value, problem):
    # Given a bad lead between two good ones
    leads = [valid_lead("ok-1"), valid_lead("bad", **{field: value}), valid_lead("ok-2", questions_asked=9)]

    encoded = encode_leads(spec, leads)

    # Then only the bad lead is reported, with exactly one problem, on the right field
    assert len(encoded.errors) == 1
    error = encoded.errors[0]
    assert (error.index, error.lead_id) == (1, "bad")
    assert len(error.problems) == 1
    assert error.problems[0][0] == field
    assert problem in error.problems[0][1]
    message = str(error.to_exception())
    assert "'bad'" in message and field in message and problem in message
    # And the good leads are still encoded, at their input positions
    assert encoded.ids == ["ok-1", "ok-2"]
    assert encoded.index.tolist() == [0, 2]
    np.testing.assert_array_equal(encoded.X, np.stack([expected_row(spec, leads[0]), expected_row(spec, leads[2])]))


def test_missing_required_field(spec):
    lead = valid_lead("x")
    del lead["location_specificity"]
    (error,) = encode_leads(spec, [lead]).errors
    assert error.problems == [["location_specificity", "missing (required)"]]


def test_every_problem_of_a_lead_is_reported_in_spec_order(spec):
    lead = valid_lead("x", questions_asked=-1, response_time_hours="soon")
    del lead["job_stability_score"]
    (error,) = encode_leads(spec, [lead]).errors
    assert [field for field, _ in error.problems] == [
        "response_time_hours",
        "questions_asked",
        "job_stability_score",
    ]


def test_string_values_are_never_echoed_in_errors(spec, cat_spec):
    # Errors travel through logs and result backends: lead data must not leak into them.
    secret = "SECRET-PII-555-0100"
    errors = encode_leads(spec, [valid_lead("x", timeline_urgency=secret, financing_mentioned=secret)]).errors
    errors += encode_leads(cat_spec, [{"id": "y", "budget": 1, "channel": secret}]).errors
    errors += encode_leads(spec, [valid_lead("z" * 129)]).errors
    assert len(errors) == 3
    for error in errors:
        assert secret not in str(error.to_json())
        assert "z" * 129 not in str(error.to_json())


def test_error_json_shape(spec):
    (error,) = encode_leads(spec, [valid_lead("bad", timeline_urgency=2)]).errors
    body = error.to_json()
    assert body["lead_id"] == "bad"
    assert body["error"] == "InvalidLeadError"
    assert body["problems"] == [{"field": "timeline_urgency", "problem": error.problems[0][1]}]
    assert body["message"] == str(error.to_exception())


# ---------------------------------------------------------------- encode_leads: unknown fields, ids, non-objects


def test_unknown_field_rejected_by_default(spec):
    (error,) = encode_leads(spec, [valid_lead("x", favourite_colour="blue")]).errors
    assert error.problems == [["favourite_colour", "unknown field"]]


def test_unknown_field_ignored_when_asked(spec):
    lead = valid_lead("x", favourite_colour="blue")
    encoded = encode_leads(spec, [lead], unknown_fields="ignore")
    assert encoded.errors == []
    np.testing.assert_array_equal(encoded.X[0], expected_row(spec, valid_lead("x")))


def test_unknown_field_name_is_cut_in_errors(spec):
    (error,) = encode_leads(spec, [valid_lead("x", **{"k" * 10_000: 1})]).errors
    field, problem = error.problems[0]
    assert problem == "unknown field"
    assert 0 < len(field) <= 64


@pytest.mark.parametrize(
    ("lead_id", "problem"),
    [
        pytest.param(None, "missing (required)", id="null"),
        pytest.param("", "must be 1 to 128 characters", id="empty"),
        pytest.param("x" * 129, "must be 1 to 128 characters", id="too-long"),
        pytest.param(True, "expected a string or integer id, got boolean", id="boolean"),
        pytest.param(1.5, "expected a string or integer id, got number", id="float"),
        pytest.param({"a": 1}, "expected a string or integer id, got object", id="object"),
        pytest.param(["a"], "expected a string or integer id, got array", id="array"),
    ],
)
def test_invalid_id(spec, lead_id, problem):
    encoded = encode_leads(spec, [valid_lead(lead_id), valid_lead("fine")])
    (error,) = encoded.errors
    assert (error.index, error.lead_id, error.problems) == (0, None, [["id", problem]])
    assert encoded.ids == ["fine"]


def test_missing_id(spec):
    lead = valid_lead()
    del lead["id"]
    (error,) = encode_leads(spec, [lead]).errors
    assert error.problems == [["id", "missing (required)"]]


def test_id_of_exactly_128_characters_is_valid(spec):
    assert encode_leads(spec, [valid_lead("x" * 128)]).ids == ["x" * 128]


@pytest.mark.parametrize(
    ("lead", "json_type"),
    [("a string", "string"), (42, "number"), (None, "null"), (["id", "x"], "array"), (True, "boolean")],
)
def test_non_object_lead_reports_exactly_one_problem(spec, lead, json_type):
    encoded = encode_leads(spec, [valid_lead("before"), lead, valid_lead("after")])
    (error,) = encoded.errors
    assert error.index == 1 and error.lead_id is None
    assert error.problems == [["lead", f"expected a JSON object, got {json_type}"]]
    assert encoded.ids == ["before", "after"]
    assert encoded.index.tolist() == [0, 2]


def test_non_object_lead_is_invalid_even_when_every_feature_has_a_default():
    spec = parse_spec(
        "defaults",
        {
            "target": "y",
            "quality_gate": 0.5,
            "bands": {"hot": 60, "warm": 30},
            "fallback": {},
            "features": [{"name": "a", "kind": "numeric", "default": 1.5}],
        },
    )
    encoded = encode_leads(spec, ["not a lead", {"id": "ok"}])
    assert encoded.ids == ["ok"]
    assert [e.index for e in encoded.errors] == [0]


# ---------------------------------------------------------------- categorical spec


def test_categorical_spec_columns(cat_spec):
    assert cat_spec.columns == (
        "budget",
        "channel=ads",
        "channel=referral",
        "channel=walk_in",
        "region=north",
        "region=south",
        "visits",
        "has_agent",
    )


def test_categoricals_are_one_hot(cat_spec):
    lead = {"id": "a", "budget": 100, "channel": "referral", "region": "south", "visits": 3, "has_agent": True}
    encoded = encode_leads(cat_spec, [lead])
    assert encoded.errors == []
    np.testing.assert_array_equal(encoded.X[0], [100, 0, 1, 0, 0, 1, 3, 1])


@pytest.mark.parametrize("absent", ["missing", "null"])
def test_defaults_fill_missing_values(cat_spec, absent):
    lead = {"id": "a", "budget": 5, "channel": "ads"}
    if absent == "null":
        lead.update(region=None, visits=None, has_agent=None)
    encoded = encode_leads(cat_spec, [lead])
    assert encoded.errors == []
    # region -> "north", visits -> 1, has_agent -> False, as the spec says
    np.testing.assert_array_equal(encoded.X[0], [5, 1, 0, 0, 1, 0, 1, 0])


@pytest.mark.parametrize(
    ("channel", "problem"),
    [
        ("tv", "unknown category; expected one of ['ads', 'referral', 'walk_in']"),
        ("Ads", "unknown category; expected one of ['ads', 'referral', 'walk_in']"),
        (3, "expected a string category, got number"),
        (True, "expected a string category, got boolean"),
        (["ads"], "expected a string category, got array"),
        (None, "missing (required)"),
    ],
)
def test_bad_category(cat_spec, channel, problem):
    leads = [{"id": "bad", "budget": 1, "channel": channel}, {"id": "good", "budget": 2, "channel": "walk_in"}]
    encoded = encode_leads(cat_spec, leads)
    (error,) = encoded.errors
    assert (error.lead_id, error.problems) == ("bad", [["channel", problem]])
    np.testing.assert_array_equal(encoded.X, [[2, 0, 0, 1, 1, 0, 1, 0]])


def test_categorical_default_is_still_validated_when_given(cat_spec):
    (error,) = encode_leads(cat_spec, [{"id": "a", "budget": 1, "channel": "ads", "region": "east"}]).errors
    assert error.problems[0][0] == "region"


# ---------------------------------------------------------------- encode_frame


def test_frame_with_numeric_dtypes_encodes_like_the_table(spec):
    frame = synthetic.generate("lead_scorer", 200, seed=3)
    encoded = encode_frame(spec, frame)
    assert encoded.errors == []
    assert encoded.ids == [str(i) for i in range(200)]
    np.testing.assert_array_equal(encoded.X, frame[list(spec.columns)].to_numpy(dtype=np.float32))


def test_frame_numeric_fast_path_agrees_with_the_object_path(spec):
    frame = synthetic.generate("lead_scorer", 50, seed=4)
    frame.loc[3, "timeline_urgency"] = 4.0
    frame.loc[7, "questions_asked"] = -2
    frame["price_range_mentioned"] = frame["price_range_mentioned"].astype(bool)
    fast = encode_frame(spec, frame)
    slow = encode_frame(spec, frame.astype(object))
    assert frame[list(spec.feature_names)].dtypes.map(lambda d: d.kind in "biuf").all()
    np.testing.assert_array_equal(fast.X, slow.X)
    assert fast.errors == slow.errors
    assert [e.index for e in fast.errors] == [3, 7]


def test_frame_uses_given_ids(spec):
    frame = synthetic.generate("lead_scorer", 3, seed=1)
    frame.loc[1, "job_stability_score"] = math.inf
    encoded = encode_frame(spec, frame, ids=["a", "b", "c"])
    assert encoded.ids == ["a", "c"]
    (error,) = encoded.errors
    assert error.lead_id == "b" and error.problems == [["job_stability_score", "is infinite"]]


def test_frame_nan_cell_is_missing_for_a_required_feature(spec):
    frame = synthetic.generate("lead_scorer", 4, seed=2)
    frame.loc[2, "response_time_hours"] = np.nan
    encoded = encode_frame(spec, frame)
    (error,) = encoded.errors
    assert (error.index, error.problems) == (2, [["response_time_hours", "missing (required)"]])
    assert encoded.index.tolist() == [0, 1, 3]


def test_frame_nan_cells_take_defaults(cat_spec):
    frame = pd.DataFrame(
        {
            "budget": [10.0, 20.0, 30.0],
            "channel": ["ads", "referral", "walk_in"],
            "region": ["south", np.nan, None],
            "visits": [2.0, np.nan, 4.0],
            "has_agent": [np.nan, 1.0, 0.0],
        }
    )
    encoded = encode_frame(cat_spec, frame)
    assert encoded.errors == []
    np.testing.assert_array_equal(
        encoded.X,
        [
            [10, 1, 0, 0, 0, 1, 2, 0],
            [20, 0, 1, 0, 1, 0, 1, 1],
            [30, 0, 0, 1, 1, 0, 4, 0],
        ],
    )


def test_frame_missing_columns(cat_spec):
    frame = pd.DataFrame({"channel": ["ads", "walk_in"]})
    encoded = encode_frame(cat_spec, frame)
    # budget is required: every row fails; the defaulted columns are not mentioned
    assert [e.problems for e in encoded.errors] == [[["budget", "missing (required)"]]] * 2


def test_frame_nan_in_required_categorical_is_missing(cat_spec):
    frame = pd.DataFrame({"budget": [1.0, 2.0], "channel": [np.nan, "ads"]})
    (error,) = encode_frame(cat_spec, frame).errors
    assert (error.index, error.problems) == (0, [["channel", "missing (required)"]])


def test_frame_pd_na_cells_count_as_missing(cat_spec):
    frame = pd.DataFrame(
        {
            "budget": [10.0, 20.0],
            "channel": pd.array(["ads", "walk_in"], dtype="string"),
            "region": pd.array(["south", None], dtype="string"),
            "has_agent": pd.array([True, None], dtype="boolean"),
        }
    )
    encoded = encode_frame(cat_spec, frame)
    assert encoded.errors == []
    np.testing.assert_array_equal(encoded.X[1], [20, 0, 0, 1, 1, 0, 1, 0])
