"""Synthetic (lead, property) pairs for ``property_matcher``, labelled ``good_match``: the story is in ``property_pairs``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml_core.synthetic.property_pairs import pairs


def generate(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pairs(n, rng, target="good_match")
