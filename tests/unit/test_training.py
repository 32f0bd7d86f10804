from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from ml_core import candidates, onnx_model, synthetic
from ml_core.dataset import TrainingSet, training_set
from ml_core.errors import DatasetError, RegistrationRefusedError, SpecError
from ml_core.onnx_model import OnnxScorer
from ml_core.spec import parse_spec
from ml_core.training import fit, repeats_for, train

from .helpers import FOLDS, MODEL, TRAIN_ROWS, TRAIN_SEED, categorical_spec_data


def test_trained_model_passes_its_gates_out_of_fold(spec, trained):
    metrics = trained.metrics
    assert (metrics["metric"], metrics["evaluated_on"]) == (spec.metric, "out_of_fold")
    assert metrics["estimate"] >= spec.quality_gate == metrics["quality_gate"]
    assert metrics["parity_max_abs_diff"] <= metrics["parity_tolerance"] == 1e-4
    for key in ("roc_auc", "average_precision", "top10_capture", "top20_capture", "top10_lift", "top20_lift", "log_loss", "brier"):
        assert np.isfinite(metrics[key]) and metrics[key] == metrics["out_of_fold"][key]
    assert 0.5 < metrics["roc_auc"] <= 1 and 0 < metrics["brier"] < 0.25
    # the estimate is the pooled out-of-fold metric of the chosen family, every row scored once per repeat
    assert metrics["estimate"] == trained.cross_validation[trained.family]["oof"] == metrics["roc_auc"]
    assert metrics["evaluation_rows"] == metrics["rows_fitted"] == TRAIN_ROWS
    assert trained.oof_proba.shape == trained.oof_y.shape == (TRAIN_ROWS,)


def test_the_registered_model_is_refitted_on_every_row(spec, small_set, empty_registry):
    fitted = fit(spec, small_set, seed=3, folds=3, repeats=1, families=["blend"])
    rows = len(small_set.y)
    linear = fitted.model.named_estimators_["logistic_regression"]
    assert linear.named_steps["scale"].n_samples_seen_ == rows  # the served model saw every row
    card = empty_registry.card(MODEL, empty_registry.register(fitted))
    assert card["data"]["rows_fitted"] == card["data"]["rows"] == card["metrics"]["rows_fitted"] == rows
    assert card["selection"]["chosen"] == "blend" and card["selection"]["rows"] == rows
    assert "refitted on all of them" in card["selection"]["protocol"]


def test_a_held_out_split_is_an_option(spec, small_set):
    fitted = fit(spec, small_set, seed=3, folds=3, repeats=1, holdout=0.2, families=["logistic_regression"])
    held = round(0.2 * len(small_set.y))
    assert (fitted.metrics["evaluated_on"], fitted.metrics["evaluation_rows"]) == ("held_out", held)
    assert fitted.metrics["rows_fitted"] == len(fitted.oof_y) == len(small_set.y) - held
    assert fitted.model.named_steps["scale"].n_samples_seen_ == len(small_set.y) - held
    assert fitted.evaluation_rows()[0] is fitted.holdout.X_test


def test_every_candidate_is_scored_on_the_same_folds_and_the_rule_is_on_the_card(trained):
    assert set(trained.cross_validation) == set(candidates.DEFAULT_FAMILIES)
    sel = trained.selection
    assert sel["chosen"] == trained.family and sel["reason"].startswith("chosen because")
    assert "one-standard-error rule on paired folds" in sel["rule"]
    assert (sel["folds"], sel["repeats"]) == (FOLDS, repeats_for(TRAIN_ROWS))


def test_fit_can_be_restricted_to_named_families(spec, small_set):
    fitted = fit(spec, small_set, folds=2, repeats=1, families=["logistic_regression"])
    assert fitted.family == "logistic_regression"
    assert set(fitted.cross_validation) == {"logistic_regression"}
    with pytest.raises(ValueError, match=r"unknown model families \['forest'\]"):
        fit(spec, small_set, families=["forest", "mlp"])


def test_same_data_and_seed_give_identical_served_scores(spec, small_set):
    first, second = (fit(spec, small_set, seed=5, folds=3, repeats=2) for _ in range(2))
    X = small_set.X.astype(np.float32)
    assert first.family == second.family
    assert np.array_equal(OnnxScorer(MODEL, "a", first.onnx).predict_proba(X), OnnxScorer(MODEL, "b", second.onnx).predict_proba(X))
    assert np.array_equal(first.oof_proba, second.oof_proba) and first.cross_validation == second.cross_validation


