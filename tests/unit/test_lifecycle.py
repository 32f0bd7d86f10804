from __future__ import annotations

import pytest

from ml_core import rollout, synthetic
from ml_core.errors import DatasetError, ModelNotFoundError
from ml_core.lifecycle import train_and_register

from .helpers import FOLDS, MODEL, TRAIN_ROWS, TRAIN_SEED


def test_train_from_a_csv_export(empty_registry, trained, tmp_path):
    path = tmp_path / "crm_export.csv"
    synthetic.generate(MODEL, TRAIN_ROWS, seed=TRAIN_SEED).to_csv(path, index=False)

    card = train_and_register(empty_registry, MODEL, data=path, seed=TRAIN_SEED, folds=FOLDS, repeats=1, champion=False)

    assert card["version"] == "v1" and empty_registry.versions(MODEL) == ["v1"]
    assert card["data"]["source"] == "crm_export.csv"
    # the CSV holds exactly the rows the session model was trained on
    assert card["data"]["sha256"] == trained.data["sha256"]
    with pytest.raises(ModelNotFoundError, match="no champion"):
        empty_registry.champion(MODEL)


def test_bad_table_registers_nothing(empty_registry, tmp_path):
    path = tmp_path / "crm_export.csv"
    synthetic.generate(MODEL, 100, seed=1).drop(columns="converted").to_csv(path, index=False)
    with pytest.raises(DatasetError):
        train_and_register(empty_registry, MODEL, data=path)
    assert empty_registry.versions(MODEL) == []


def test_unknown_model(empty_registry):
    with pytest.raises(ModelNotFoundError):
        train_and_register(empty_registry, "no_such_model", rows=100)


def test_training_over_a_champion_is_a_promotion_that_rollback_undoes(empty_registry):
    for seed in (1, 2):
        train_and_register(empty_registry, MODEL, rows=TRAIN_ROWS, seed=seed, folds=FOLDS, repeats=1)
    assert empty_registry.champion(MODEL) == "v2"
    promoted = [e for e in rollout.history(empty_registry, MODEL) if e["event"] == "promoted"]
    assert [(e["version"], e["previous"]) for e in promoted] == [("v1", None), ("v2", "v1")]
    rollout.rollback(empty_registry, MODEL)
    assert empty_registry.champion(MODEL) == "v1"


def test_each_versions_report_names_its_model_and_version(empty_registry):
    for seed in (1, 2):
        train_and_register(empty_registry, MODEL, rows=TRAIN_ROWS, seed=seed, folds=FOLDS, repeats=1)
    for version in ("v1", "v2"):
        report = empty_registry.verified_file(MODEL, version, "report.md").decode()
        assert report.splitlines()[0] == f"# {MODEL} {version}"
        assert "held-out holdout" not in report
