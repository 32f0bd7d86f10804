"""This process's state store (``ml_core.store``) and the registry over it, from the settings.

One ``StateStore`` per URL and process (it opens its engine on first use, and again after a fork),
so every task and the pool of a worker child share one connection pool.
"""

from __future__ import annotations

from functools import cache

from leadscore.settings import Settings, get_settings
from ml_core.registry import Registry
from ml_core.store.state import StateStore


@cache
def store_at(url: str) -> StateStore:
    return StateStore(url)


def state_store(settings: Settings | None = None) -> StateStore:
    return store_at((settings or get_settings()).state_url)


def registry(settings: Settings | None = None) -> Registry:
    """The models directory (specs, this host's artifact cache) over the state store."""
    settings = settings or get_settings()
    return Registry(settings.models_dir, state_store(settings))
