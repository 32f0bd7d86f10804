"""What the model benches share: trained models, a real scoring worker, sample requests, timings.

Run from the checkout with the venv's Python. The broker is the one the settings name
(``LEADSCORE_BROKER_URL``, ``LEADSCORE_RESULT_BACKEND``): point them at a Redis you own.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from leadscore.settings import get_settings
from leadscore.stores.state import registry as state_registry
from leadscore.stores.state import state_store, store_at
from ml_core.errors import ModelNotFoundError
from ml_core.lifecycle import train_and_register
from ml_core.registry import Registry
from ml_core.spec import available_models
from ml_core.store.state import StateStore, embedded_url
from ml_core.synthetic import generate


@contextmanager
def trained_models(rows: int = 20_000) -> Iterator[Path]:
    """The configured models directory when every spec has a champion; else a temporary one, trained
    now, with its own state store inside it (``store_of``)."""
    configured = Path(get_settings().models_dir)
    names = available_models(configured)
    try:
        for name in names:
            state_registry().champion(name)
        yield configured
        return
    except ModelNotFoundError:
        pass
    with tempfile.TemporaryDirectory(prefix="leadscore-bench-") as tmp:
        root = Path(tmp)
        for name in names:
            (root / name).mkdir()
            shutil.copy(configured / name / "spec.toml", root / name / "spec.toml")
            train_and_register(Registry(root, store_of(root)), name, rows=rows)
        yield root


@contextmanager
def scoring_worker(models_dir: Path, log_path: Path) -> Iterator[None]:
    """A prefork worker (two children, as the stack's scoring worker) serving ``models_dir``, up when a ping round-trips."""
    from tests.integration.workers import running_worker, worker_env

    settings = get_settings()
    env = worker_env(models_dir=str(models_dir), database_url=store_of(models_dir).url, broker_url=settings.broker_url,
                     result_backend=settings.result_backend)
    with running_worker(env, log_path, queues=settings.scoring_queue, concurrency=2):
        yield


def store_of(models_dir: Path) -> StateStore:
    """The configured store for the configured models directory; a scratch directory's own otherwise."""
    if Path(models_dir) == Path(get_settings().models_dir):
        return state_store()
    return store_at(embedded_url(models_dir))


def properties(n: int, seed: int = 11) -> list[dict[str, Any]]:
    raw = generate("property_matcher", n, seed)
    listed = raw[[c for c in raw.columns if c.startswith("property.")]].rename(columns=lambda c: c.split(".", 1)[1])
    return [{"id": f"prop-{i}", **row} for i, row in enumerate(listed.to_dict("records"))]


def profile_lead(lead_id: str = "bench-lead") -> dict[str, Any]:
    """A CRM lead with every model's fields: behaviour, engagement and preferences."""
    behaviour = generate("lead_scorer", 1, 3).drop(columns=["id", "converted"]).to_dict("records")[0]
    engagement = generate("churn_predictor", 1, 3).drop(columns=["id", "churned"]).to_dict("records")[0]
    raw = generate("property_matcher", 1, 3).to_dict("records")[0]  # records hold JSON-able Python values
    preferences = {c.split(".", 1)[1]: v for c, v in raw.items() if c.startswith("preferences.")}
    return {"id": lead_id, **behaviour, **engagement, "preferences": preferences}


def timings_ms(call: Callable[[], object], repeats: int, warmup: int = 2) -> np.ndarray:
    return interleaved_timings_ms({"call": call}, repeats, warmup)["call"]


def interleaved_timings_ms(calls: dict[str, Callable[[], object]], repeats: int, warmup: int = 2) -> dict[str, np.ndarray]:
    """Milliseconds per call of each way, taking turns, so a shared machine's drift hits all alike."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    out = {name: np.empty(repeats) for name in calls}
    for i in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            out[name][i] = (time.perf_counter() - started) * 1000.0
    return out


def p(values: np.ndarray, q: float) -> str:
    return f"{np.percentile(values, q):.2f}"


def machine() -> str:
    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, ONNX Runtime {onnxruntime.__version__}, "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
