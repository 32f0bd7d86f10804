"""Shared fixtures of the ml_core unit tests: the real lead_scorer spec, a tiny categorical spec,
and one small model trained once per session into a throwaway registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_core import synthetic
from ml_core.dataset import TrainingSet, training_set
from ml_core.registry import Registry
from ml_core.spec import ModelSpec, load_spec, parse_spec
from ml_core.training import TrainedModel, train

from .helpers import FOLDS, MODEL, REPO_MODELS, TRAIN_ROWS, TRAIN_SEED, categorical_spec_data, copy_spec


@pytest.fixture(scope="session")
def spec() -> ModelSpec:
    return load_spec(REPO_MODELS, MODEL)


@pytest.fixture(scope="session")
def cat_spec() -> ModelSpec:
    return parse_spec("tiny", categorical_spec_data())


@pytest.fixture(scope="session")
def train_set(spec: ModelSpec) -> TrainingSet:
    frame = synthetic.generate(MODEL, TRAIN_ROWS, seed=TRAIN_SEED)
    return training_set(spec, frame, f"synthetic(rows={TRAIN_ROWS}, seed={TRAIN_SEED})")


@pytest.fixture(scope="session")
def small_set(spec: ModelSpec) -> TrainingSet:
    """For the refusal tests, which only need training to run, not to be good."""
    return training_set(spec, synthetic.generate(MODEL, 1000, seed=11), "synthetic(rows=1000, seed=11)")


@pytest.fixture(scope="session")
def trained(spec: ModelSpec, train_set: TrainingSet) -> TrainedModel:
    return train(spec, train_set, seed=TRAIN_SEED, folds=FOLDS)


@pytest.fixture(scope="session")
def served_registry(tmp_path_factory: pytest.TempPathFactory, trained: TrainedModel) -> Registry:
    """Read-only: one registered champion (v1). Tests that modify files use ``registered``."""
    registry = copy_spec(tmp_path_factory.mktemp("served"))
    registry.register(trained)
    return registry


@pytest.fixture
def empty_registry(tmp_path: Path) -> Registry:
    return copy_spec(tmp_path / "models")


@pytest.fixture
def registered(empty_registry: Registry, trained: TrainedModel) -> Registry:
    empty_registry.register(trained)
    return empty_registry
