"""Tasks only the benchmark needs, loaded into its workers with ``celery worker -I bench.yardstick_tasks``.

They live here, not in ``tasks/``: the floor and the naive baseline are yardsticks, not things
a web service should call. They bind to the same app and run in the same worker, pool and
queue as ``score_lead``, so the difference between them is the work inside the task.
"""

from __future__ import annotations

from typing import Any

import joblib
import numpy as np

from leadscore import app
from leadscore.stores.state import registry as state_registry
from ml_core.registry import NATIVE_FILE


@app.task(name="bench.echo", acks_late=True)
def echo(lead: dict[str, Any]) -> dict[str, Any]:
    """The floor: a task that returns its argument. Same payload as ``score_lead``, no work."""
    return lead


@app.task(name="bench.naive_score", acks_late=True)
def naive_score(lead: dict[str, Any], model: str = "lead_scorer") -> dict[str, Any]:
    """What a user might write first: unpickle the sklearn model on every call, then predict."""
    registry = state_registry()
    version = registry.champion(model)
    estimator = joblib.load(registry.root / model / version / NATIVE_FILE)
    spec = registry.spec(model)
    row = np.asarray([[float(lead[name]) for name in spec.feature_names]], dtype=np.float32)
    probability = float(estimator.predict_proba(row)[0, 1])
    return {"lead_id": lead["id"], "score": round(100 * probability, 2), "probability": round(probability, 6)}
