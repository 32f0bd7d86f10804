from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from ml_core import onnx_model, synthetic
from ml_core.dataset import training_set
from ml_core.errors import RegistrationRefusedError
from ml_core.training import candidates, fit, train

from .helpers import FOLDS, MODEL, TRAIN_ROWS, TRAIN_SEED


def test_trained_model_passes_its_gates(spec, trained):
    metrics = trained.metrics
    assert metrics["metric"] == spec.metric
    assert metrics["holdout"] >= spec.quality_gate == metrics["quality_gate"]
    assert metrics["parity_max_abs_diff"] <= metrics["parity_tolerance"] == 1e-4
    for key in ("roc_auc", "log_loss", "brier"):
        assert np.isfinite(metrics[key])
    assert 0.5 < metrics["roc_auc"] <= 1
    assert 0 < metrics["brier"] < 0.25
    assert metrics["holdout_rows"] == round(0.2 * TRAIN_ROWS)


def test_best_cross_validated_family_is_kept(trained):
    assert set(trained.cross_validation) == set(candidates(0))
    best = max(trained.cross_validation, key=lambda name: trained.cross_validation[name]["mean"])
    assert trained.family == best
    assert type(trained.model) is type(candidates(0)[best])


def test_fit_can_be_restricted_to_named_families(spec, small_set):
    fitted = fit(spec, small_set, folds=2, families=["logistic_regression"])
    assert fitted.family == "logistic_regression"
    assert set(fitted.cross_validation) == {"logistic_regression"}
    with pytest.raises(ValueError, match=r"unknown model families \['forest'\]"):
        fit(spec, small_set, families=["forest", "mlp"])


def test_card_data_fingerprint(trained, train_set):
    assert trained.data == {**train_set.fingerprint, "holdout_fraction": 0.2, "seed": TRAIN_SEED}


def test_onnx_export_matches_the_native_model_on_new_rows(spec, trained):
    X = training_set(spec, synthetic.generate(MODEL, 1000, seed=1234), "new").X
    assert onnx_model.parity(trained.onnx, trained.model, X) <= 1e-4


def test_parity_of_no_rows_is_zero(spec, trained):
    assert onnx_model.parity(trained.onnx, trained.model, np.zeros((0, len(spec.columns)), np.float32)) == 0.0


def test_impossible_quality_gate_is_refused(spec, small_set):
    strict = dataclasses.replace(spec, quality_gate=0.99)

    with pytest.raises(RegistrationRefusedError) as info:
        train(strict, small_set, folds=FOLDS)

    (failure,) = info.value.failures
    match = re.fullmatch(r"quality gate: held-out roc_auc ([0-9.]+) < 0\.9900 \(short by ([0-9.]+)\)", failure)
    assert match, failure
    held_out, short_by = map(float, match.groups())
    assert short_by > 0
    assert short_by == pytest.approx(0.99 - held_out, abs=2e-4)
    assert info.value.model == MODEL
    assert failure in str(info.value)


def test_absurd_parity_tolerance_is_refused(spec, small_set):
    # Only parity may fail here: float32 ONNX can never match float64 sklearn to 1e-12.
    lenient = dataclasses.replace(spec, quality_gate=0.0)

    with pytest.raises(RegistrationRefusedError) as info:
        train(lenient, small_set, folds=FOLDS, parity_tolerance=1e-12)

    (failure,) = info.value.failures
    match = re.fullmatch(r"ONNX parity: max \|onnx - sklearn\| probability (\S+) > tolerance 1e-12", failure)
    assert match, failure
    assert float(match.group(1)) > 1e-12
