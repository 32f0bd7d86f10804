"""Retraining: the training-set rule, the gates with their numbers, and optimized artifacts (no services)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ml_core import rollout, synthetic
from ml_core.errors import RegistrationRefusedError
from ml_core.optimize import Tolerance, optimize
from ml_core.outcomes import OutcomeStore, Snapshot
from ml_core.registry import Registry
from ml_core.retrain import RetrainPolicy, retrain, training_data
from ml_core.spec import ModelSpec
from ml_core.store.state import StateStore, embedded_url
from ml_core.training import TrainedModel, fit

from .helpers import MODEL

FAST = RetrainPolicy(base_rows=1500, folds=2, repeats=1)


def store_with(tmp_path: Path, n: int) -> OutcomeStore:
    store = OutcomeStore(StateStore(embedded_url(tmp_path / "data")))
    frame = synthetic.generate(MODEL, n, seed=5)
    when = datetime.now(UTC)
    for record in frame.to_dict("records"):
        features = {k: v for k, v in record.items() if k not in ("id", "converted")}
        store.record(MODEL, record["id"], int(record["converted"]), when, Snapshot(features, "v1", when.timestamp() - 1))
    return store


def test_base_data_is_added_only_while_outcomes_are_few(tmp_path: Path, spec: ModelSpec) -> None:
    store = store_with(tmp_path, 50)
    few, how = training_data(spec, store, RetrainPolicy(min_outcomes=100, base_rows=500))
    assert (len(few), how["outcomes"], how["base"]) == (550, 50, 500)
    enough, how = training_data(spec, store, RetrainPolicy(min_outcomes=50, base_rows=500))
    assert (len(enough), how["base"]) == (50, 0)


def test_a_retrain_that_must_beat_the_champion_and_does_not_is_refused_with_numbers(tmp_path: Path, registered: Registry) -> None:
    with pytest.raises(RegistrationRefusedError) as refused:
        retrain(registered, store_with(tmp_path, 20), MODEL, RetrainPolicy(base_rows=1500, folds=2, repeats=1, champion_tolerance=-0.2))
    assert "against champion v1's" in str(refused.value) and "beyond tolerance -0.2" in str(refused.value)
    assert registered.versions(MODEL) == ["v1"]
    assert rollout.history(registered, MODEL)[-1]["event"] == "retrain_refused"


def test_a_passing_retrain_becomes_the_challenger_with_its_report(tmp_path: Path, registered: Registry) -> None:
    result = retrain(registered, store_with(tmp_path, 20), MODEL, RetrainPolicy(base_rows=4000, folds=2, repeats=1, champion_tolerance=1.0))
    assert (result["role"], result["version"]) == ("challenger", "v2")
    assert rollout.challenger(registered, MODEL).mode == "shadow"
    card = registered.card(MODEL, "v2")
    assert card["comparison"]["champion"] == "v1" and card["training_set"]["outcomes"] == 20
    # judged on every retrain row, out of fold, against the champion's scores on the same rows
    assert (card["comparison"]["candidate_scored"], card["comparison"]["rows"]) == ("out-of-fold", 4020)
    assert card["comparison"]["candidate"] == card["metrics"]["estimate"]
    assert (registered.root / MODEL / "v2" / "report_roc.png").read_bytes()[:4] == b"\x89PNG"
    assert registered.champion(MODEL) == "v1"


def test_a_retrain_that_dies_midway_leaves_no_version(tmp_path: Path, registered: Registry, monkeypatch) -> None:
    def die(*_: object, **__: object) -> None:
        raise MemoryError("killed while writing the report")

    monkeypatch.setattr("ml_core.report.render", die)
    with pytest.raises(MemoryError):
        retrain(registered, store_with(tmp_path, 20), MODEL, RetrainPolicy(base_rows=4000, folds=2, repeats=1, champion_tolerance=1.0))
    assert registered.versions(MODEL) == ["v1"] and rollout.challenger(registered, MODEL) is None


def fitted(spec: ModelSpec, train_set, family: str) -> TrainedModel:
    return fit(spec, train_set, folds=2, repeats=1, families=[family])


def test_int8_only_where_there_are_matmul_operators_and_always_with_the_guard(spec, train_set) -> None:
    linear = optimize(fitted(spec, train_set, "logistic_regression"), Tolerance())
    assert (linear.kind, linear.served) == ("none", False) and "no quantizable operators" in linear.card["reason"]

    mlp = fitted(spec, train_set, "mlp")
    quantized = optimize(mlp, Tolerance())
    assert quantized.kind == "int8"
    assert {"auc_change", "max_abs_diff", "label_flip_rate"} <= set(quantized.card["guard"])
    assert quantized.served == (quantized.onnx != mlp.onnx)
    refused = optimize(mlp, Tolerance(max_abs_diff=0.0))
    assert not refused.served and refused.onnx == mlp.onnx and "refused" in refused.card["reason"]
    # however accurate, an INT8 artifact that is not smaller is not worth serving
    loose = optimize(mlp, Tolerance(max_auc_drop=1.0, max_abs_diff=1.0, max_flip_rate=1.0))
    sizes = loose.card["size_bytes"]
    assert loose.served == (sizes["int8"] < sizes["full"])
    assert loose.served or "not smaller" in loose.card["reason"]


def test_trees_get_a_compact_ensemble_held_to_the_same_guard(spec, train_set) -> None:
    trees = fitted(spec, train_set, "gradient_boosting")
    compact = optimize(trees, Tolerance(max_auc_drop=1.0, max_abs_diff=1.0, max_flip_rate=1.0))
    assert (compact.kind, compact.served) == ("compact", True)
    assert compact.card["size_bytes"]["compact"] < compact.card["size_bytes"]["full"]
    assert compact.card["guard"]["parity_max_abs_diff"] <= 1e-4
