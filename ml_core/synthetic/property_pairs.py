"""Synthetic (lead, property) pairs, shared by the three pair models.

Each row is a listing an agency showed a lead, with the lead's stated preferences, as raw
inputs (``preferences.<field>``, ``property.<field>``) that ``ml_core.featurizers.lead_property``
turns into features, exactly as at serving time.

The story. A lead states a budget (log-normal around 450k; 40 % give no minimum, the others a
floor at 50-85 % of the maximum), a minimum number of bedrooms, a point in the city with a radius
of 3 to 25 km, a type (40 % say ``any``) and about one must-have amenity. The agency pre-filters
loosely, so most listings shown sit near the criteria and some miss them: the price scatters
around the budget (log-normal, sd 0.3), bedrooms from one fewer to two more, the distance around
half the radius (log-normal), the asked-for type 55 % of the time, each amenity at 35 % (a
must-have at 60 %). Two hidden traits add what no preference states: the listing's *quality*
(it shows in more photos and fewer days on the market) and the lead's *pickiness*.

- *fit* is a utility: over budget hurts most, then missing bedrooms, missing must-haves, a
  wrong type and distance beyond ~60 % of the radius; a picky lead likes less. ``good_match`` (the
  lead or agent marked the listing as fitting, ~41 %) is logistic in fit.
- ``interested`` (saved or enquired, ~32 %) is logistic in fit, listing quality, extra amenities and
  space per bedroom.
- ``viewing_booked`` (~23 %) needs interest, then is logistic in fit, quality, distance in km
  (travel is a chore whatever the radius) and a price comfortably under budget.

5 % of each label is flipped (CRM mistakes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml_core.featurizers.lead_property import AMENITIES, PROPERTY_TYPES

_CENTRE = (40.4168, -3.7038)
_KM_PER_DEGREE = 111.2


def pairs(n: int, rng: np.random.Generator, target: str) -> pd.DataFrame:
    """Raw pairs with the one ``target`` column (``good_match``, ``interested`` or ``viewing_booked``)."""

    def chance(logit: np.ndarray) -> np.ndarray:
        drawn: np.ndarray = rng.random(n) < 1 / (1 + np.exp(-logit))
        return drawn

    budget_max = np.round(np.exp(np.log(450_000) + 0.5 * rng.standard_normal(n)), -3)
    budget_min = np.where(rng.random(n) < 0.4, 0.0, np.round(budget_max * rng.uniform(0.5, 0.85, n), -3))
    bedrooms_min = rng.choice(5, n, p=[0.05, 0.25, 0.35, 0.25, 0.10])
    lat = _CENTRE[0] + 0.08 * rng.standard_normal(n)
    lon = _CENTRE[1] + 0.08 * rng.standard_normal(n)
    radius = rng.choice([3.0, 5.0, 10.0, 15.0, 25.0], n)
    wanted_type = rng.choice(["any", *PROPERTY_TYPES], n, p=[0.40, 0.30, 0.15, 0.10, 0.05])
    must = rng.random((n, len(AMENITIES))) < 0.12

    price = np.round(budget_max * np.exp(-0.05 + 0.3 * rng.standard_normal(n)), -3)
    bedrooms = np.clip(bedrooms_min + rng.choice([-1, 0, 1, 2], n, p=[0.2, 0.4, 0.3, 0.1]), 0, 20)
    distance = radius * np.exp(np.log(0.5) + 0.7 * rng.standard_normal(n))
    bearing = rng.uniform(0, 2 * np.pi, n)
    p_lat = lat + distance * np.cos(bearing) / _KM_PER_DEGREE
    p_lon = lon + distance * np.sin(bearing) / (_KM_PER_DEGREE * np.cos(np.radians(lat)))
    listed_type = np.where(
        (wanted_type != "any") & (rng.random(n) < 0.55), wanted_type, rng.choice(PROPERTY_TYPES, n, p=[0.5, 0.25, 0.15, 0.10])
    )
    has = np.where(must, rng.random(must.shape) < 0.6, rng.random(must.shape) < 0.35)
    area = np.round((25 + 30 * np.maximum(bedrooms, 1)) * np.exp(0.25 * rng.standard_normal(n)), 1)
    quality = rng.standard_normal(n)
    pickiness = rng.standard_normal(n)

    ratio = price / budget_max
    n_must = must.sum(axis=1)
    coverage = np.where(n_must > 0, (must & has).sum(axis=1) / np.maximum(n_must, 1), 1.0)
    type_match = (wanted_type == "any") | (wanted_type == listed_type)
    fit = (
        1.0
        - 3.5 * np.maximum(ratio - 1, 0)
        - 0.8 * (price < budget_min)
        - 1.0 * np.maximum(bedrooms_min - bedrooms, 0)
        + 0.2 * np.minimum(np.maximum(bedrooms - bedrooms_min, 0), 2)
        - 1.5 * np.maximum(distance / radius - 0.6, 0)
        + 1.0 * type_match
        + 2.0 * (coverage - 1)
        - 0.4 * pickiness
        + 0.5 * rng.standard_normal(n)
    )
    if target == "good_match":
        label = chance(2.0 * fit - 2.0)
    elif target == "interested":
        extra = (has & ~must).sum(axis=1)
        label = chance(-3.0 + 1.6 * fit + 0.8 * quality + 0.2 * extra + 0.01 * (area / np.maximum(bedrooms, 1) - 40))
    elif target == "viewing_booked":
        interested = chance(-3.0 + 1.6 * fit + 0.8 * quality)
        label = interested & chance(0.5 + 1.0 * fit + 0.5 * quality - 0.12 * distance + 0.8 * (ratio < 0.95))
    else:
        raise ValueError(f"unknown pair target {target!r}")
    label = np.where(rng.random(n) < 0.05, ~label, label)

    tags = np.asarray(AMENITIES, dtype=object)
    return pd.DataFrame(
        {
            "id": [f"pair-{i:07d}" for i in range(n)],
            "preferences.budget_min": budget_min,
            "preferences.budget_max": budget_max,
            "preferences.bedrooms_min": bedrooms_min,
            "preferences.latitude": lat,
            "preferences.longitude": lon,
            "preferences.max_distance_km": radius,
            "preferences.property_type": wanted_type,
            "preferences.must_haves": [list(tags[row]) for row in must],
            "property.price": price,
            "property.bedrooms": bedrooms,
            "property.latitude": p_lat,
            "property.longitude": p_lon,
            "property.property_type": listed_type,
            "property.amenities": [list(tags[row]) for row in has],
            "property.area_sqm": area,
            "property.days_on_market": np.minimum(rng.exponential(np.exp(3.3 - 0.5 * quality)), 3650).astype(np.int64),
            "property.photo_count": np.minimum(rng.poisson(np.exp(2.3 + 0.3 * quality)), 500),
            target: label.astype(np.int8),
        }
    )
