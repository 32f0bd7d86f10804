"""Small builders of leads with preferences and of property listings for unit tests."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ml_core.pool import ModelPool, Served
from tests.stores import registry_at

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"
PAIR_MODELS = ("property_matcher", "property_interest_predictor", "viewing_probability_predictor")
CENTRE = (40.4168, -3.7038)


def preferences(**overrides: Any) -> dict[str, Any]:
    return {
        "budget_min": 300_000,
        "budget_max": 500_000,
        "bedrooms_min": 2,
        "latitude": CENTRE[0],
        "longitude": CENTRE[1],
        "max_distance_km": 10,
        "property_type": "apartment",
        "must_haves": ["parking"],
        **overrides,
    }


def listing(property_id: str, **overrides: Any) -> dict[str, Any]:
    """A listing that fits ``preferences()`` well unless overridden."""
    return {
        "id": property_id,
        "price": 450_000,
        "bedrooms": 2,
        "latitude": CENTRE[0] + 0.01,
        "longitude": CENTRE[1],
        "property_type": "apartment",
        "amenities": ["parking", "balcony"],
        "area_sqm": 85,
        "days_on_market": 10,
        "photo_count": 15,
        **overrides,
    }


def rules_served(tmp_path: Path, names: tuple[str, ...] = PAIR_MODELS) -> list[Served]:
    """The models as served with no trained version: by their specs' rules, deterministic."""
    for name in names:
        (tmp_path / name).mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_MODELS / name / "spec.toml", tmp_path / name / "spec.toml")
    pool = ModelPool(registry_at(tmp_path))
    return [pool.get(name) for name in names]
