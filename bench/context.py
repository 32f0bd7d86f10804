"""What every bench section gets: mode, client app, workers, the served model and lead data."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery

from bench.workers import WorkerPool
from leadscore.settings import Settings
from ml_core.errors import ModelNotFoundError
from ml_core.registry import Registry
from ml_core.spec import ModelSpec, available_models
from ml_core.synthetic import generate

MODEL = "lead_scorer"
BENCH_QUEUES = {"scoring_queue": "leadscore-bench-scoring", "batch_queue": "leadscore-bench-batch", "deep_queue": "leadscore-bench-deep"}


@dataclass
class BenchContext:
    quick: bool
    settings: Settings
    env: dict[str, str]
    app: Celery
    workers: WorkerPool
    registry: Registry
    run_dir: Path
    notes: list[str] = field(default_factory=list)
    _leads: dict[tuple[int, int], list[dict[str, Any]]] = field(default_factory=dict)

    def size(self, quick: int, full: int) -> int:
        return quick if self.quick else full

    @property
    def spec(self) -> ModelSpec:
        return self.registry.spec(MODEL)

    @property
    def version(self) -> str:
        return self.registry.champion(MODEL)

    def served_models(self) -> list[str]:
        return served_models(self.registry)

    def leads(self, n: int, seed: int = 1) -> list[dict[str, Any]]:
        """``n`` synthetic leads as JSON objects (kept: sections share them)."""
        if (n, seed) not in self._leads:
            self._leads[(n, seed)] = generate(MODEL, n, seed).drop(columns="converted").to_dict("records")
        return self._leads[(n, seed)]

    def send(self, task: str, *args: Any, queue: str | None = None) -> Any:
        return self.app.send_task(task, args=list(args), queue=queue or self.settings.scoring_queue)


def served_models(registry: Registry) -> list[str]:
    """Models with a registered champion: the ones workers serve with a trained model."""
    served = []
    for name in available_models(registry.root):
        try:
            registry.champion(name)
        except ModelNotFoundError:
            continue
        served.append(name)
    return served


def worker_env(base: dict[str, str], settings: Settings, warm: list[str]) -> dict[str, str]:
    """The environment the bench workers run with: the bench queues and every model warmed."""
    env = dict(base)
    env.update({
        "LEADSCORE_SCORING_QUEUE": settings.scoring_queue,
        "LEADSCORE_BATCH_QUEUE": settings.batch_queue,
        "LEADSCORE_DEEP_QUEUE": settings.deep_queue,  # escalations from bench leads stay out of the real deep queue
        "LEADSCORE_MODELS_DIR": str(settings.models_dir),
        "LEADSCORE_DATABASE_URL": settings.state_url,
        "LEADSCORE_WARM_MODELS": json.dumps(warm),
        "LEADSCORE_RUN_DIR": str(settings.run_dir),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    })
    return env
