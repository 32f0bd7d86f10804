"""Features of a (lead, property) pair: how a listing fits what the lead asked for.

Inputs, validated like lead features (``ml_core.features``):

- ``preferences`` (one per lead, ``lead["preferences"]``): budget range, minimum bedrooms, a
  location as a geocoded point and a radius, a property type (or ``any``) and must-have amenities;
- ``property`` (one per listing): price, bedrooms, location, type, amenities, floor area, days on
  the market and photo count.

Every derived feature is bounded (clipped), so it always fits the specs' declared ranges:

==================== ==========================================================================
price_to_budget      price / budget_max, in [0, 5]
over_budget          how far above budget_max, as a fraction of it: max(0, price/budget_max - 1), [0, 4]
within_budget        budget_min <= price <= budget_max
bedroom_shortfall    bedrooms the listing lacks: max(0, bedrooms_min - bedrooms)
bedroom_surplus      bedrooms beyond the minimum: max(0, bedrooms - bedrooms_min)
distance_km          great-circle distance between the listing and the lead's point
distance_to_radius   distance_km / max_distance_km, in [0, 100]: above 1 is outside the radius
type_match           the listing's type is the one asked for (always, for ``any``)
must_have_coverage   share of the must-haves the listing has (1 when none were asked for)
missing_must_haves   must-haves the listing lacks
extra_amenities      amenities the listing has beyond the must-haves
area_per_bedroom     floor area per bedroom (a studio counts as one), m2
days_on_market       passed through from the listing
photo_count          passed through from the listing
==================== ==========================================================================

Location is a point and a radius rather than area names: distances need no gazetteer and work
across any agency's map.
"""

from __future__ import annotations

import numpy as np

from ml_core.featurizers import Inputs, Problem
from ml_core.spec import parse_schema

AMENITIES = ["parking", "garden", "balcony", "elevator", "pool", "pets_allowed", "air_conditioning", "storage"]
PROPERTY_TYPES = ["apartment", "house", "townhouse", "studio"]
MAX_PRICE = 1e9
_EARTH_RADIUS_KM = 6371.0

INPUTS = {
    "preferences": parse_schema(
        "preferences",
        [
            {"name": "budget_min", "kind": "numeric", "min": 0, "max": MAX_PRICE, "default": 0},
            {"name": "budget_max", "kind": "numeric", "min": 1, "max": MAX_PRICE},
            {"name": "bedrooms_min", "kind": "integer", "min": 0, "max": 20, "default": 0},
            {"name": "latitude", "kind": "numeric", "min": -90, "max": 90},
            {"name": "longitude", "kind": "numeric", "min": -180, "max": 180},
            {"name": "max_distance_km", "kind": "numeric", "min": 0.1, "max": 500, "default": 10},
            {"name": "property_type", "kind": "categorical", "categories": ["any", *PROPERTY_TYPES], "default": "any"},
            {"name": "must_haves", "kind": "tags", "categories": AMENITIES, "default": []},
        ],
    ),
    "property": parse_schema(
        "property",
        [
            {"name": "price", "kind": "numeric", "min": 1, "max": MAX_PRICE},
            {"name": "bedrooms", "kind": "integer", "min": 0, "max": 20},
            {"name": "latitude", "kind": "numeric", "min": -90, "max": 90},
            {"name": "longitude", "kind": "numeric", "min": -180, "max": 180},
            {"name": "property_type", "kind": "categorical", "categories": PROPERTY_TYPES},
            {"name": "amenities", "kind": "tags", "categories": AMENITIES, "default": []},
            {"name": "area_sqm", "kind": "numeric", "min": 5, "max": 100000},
            {"name": "days_on_market", "kind": "integer", "min": 0, "max": 3650, "default": 0},
            {"name": "photo_count", "kind": "integer", "min": 0, "max": 500, "default": 0},
        ],
    ),
}


def check(inputs: Inputs) -> list[Problem]:
    prefs = inputs["preferences"]
    return [Problem("preferences", "budget_min", "greater than budget_max", prefs["budget_min"] > prefs["budget_max"])]


def derive(inputs: Inputs) -> dict[str, np.ndarray]:
    prefs, prop = inputs["preferences"], inputs["property"]
    # Arithmetic in float64: the encoded inputs are float32, and ratios of large prices lose digits there.
    price = prop["price"].astype(np.float64)
    budget_min, budget_max = prefs["budget_min"].astype(np.float64), prefs["budget_max"].astype(np.float64)
    ratio = price / budget_max
    shortfall = prefs["bedrooms_min"] - prop["bedrooms"]
    distance = _haversine_km(prefs["latitude"], prefs["longitude"], prop["latitude"], prop["longitude"])
    wanted, has = prefs["must_haves"], prop["amenities"]
    n_wanted = wanted.sum(axis=1)
    n_covered = (wanted * has).sum(axis=1)
    type_match = prefs["property_type"][:, 0] + (prefs["property_type"][:, 1:] * prop["property_type"]).sum(axis=1)
    return {
        "price_to_budget": np.clip(ratio, 0.0, 5.0),
        "over_budget": np.clip(ratio - 1.0, 0.0, 4.0),
        "within_budget": ((price >= budget_min) & (price <= budget_max)).astype(np.float64),
        "bedroom_shortfall": np.clip(shortfall, 0, 20),
        "bedroom_surplus": np.clip(-shortfall, 0, 20),
        "distance_km": np.clip(distance, 0.0, 20040.0),
        "distance_to_radius": np.clip(distance / prefs["max_distance_km"], 0.0, 100.0),
        "type_match": np.minimum(type_match, 1.0),
        "must_have_coverage": np.where(n_wanted > 0, n_covered / np.maximum(n_wanted, 1), 1.0),
        "missing_must_haves": n_wanted - n_covered,
        "extra_amenities": (has * (1.0 - wanted)).sum(axis=1),
        "area_per_bedroom": prop["area_sqm"] / np.maximum(prop["bedrooms"], 1),
        "days_on_market": prop["days_on_market"],
        "photo_count": prop["photo_count"],
    }


def _haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(a, dtype=np.float64)) for a in (lat1, lon1, lat2, lon2))
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    km: np.ndarray = 2 * _EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return km
