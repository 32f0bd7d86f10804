"""Featurizers: the seam for models whose request is not itself a flat feature dict.

A spec with ``featurizer = "<module>"`` names ``ml_core.featurizers.<module>``, which defines:

- ``INPUTS: dict[str, Schema]``: the raw inputs by role (``"preferences"``, ``"property"``), each
  validated by ``ml_core.features`` exactly like lead features;
- ``check(inputs) -> list[Problem]``: cross-field rules a schema cannot state (min <= max);
- ``derive(inputs) -> dict[str, np.ndarray]``: every feature it can derive, vectorized. Inputs
  are field views (``ml_core.features.fields``); a role with one row broadcasts against the others.

The spec's features are a subset of what ``derive`` returns, checked again against the spec, so
validation stays in one place and training, the registry and serving treat the model like any
other. Training tables hold either the spec's features or the raw inputs as ``<role>.<field>``
columns (``featurize_table``), so a model trains on exactly what serving derives.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ml_core.errors import DatasetError, SpecError
from ml_core.features import encode_frame, fields
from ml_core.spec import ModelSpec, Schema

if TYPE_CHECKING:
    import pandas as pd

Inputs = Mapping[str, Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class Problem:
    """A cross-field rule broken by the rows in ``rows`` (a boolean mask over the role's rows)."""

    role: str
    field: str
    problem: str
    rows: np.ndarray


@dataclass(frozen=True)
class Featurizer:
    name: str
    inputs: Mapping[str, Schema]
    check: Callable[[Inputs], list[Problem]]
    derive: Callable[[Inputs], dict[str, np.ndarray]]

    def features(self, specs: Sequence[ModelSpec], inputs: Inputs) -> list[dict[str, np.ndarray]]:
        """Each spec's features from valid inputs, one value per row of the longest role, derived once for all."""
        (n,) = np.broadcast_shapes(*((len(column),) for role in inputs.values() for column in role.values()))
        derived = self.derive(inputs)
        for spec in specs:
            missing = [name for name in spec.feature_names if name not in derived]
            if missing:
                raise SpecError(spec.name, f"featurizer {self.name!r} derives no {missing}")
        return [{name: np.broadcast_to(derived[name], (n,)) for name in spec.feature_names} for spec in specs]


def load_featurizer(name: str) -> Featurizer:
    try:
        module = importlib.import_module(f"ml_core.featurizers.{name}")
    except ModuleNotFoundError:
        raise SpecError(name, f"no featurizer module ml_core.featurizers.{name}") from None
    return Featurizer(name=name, inputs=module.INPUTS, check=module.check, derive=module.derive)


def featurize_table(spec: ModelSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The table with the spec's feature columns: as given, or derived from ``<role>.<field>`` columns.

    Every row must be valid, as for any training table: a bad row stops training with its number.
    """
    import pandas as pd  # training tables only

    if spec.featurizer is None or set(spec.feature_names) <= set(frame.columns):
        return frame
    featurizer = load_featurizer(spec.featurizer)
    inputs = {}
    for role, schema in featurizer.inputs.items():
        prefix = f"{role}."
        columns = {c[len(prefix) :]: frame[c] for c in frame.columns if c.startswith(prefix)}
        encoded = encode_frame(schema, pd.DataFrame(columns, index=frame.index))
        if encoded.errors:
            first = encoded.errors[0]
            detail = "; ".join(f"{prefix}{f}: {p}" for f, p in first.problems)
            raise DatasetError(spec.name, f"{len(encoded.errors)} invalid rows, first is row {first.index}: {detail}")
        inputs[role] = fields(schema, encoded.X)
    for problem in featurizer.check(inputs):
        if problem.rows.any():
            row = int(np.argmax(problem.rows))
            raise DatasetError(spec.name, f"{int(problem.rows.sum())} invalid rows, first is row {row}: {problem.role}.{problem.field}: {problem.problem}")
    derived = pd.DataFrame(featurizer.features([spec], inputs)[0], index=frame.index)
    target = [c for c in (spec.target,) if c in frame.columns]  # a missing target is training_set's to report
    return pd.concat([derived, frame[target]], axis=1)
