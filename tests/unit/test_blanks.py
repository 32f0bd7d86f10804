"""Blanks from the spec to the served score: validation, training, ONNX parity, rules,
explanations and unseen categories (issue #18), without services."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from ml_core import booleans, candidates, onnx_model
from ml_core.dataset import TrainingSet, training_set
from ml_core.errors import InvalidLeadError, SpecError
from ml_core.explain import ModelExplainer
from ml_core.fallback import RuleScorer
from ml_core.features import encode_frame, encode_leads
from ml_core.imputation import ImputeWithIndicator, blanked
from ml_core.lead_files import read_lead_file
from ml_core.scoring import score_batch, score_one
from ml_core.spec import ModelSpec, load_spec, parse_spec
from tests.blank_tables import BLANK_MODEL, BLANK_SPEC_TOML, blank_lead, blank_table

FAMILIES = ["logistic_regression", "gradient_boosting", "mlp"]


@pytest.fixture(scope="module")
def bspec(tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    root = tmp_path_factory.mktemp("blank_models")
    (root / BLANK_MODEL).mkdir()
    (root / BLANK_MODEL / "spec.toml").write_text(BLANK_SPEC_TOML)
    return load_spec(root, BLANK_MODEL)


@pytest.fixture(scope="module")
def bset(bspec: ModelSpec) -> TrainingSet:
    return training_set(bspec, blank_table(), "blank_table")


@pytest.fixture(scope="module")
def bfamilies(bset: TrainingSet) -> dict[str, object]:
    with threadpool_limits(limits=1):
        plan = candidates.plan(bset.X, bset.y, builds=1, time_budget=5.0, seed=3)
        return {name: candidates.build(name, bset.X, bset.y, plan) for name in FAMILIES}


def spec_with(**feature: object) -> ModelSpec:
    return parse_spec("m", {"target": "y", "quality_gate": 0.5, "bands": {"hot": 60, "warm": 30},
                            "features": [{"name": "x", "kind": "numeric", **feature}]})


def test_the_spec_says_what_may_be_missing_and_refuses_contradictions() -> None:
    assert spec_with(missing="allowed").features[0].may_be_missing
    assert spec_with().features[0].required and spec_with(default=1.0).features[0].required is False
    with pytest.raises(SpecError, match="has a default and missing = 'allowed'"):
        spec_with(missing="allowed", default=1.0)
    with pytest.raises(SpecError, match="missing of feature 'x' must be"):
        spec_with(missing="sometimes")
    with pytest.raises(SpecError, match="'other' for a categorical"):
        spec_with(unseen="other")


def test_allowed_blanks_encode_as_nan_in_every_column_and_required_ones_stay_errors(bspec: ModelSpec) -> None:
    encoded = encode_leads(bspec, [blank_lead("a"), blank_lead("b", income=None, channel=None), {"id": "c", "income": 5.0}])
    assert encoded.ids == ["a", "b"]
    assert np.isnan(encoded.X[:, :-1]).all() and (encoded.X[:, -1] == 40).all()
    (error,) = encoded.errors
    assert error.problems == [["age", "missing (required)"]]
    with pytest.raises(InvalidLeadError, match="age: missing \\(required\\)") as info:
        score_one(bspec, RuleScorer(bspec, "test"), {"id": "c", "income": 5.0})
    assert info.value.fields == ["age"]


def test_a_table_reads_empty_cells_as_blanks_and_a_blank_in_a_required_column_as_an_error(bspec: ModelSpec) -> None:
    frame = blank_table(rows=50)
    encoded = encode_frame(bspec, frame)
    assert not encoded.errors
    income = encoded.X[:, bspec.columns.index("income")]
    np.testing.assert_array_equal(np.isnan(income), frame["income"].isna().to_numpy())
    channel = encoded.X[:, [bspec.columns.index(c) for c in bspec.features[3].columns]]
    assert (np.isnan(channel).all(axis=1) == frame["channel"].isna().to_numpy()).all()
    frame.loc[7, "age"] = np.nan
    assert [e.index for e in encode_frame(bspec, frame).errors] == [7]


def test_an_empty_cell_in_a_lead_file_is_a_blank_the_spec_allows(bspec: ModelSpec, tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("id,income,visits,mortgage,channel,age\na,,,,,30\nb,52000,2,yes,ads,41\nc,1,1,no,ads,\n")
    (chunk,) = read_lead_file(path, bspec, 10)
    assert chunk.leads[0] == {"id": "a", "age": 30}
    results = score_batch(bspec, RuleScorer(bspec, "test"), chunk.leads)
    assert "score" in results[0] and "score" in results[1]
    assert results[2]["error"] == "InvalidLeadError" and results[2]["problems"] == [{"field": "age", "problem": "missing (required)"}]


@pytest.mark.parametrize("spelling", sorted(booleans.TRUE | booleans.FALSE | {"YES", " No "}))
def test_training_and_lead_files_read_the_same_boolean_spellings(bspec: ModelSpec, tmp_path: Path, spelling: str) -> None:
    path = tmp_path / "one.csv"
    pd.DataFrame({"id": ["a"], "mortgage": [spelling], "age": [30]}).to_csv(path, index=False)
    (chunk,) = read_lead_file(path, bspec, 10)
    from_file = encode_leads(bspec, chunk.leads).X
    from_table = encode_frame(bspec, pd.read_csv(path, dtype={"mortgage": str})).X
    expected = 1.0 if spelling.strip().lower() in booleans.TRUE else 0.0
    assert from_file[0, 2] == from_table[0, 2] == expected


def test_a_table_spelling_booleans_as_words_trains_and_other_words_are_refused(bspec: ModelSpec) -> None:
    frame = blank_table(rows=60)
    assert set(frame["mortgage"].dropna()) == {"yes", "no"}
    assert len(training_set(bspec, frame, "t").y) == 60
    frame.loc[3, "mortgage"] = "perhaps"
    errors = encode_frame(bspec, frame).errors
    assert [(e.index, e.problems) for e in errors] == [(3, [["mortgage", "expected a boolean, got string"]])]


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_and_scikit_learn_agree_on_rows_with_blanks(bspec: ModelSpec, bset: TrainingSet, bfamilies: dict[str, object], family: str) -> None:
    model = bfamilies[family]
    rows = np.vstack([bset.X[:300], blanked(bspec, bset.X[:300], seed=1)])
    assert np.isnan(rows).any(axis=1).mean() > 0.5
    diff = onnx_model.parity(onnx_model.export(model, bset.X.shape[1]), model, rows)
    assert diff < 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_learns_what_a_blank_means(bspec: ModelSpec, bfamilies: dict[str, object], family: str) -> None:
    # the table's label drops by 1.5 log-odds where income is blank: a model that read a blank
    # as the median income would score both leads alike
    leads = [blank_lead("blank", visits=3, mortgage=True, channel="ads"), blank_lead("median", income=55_000.0, visits=3, mortgage=True, channel="ads")]
    X = encode_leads(bspec, leads).X.astype(np.float64)
    p_blank, p_median = bfamilies[family].predict_proba(X)[:, 1]  # type: ignore[attr-defined]
    assert p_blank < p_median - 0.05


def test_imputer_fills_medians_and_flags_blanks_and_folds_shares_back() -> None:
    X = np.array([[1.0, 10.0], [np.nan, 20.0], [3.0, 30.0]])
    imputer = ImputeWithIndicator().fit(X)
    np.testing.assert_array_equal(imputer.transform(np.array([[np.nan, np.nan]])), [[2.0, 20.0, 1.0]])
    assert imputer.indicator_columns_.tolist() == [0]  # column 1 had no blank: imputed, not flagged
    np.testing.assert_array_equal(imputer.fold(np.array([[1.0, 2.0, 3.0]])), [[4.0, 2.0]])


@pytest.mark.parametrize("family", FAMILIES)
def test_an_explanation_names_a_blank_feature_as_missing_and_stays_exact(bspec: ModelSpec, bfamilies: dict[str, object], family: str) -> None:
    row = encode_leads(bspec, [blank_lead("x", visits=2, mortgage=False, channel="referral")]).X.astype(np.float64)
    (explanation,) = ModelExplainer(bspec, "v1", bfamilies[family]).explain(row)
    p = explanation.probability
    assert explanation.output == pytest.approx(np.log(p / (1 - p)), abs=1e-6)
    top = {t["feature"]: t for t in explanation.to_json(bspec, row[0], top_k=5)["top"]}
    assert top["income"]["missing"] is True and top["income"]["value"] is None
    assert "missing" not in top["channel"] and top["channel"]["value"] == "referral"
    if family == "logistic_regression":
        assert top["income"]["contribution"] < 0  # the blank itself drove the score down


def test_an_unseen_category_is_refused_or_scored_as_other_as_the_spec_says(bspec: ModelSpec) -> None:
    lead = blank_lead("u", channel="billboard")
    encoded = encode_leads(bspec, [lead])
    assert not encoded.errors
    np.testing.assert_array_equal(encoded.X[0, [bspec.columns.index(c) for c in bspec.features[3].columns]], [0, 0, 0])
    refusing = parse_spec("r", {"target": "y", "quality_gate": 0.5, "bands": {"hot": 60, "warm": 30},
                                "features": [{"name": "channel", "kind": "categorical", "categories": ["ads", "referral"]}]})
    (error,) = encode_leads(refusing, [{"id": "u", "channel": "billboard"}]).errors
    assert error.problems == [["channel", "unknown category; expected one of ['ads', 'referral']"]]
    assert score_one(bspec, RuleScorer(bspec, "test"), lead)["score"] >= 0


def test_rules_read_a_blank_as_a_zero_contribution(cat_spec: ModelSpec) -> None:
    scorer = RuleScorer(cat_spec, "test")
    X = encode_leads(cat_spec, [{"id": "a", "budget": 100.0, "channel": "ads"}]).X
    blank = X.copy()
    blank[0, 0] = np.nan
    zero = X.copy()
    zero[0, 0] = 0.0
    p_blank, p_zero, p_full = scorer.predict_proba(np.vstack([blank, zero, X]))
    assert p_blank == p_zero != p_full and np.isfinite(p_blank)


def test_parity_rows_blank_only_the_features_that_may_be_missing(bspec: ModelSpec, bset: TrainingSet, spec: ModelSpec) -> None:
    X = np.nan_to_num(bset.X[:400])
    rows = blanked(bspec, X, seed=2)
    age = bspec.columns.index("age")
    assert not np.isnan(rows[:, age]).any()
    for name in ("income", "visits", "mortgage"):
        share = np.isnan(rows[:, bspec.columns.index(name)]).mean()
        assert 0.3 < share < 0.7
    assert blanked(spec, np.zeros((5, len(spec.columns))), seed=2).shape == (0, len(spec.columns))  # lead_scorer: none optional


def test_a_blank_tags_feature_is_nan_in_its_whole_block() -> None:
    tagged = parse_spec("t", {"target": "y", "quality_gate": 0.5, "bands": {"hot": 60, "warm": 30},
                              "features": [{"name": "amenities", "kind": "tags", "categories": ["pool", "garden"], "missing": "allowed"}]})
    encoded = encode_leads(tagged, [{"id": "a"}, {"id": "b", "amenities": ["pool"]}, {"id": "c", "amenities": []}])
    assert np.isnan(encoded.X[0]).all()
    np.testing.assert_array_equal(encoded.X[1:], [[1.0, 0.0], [0.0, 0.0]])  # an empty list is not a blank
