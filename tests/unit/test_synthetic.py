from __future__ import annotations

import pandas as pd
import pytest

from ml_core import synthetic
from ml_core.dataset import training_set
from ml_core.errors import ModelNotFoundError

from .helpers import MODEL


def test_same_seed_same_frame():
    pd.testing.assert_frame_equal(synthetic.generate(MODEL, 500, seed=5), synthetic.generate(MODEL, 500, seed=5))


def test_different_seed_different_frame(spec):
    a, b = synthetic.generate(MODEL, 500, seed=5), synthetic.generate(MODEL, 500, seed=6)
    for name in spec.feature_names:
        assert not a[name].equals(b[name]), name


def test_columns_are_id_features_and_target(spec):
    frame = synthetic.generate(MODEL, 50, seed=1)
    assert list(frame.columns) == ["id", *spec.feature_names, spec.target]
    assert frame["id"].is_unique


@pytest.mark.parametrize("seed", [0, 42, 2024])
def test_converter_rate_is_plausible(seed):
    rate = synthetic.generate(MODEL, 20_000, seed=seed)["converted"].mean()
    assert 0.10 <= rate <= 0.25


@pytest.mark.parametrize("seed", [0, 42, 2024])
def test_every_generated_row_is_valid(spec, seed):
    data = training_set(spec, synthetic.generate(MODEL, 20_000, seed=seed), "synthetic")
    assert data.X.shape == (20_000, len(spec.columns))
    assert set(data.y.tolist()) == {0, 1}


def test_unknown_model_has_no_generator():
    with pytest.raises(ModelNotFoundError, match="no synthetic generator"):
        synthetic.generate("no_such_model", 10)
