"""The calibration rows of escalation and bands: training's own out-of-fold scores when a model
carries them, else the chosen family refitted fold by fold."""

from __future__ import annotations

import copy

import numpy as np
from sklearn.metrics import roc_auc_score

from ml_core.out_of_fold import out_of_fold
from ml_core.training import TrainedModel


def test_the_chosen_family_scores_every_training_row_out_of_fold(trained: TrainedModel) -> None:
    oof = out_of_fold(trained, folds=3)
    assert trained.split is not None
    assert np.array_equal(oof.y, trained.split.y_train) and len(oof.p) == len(oof.y)
    assert ((0 <= oof.p) & (oof.p <= 1)).all()
    # out of fold: useful, and no better than the model judged on its own training rows
    in_sample = roc_auc_score(oof.y, trained.model.predict_proba(trained.split.X_train)[:, 1])
    assert 0.6 < roc_auc_score(oof.y, oof.p) <= in_sample
    assert "3 folds" in oof.source


def test_a_model_carrying_its_own_out_of_fold_scores_is_taken_at_its_word(trained: TrainedModel) -> None:
    carrying = copy.copy(trained)
    carrying.oof_y, carrying.oof_proba = np.array([0, 1, 1]), np.array([0.2, 0.7, 0.9])  # type: ignore[attr-defined]
    oof = out_of_fold(carrying)
    assert oof.y.tolist() == [0, 1, 1] and oof.p.tolist() == [0.2, 0.7, 0.9]
    assert "training's own" in oof.source
