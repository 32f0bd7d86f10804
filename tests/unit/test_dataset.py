from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_core import synthetic
from ml_core.dataset import read_table, training_set
from ml_core.errors import DatasetError

from .helpers import MODEL


@pytest.fixture
def frame() -> pd.DataFrame:
    return synthetic.generate(MODEL, 300, seed=9)


def test_valid_frame_gives_matrix_and_labels(spec, frame):
    data = training_set(spec, frame, "test")
    np.testing.assert_array_equal(data.X, frame[list(spec.columns)].to_numpy(np.float32))
    np.testing.assert_array_equal(data.y, frame["converted"].to_numpy())
    assert data.y.dtype == np.int8


def test_fingerprint_follows_the_data(spec, frame):
    a = training_set(spec, frame, "a").fingerprint
    assert a == training_set(spec, frame.copy(), "a").fingerprint
    assert a["rows"] == 300
    assert a["positive_rate"] == round(float(frame["converted"].mean()), 4)
    assert a["source"] == "a"
    changed = frame.copy()
    changed.loc[0, "timeline_urgency"] = 1 - changed.loc[0, "timeline_urgency"]
    assert training_set(spec, changed, "a").fingerprint["sha256"] != a["sha256"]
    flipped = frame.copy()
    flipped.loc[0, "converted"] = 1 - flipped.loc[0, "converted"]
    assert training_set(spec, flipped, "a").fingerprint["sha256"] != a["sha256"]


def test_missing_target(spec, frame):
    with pytest.raises(DatasetError, match="target column 'converted' is missing") as info:
        training_set(spec, frame.drop(columns="converted"), "test")
    assert info.value.model == MODEL


def test_missing_feature_column(spec, frame):
    with pytest.raises(DatasetError, match=r"feature columns missing: \['questions_asked'\]"):
        training_set(spec, frame.drop(columns="questions_asked"), "test")


@pytest.mark.parametrize("bad", [2, 0.5, -1, np.nan, "yes"])
def test_non_binary_target(spec, frame, bad):
    frame["converted"] = frame["converted"].astype(object)
    frame.loc[17, "converted"] = bad
    frame.loc[40, "converted"] = bad
    with pytest.raises(DatasetError, match=r"must be 0 or 1; 2 rows are not \(first at row 17\)"):
        training_set(spec, frame, "test")


def test_invalid_rows_name_the_first_row_and_field(spec, frame):
    frame.loc[5, "timeline_urgency"] = 3.0
    frame.loc[80, "response_time_hours"] = np.nan
    with pytest.raises(DatasetError) as info:
        training_set(spec, frame, "test")
    message = str(info.value)
    assert "2 invalid rows, first is row 5" in message
    assert "timeline_urgency: out of range" in message


def test_single_class_target(spec, frame):
    frame["converted"] = 0
    with pytest.raises(DatasetError, match="single class"):
        training_set(spec, frame, "test")


@pytest.mark.parametrize("name", ["leads.csv", "leads.CSV", "leads.parquet", "leads.pq", "leads.Parquet"])
def test_table_round_trip(spec, frame, tmp_path, name):
    path = tmp_path / name
    if path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)

    read = read_table(path)

    assert list(read.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(read, frame, check_dtype=False)
    original, loaded = training_set(spec, frame, "a"), training_set(spec, read, "a")
    assert loaded.fingerprint == original.fingerprint


def test_csv_with_empty_cells_is_refused_for_required_features(spec, frame, tmp_path):
    frame.loc[3, "financing_mentioned"] = None
    frame.to_csv(tmp_path / "leads.csv", index=False)
    with pytest.raises(DatasetError, match="first is row 3: financing_mentioned: missing"):
        training_set(spec, read_table(tmp_path / "leads.csv"), "leads.csv")


@pytest.mark.parametrize("name", ["leads.xlsx", "leads.json", "leads"])
def test_unsupported_suffix(tmp_path, name):
    path = tmp_path / name
    path.write_text("id\n1\n")
    with pytest.raises(DatasetError, match="expected a .csv or .parquet file") as info:
        read_table(path)
    assert name in str(info.value)
