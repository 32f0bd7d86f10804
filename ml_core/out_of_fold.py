"""Out-of-fold scores of the training rows: the calibration set of escalation and bands.

Training on branch ``train`` computes them itself, over every row and repeated folds, as
``TrainedModel.oof_y`` and ``TrainedModel.oof_proba``; when a model carries them they are used as
they are. INTEGRATOR: once that branch is merged every model carries them, and the refit below
(for models trained without them: the chosen family refitted on ``folds`` stratified folds of the
rows it was fitted on, so each score comes from a model that did not see its row) can go.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from ml_core.training import TrainedModel


@dataclass(frozen=True)
class OutOfFold:
    y: np.ndarray
    """Labels, one per training row."""
    p: np.ndarray
    """Positive-class probabilities, each predicted by a model that did not see its row."""
    source: str
    """How they were made, for the card and the report."""


def out_of_fold(trained: TrainedModel, folds: int = 5) -> OutOfFold:
    own = getattr(trained, "oof_proba", None)
    if own is not None:
        y = np.asarray(getattr(trained, "oof_y", None))
        return OutOfFold(y, np.asarray(own, dtype=np.float64), f"out of fold: training's own, {len(y)} rows ({trained.family})")
    split = trained.split
    if split is None:
        raise ValueError(f"model {trained.spec.name}: no training rows kept to score out of fold")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=int(trained.data.get("seed", 42)))
    with threadpool_limits(limits=1):  # as in training: the booster's OpenMP pool must not spin on every core
        proba = cross_val_predict(clone(trained.model), split.X_train, split.y_train, cv=splitter, method="predict_proba")
    y = np.asarray(split.y_train)
    return OutOfFold(y, np.asarray(proba[:, 1], dtype=np.float64), f"out of fold: {folds} folds of {len(y)} training rows ({trained.family})")
