from __future__ import annotations

import pytest

from ml_core import synthetic
from ml_core.errors import DatasetError, ModelNotFoundError
from ml_core.lifecycle import train_and_register

from .helpers import FOLDS, MODEL, TRAIN_ROWS, TRAIN_SEED


def test_train_from_a_csv_export(empty_registry, trained, tmp_path):
    path = tmp_path / "crm_export.csv"
    synthetic.generate(MODEL, TRAIN_ROWS, seed=TRAIN_SEED).to_csv(path, index=False)

    card = train_and_register(empty_registry, MODEL, data=path, seed=TRAIN_SEED, folds=FOLDS, champion=False)

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