def test_the_simpler_model_is_kept_when_the_complex_one_wins_by_less_than_its_spread(cat_spec):
    # Given a noisy table whose log-odds are linear but for a slight curvature in one feature, which
    # the blend's booster half picks up a little of: the blend scores higher on average...
    rng = np.random.default_rng(2)
    X = rng.normal(size=(900, 3))
    X = np.column_stack([X[:, 0], rng.integers(0, 2, size=(900, 3)), X[:, 1:]]).astype(np.float32)
    logit = 0.8 * X[:, 0] + 0.5 * X[:, 4] + 0.4 * X[:, 1] + 0.15 * X[:, 5] ** 2
    y = (rng.random(900) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    data = TrainingSet(X=X[:, :6], y=y, source="linear and noisy")
    spec = dataclasses.replace(cat_spec, quality_gate=0.5)
    fitted = fit(spec, data, seed=1, folds=5, repeats=3, families=["logistic_regression", "blend"])
    cv, (comparison,) = fitted.cross_validation, fitted.selection["comparisons"]
    assert cv["blend"]["mean"] > cv["logistic_regression"]["mean"], "precondition: the complex candidate must win on average"
    # ...by less than one standard error of the paired difference, so the linear model is served
    assert 0 < comparison["mean_difference"] <= comparison["se"]
    assert fitted.family == "logistic_regression" and "within one standard error" in fitted.selection["reason"]


def test_the_complex_model_is_chosen_when_it_wins_by_more_than_its_spread(cat_spec):
    # Given a table that is an XOR of two features: no linear model can rank it
    rng = np.random.default_rng(4)
    X = rng.normal(size=(800, 6)).astype(np.float32)
    y = ((X[:, 0] > 0) ^ (X[:, 5] > 0)).astype(np.int8)
    fitted = fit(dataclasses.replace(cat_spec, quality_gate=0.5), TrainingSet(X, y, "xor"), seed=1, folds=3, repeats=1,
                 families=["logistic_regression", "gradient_boosting"])
    assert fitted.family == "gradient_boosting" and "more than one standard error" in fitted.selection["reason"]


def test_a_spec_may_select_on_a_ranking_metric_and_refuses_an_unknown_one(cat_spec):
    assert parse_spec("tiny", {**categorical_spec_data(), "metric": "top20_capture"}).metric == "top20_capture"
    with pytest.raises(SpecError, match="metric 'accuracy' is not one of roc_auc, average_precision, top10_capture"):
        parse_spec("tiny", {**categorical_spec_data(), "metric": "accuracy"})


def test_training_on_a_ranking_metric_gates_on_it(spec, small_set):
    top = dataclasses.replace(spec, metric="top20_capture", quality_gate=0.3)
    fitted = fit(top, small_set, seed=3, folds=3, repeats=1, families=["logistic_regression"])
    assert fitted.metrics["estimate"] == fitted.metrics["top20_capture"] >= 0.3


def test_rows_with_missing_values_train_and_export_with_parity(spec, small_set):
    X = small_set.X.copy()
    X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    data = TrainingSet(X=X, y=small_set.y, source="with blanks")
    for family in ("logistic_regression", "gradient_boosting"):
        fitted = fit(dataclasses.replace(spec, quality_gate=0.5), data, folds=2, repeats=1, families=[family])
        blanks = X[np.isnan(X).any(axis=1)]
        assert len(blanks) and onnx_model.parity(fitted.onnx, fitted.model, blanks) <= 1e-4


def test_the_time_budget_sizes_the_booster_search(small_set):
    X, y = small_set.X, small_set.y
    roomy, tight = candidates.plan(X, y, 4, 600.0, 0), candidates.plan(X, y, 16, 3.0, 0)
    assert roomy.configs == candidates.MAX_CONFIGS and roomy.probe_iterations > 0
    assert tight.configs == 1  # at least one setting, however small the budget
    assert 1 < candidates.plan(X, y, 16, 10.0, 0).configs < candidates.MAX_CONFIGS
    assert candidates.plan(X, y, 16, 10.0, 0) == candidates.plan(X, y, 16, 10.0, 0)  # a cost model, not a clock
    settings = candidates.booster_settings(roomy)
    assert settings[0] == candidates.BOOSTER_FIRST and len({tuple(s.values()) for s in settings}) == roomy.configs


def test_too_few_positives_for_the_folds_is_a_clear_error(spec, small_set):
    keep = np.flatnonzero(small_set.y == 0)[:200].tolist() + np.flatnonzero(small_set.y == 1)[:9].tolist()
    few = TrainingSet(small_set.X[keep], small_set.y[keep], "nine positives")
    with pytest.raises(DatasetError, match="the rarer target class has 9 rows to fit on; 5-fold cross-validation .* at least 10"):
        fit(spec, few, folds=5)


def test_impossible_quality_gate_is_refused(spec, small_set):
    strict = dataclasses.replace(spec, quality_gate=0.99)

    with pytest.raises(RegistrationRefusedError) as info:
        train(strict, small_set, folds=FOLDS, repeats=1)

    (failure,) = info.value.failures
    match = re.fullmatch(r"quality gate: out-of-fold roc_auc ([0-9.]+) < 0\.9900 \(short by ([0-9.]+)\)", failure)
    assert match, failure
    estimate, short_by = map(float, match.groups())
    assert short_by > 0
    assert short_by == pytest.approx(0.99 - estimate, abs=2e-4)
    assert info.value.model == MODEL
    assert failure in str(info.value)


def test_absurd_parity_tolerance_is_refused(spec, small_set):
    # Only parity may fail here: float32 ONNX can never match float64 sklearn to 1e-12.
    lenient = dataclasses.replace(spec, quality_gate=0.0)

    with pytest.raises(RegistrationRefusedError) as info:
        train(lenient, small_set, folds=FOLDS, repeats=1, parity_tolerance=1e-12)

    (failure,) = info.value.failures
    match = re.fullmatch(r"ONNX parity: max \|onnx - sklearn\| probability (\S+) > tolerance 1e-12", failure)
    assert match, failure
    assert float(match.group(1)) > 1e-12


def test_card_data_fingerprint(trained, train_set):
    assert trained.data == {**train_set.fingerprint, "rows_fitted": TRAIN_ROWS, "holdout_fraction": 0.0, "seed": TRAIN_SEED}


def test_onnx_export_matches_the_native_model_on_new_rows(spec, trained):
    X = training_set(spec, synthetic.generate(MODEL, 1000, seed=1234), "new").X
    assert onnx_model.parity(trained.onnx, trained.model, X) <= 1e-4


def test_parity_of_no_rows_is_zero(spec, trained):
    assert onnx_model.parity(trained.onnx, trained.model, np.zeros((0, len(spec.columns)), np.float32)) == 0.0
