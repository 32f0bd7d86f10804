"""Blanks inside the exported pipeline: median imputation plus a missing-indicator column.

The booster reads NaN natively (each split learned which side blanks go to). The linear and
neural candidates cannot, so their pipelines start with ``ImputeWithIndicator``: a blank becomes
the column's training median, and every column that had blanks in training gains a 0/1 "was
blank" column, so the model learns what a blank means instead of pretending it was the median.
A column that had no blanks in training is still imputed at serving, without an indicator.

It is part of the fitted pipeline, so the ONNX artifact does exactly what training did:
skl2onnx 1.20 drops ``SimpleImputer(add_indicator=True)``'s indicator and has no converter for
``MissingIndicator``, so this module registers its own (IsNaN, Where, Gather, Cast, Concat).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline

from ml_core.spec import ModelSpec


class ImputeWithIndicator(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """``[median-imputed X, isnan(X) of the columns that had blanks at fit]``."""

    def fit(self, X: np.ndarray, y: Any = None) -> ImputeWithIndicator:
        X = np.asarray(X, dtype=np.float64)
        missing = np.isnan(X)
        medians = np.zeros(X.shape[1])
        seen = ~missing.all(axis=0)  # a column blank in every row imputes 0
        medians[seen] = np.nanmedian(X[:, seen], axis=0)
        self.statistics_ = medians
        self.indicator_columns_ = np.flatnonzero(missing.any(axis=0))
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        missing = np.isnan(X)
        return np.hstack([np.where(missing, self.statistics_, X), missing[:, self.indicator_columns_].astype(np.float64)])

    def fold(self, per_column: np.ndarray) -> np.ndarray:
        """Per-output-column values (e.g. contributions) summed back onto the input columns:
        an indicator's share goes to the column it flags."""
        n = self.n_features_in_
        folded = per_column[:, :n].copy()
        np.add.at(folded, (slice(None), self.indicator_columns_), per_column[:, n:])  # type: ignore[arg-type]  # stubs lack the documented tuple index
        return folded


def imputed(*steps: tuple[str, Any]) -> Pipeline:
    """A pipeline whose first step turns blanks into medians plus indicators."""
    return Pipeline([("impute", ImputeWithIndicator()), *steps])


def blanked(spec: ModelSpec, X: np.ndarray, seed: int) -> np.ndarray:
    """Copies of rows with the features that may be missing blanked (each in about half of the
    rows, independently): rows for checking ONNX against the native model on blanks, whether or
    not the held-out rows happen to have any. Empty when no feature may be missing."""
    rng = np.random.default_rng(seed)
    out = np.array(X, dtype=np.float64, copy=True)
    at, any_blank = 0, False
    for feature in spec.features:
        width = len(feature.columns)
        if feature.may_be_missing:
            out[rng.random(len(out)) < 0.5, at : at + width] = np.nan
            any_blank = True
        at += width
    return out if any_blank else out[:0]


def register_onnx_converter() -> None:
    """Teach skl2onnx ``ImputeWithIndicator`` (idempotent)."""
    from skl2onnx import update_registered_converter

    update_registered_converter(ImputeWithIndicator, "LeadscoreImputeWithIndicator", _shape, _convert)


def _shape(operator: Any) -> None:
    imputer = operator.raw_operator
    width = imputer.n_features_in_ + len(imputer.indicator_columns_)
    operator.outputs[0].type = operator.inputs[0].type.__class__([None, width])


def _convert(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto

    imputer = operator.raw_operator
    x, out = operator.inputs[0].full_name, operator.outputs[0].full_name

    def name(hint: str) -> str:
        unique: str = scope.get_unique_variable_name(hint)
        return unique

    def node(op: str, inputs: list[str], outputs: list[str], **attrs: Any) -> None:
        container.add_node(op, inputs, outputs, name=scope.get_unique_operator_name(op), **attrs)

    isnan, medians, filled = name("isnan"), name("medians"), name("filled")
    container.add_initializer(medians, TensorProto.FLOAT, [imputer.n_features_in_], imputer.statistics_.astype(np.float32).tolist())
    node("IsNaN", [x], [isnan])
    if not len(imputer.indicator_columns_):
        node("Where", [isnan, medians, x], [out])
        return
    node("Where", [isnan, medians, x], [filled])
    columns, flagged, flags = name("indicator_columns"), name("flagged"), name("flags")
    container.add_initializer(columns, TensorProto.INT64, [len(imputer.indicator_columns_)], imputer.indicator_columns_.tolist())
    node("Gather", [isnan, columns], [flagged], axis=1)
    node("Cast", [flagged], [flags], to=TensorProto.FLOAT)
    node("Concat", [filled, flags], [out], axis=1)
