"""Seeded synthetic data, one module per model, for demos and tests.

Each ``ml_core.synthetic.<model>`` module documents its generative story and defines
``generate(n: int, rng: numpy.random.Generator) -> pandas.DataFrame`` returning an ``id``
column, the spec's features and its target.
"""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd

from ml_core.errors import ModelNotFoundError


def generate(model: str, n: int, seed: int = 42) -> pd.DataFrame:
    try:
        module = importlib.import_module(f"ml_core.synthetic.{model}")
    except ModuleNotFoundError:
        raise ModelNotFoundError(model, problem="no synthetic generator for it; train from a file") from None
    return module.generate(n, np.random.default_rng(seed))
