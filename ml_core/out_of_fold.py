"""Out-of-fold scores of the training rows: the calibration set of escalation and bands.

INTEGRATOR: training (branch ``train``) computes these itself, over all rows, and exposes them as
``TrainedModel.oof_y`` and ``TrainedModel.oof_proba``; once merged, ``out_of_fold`` returns those
and the refit below goes away. Until then it refits the chosen family on ``folds`` stratified folds
of the rows the model was fitted on, so every score comes from a model that did not see its row.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from ml_core.training import TrainedModel


def out_of_fold(trained: TrainedModel, folds: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(labels, positive-class probabilities), one per training row, each predicted out of fold."""
    split = trained.split
    if split is None:
        raise ValueError(f"model {trained.spec.name}: no training rows kept to score out of fold")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=int(trained.data.get("seed", 42)))
    with threadpool_limits(limits=1):  # as in training: the booster's OpenMP pool must not spin on every core
        proba = cross_val_predict(clone(trained.model), split.X_train, split.y_train, cv=splitter, method="predict_proba")
    return np.asarray(split.y_train), np.asarray(proba[:, 1], dtype=np.float64)
