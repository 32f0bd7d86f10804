"""Plain helpers shared by the unit tests (fixtures live in conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ml_core.registry import Registry
from tests.stores import registry_at

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"
SPEC_FILE = REPO_MODELS / "lead_scorer" / "spec.toml"
MODEL = "lead_scorer"
TRAIN_ROWS = 3000
TRAIN_SEED = 7
FOLDS = 3


def copy_spec(root: Path) -> Registry:
    """A registry at ``root`` holding only the committed lead_scorer spec."""
    (root / MODEL).mkdir(parents=True, exist_ok=True)
    shutil.copy(SPEC_FILE, root / MODEL / "spec.toml")
    return registry_at(root)



def valid_lead(lead_id: Any = "lead-1", **overrides: Any) -> dict[str, Any]:
    """A lead_scorer lead in which every value is exactly representable in float32."""
    lead = {
        "id": lead_id,
        "response_time_hours": 1.5,
        "message_length_avg": 120.0,
        "questions_asked": 3,
        "price_range_mentioned": True,
        "timeline_urgency": 0.25,
        "location_specificity": 0.5,
        "financing_mentioned": False,
        "family_size_mentioned": 1,
        "job_stability_score": 0.75,
        "previous_real_estate_experience": 0,
    }
    lead.update(overrides)
    return lead


def categorical_spec_data() -> dict[str, Any]:
    return {
        "target": "won",
        "quality_gate": 0.5,
        "bands": {"hot": 70, "warm": 40},
        "fallback": {"intercept": -1.0, "weights": {"budget": 0.01, "channel": {"referral": 1.5, "ads": -0.5}}},
        "features": [
            {"name": "budget", "kind": "numeric", "min": 0, "max": 1000},
            {"name": "channel", "kind": "categorical", "categories": ["ads", "referral", "walk_in"]},
            {"name": "region", "kind": "categorical", "categories": ["north", "south"], "default": "north"},
            {"name": "visits", "kind": "integer", "min": 0, "max": 50, "default": 1},
            {"name": "has_agent", "kind": "boolean", "default": False},
        ],
    }
