"""Train a model from its spec and register it: the one path the CLI and the training task share."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from ml_core import rollout, synthetic
from ml_core.dataset import read_training_table, training_set
from ml_core.featurizers import featurize_table
from ml_core.parity import PARITY_TOLERANCE
from ml_core.registry import Registry
from ml_core.retrain import version_files
from ml_core.training import DEFAULT_TIME_BUDGET, Progress, train


def train_and_register(
    registry: Registry,
    name: str,
    *,
    data: Path | None = None,
    rows: int = 20_000,
    seed: int = 42,
    folds: int = 5,
    repeats: int | None = None,
    holdout: float = 0.0,
    time_budget: float = DEFAULT_TIME_BUDGET,
    families: Collection[str] | None = None,
    parity_tolerance: float = PARITY_TOLERANCE,
    champion: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fit, gate and register ``name``; return its card. Synthetic data unless ``data`` names a table.

    A featurized model's table may hold raw inputs; they are derived into features here, by the
    same code that derives them at serving time. Registered as champion, the version is recorded as
    promoted in the model's history, so ``rollback`` can return to the champion it replaced.
    """
    spec = registry.spec(name)
    if data is None:
        frame, source = synthetic.generate(name, rows, seed), f"synthetic(rows={rows}, seed={seed})"
    else:
        frame, source = read_training_table(spec, Path(data))
    trained = train(spec, training_set(spec, featurize_table(spec, frame), source), seed=seed, folds=folds, repeats=repeats,
                    holdout=holdout, time_budget=time_budget, families=families, parity_tolerance=parity_tolerance, progress=progress)
    # the drift profile and report beside the version (ml_core.retrain); no optimization here:
    # first versions serve the full model, retraining is where cheaper artifacts are tried
    headline = {"family": trained.family, "data": source, **trained.metrics, "selection": trained.selection}
    files, extra = version_files(trained, None, headline, None)
    previous = rollout.champion_or_none(registry, name) if champion else None
    version = registry.register(trained, champion=champion, extra_files=files, card_extra=extra)
    if champion:
        rollout.record(registry, name, "promoted", version=version, previous=previous, mode="leadscore train")
    return registry.card(name, version)

