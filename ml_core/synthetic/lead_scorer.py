"""Synthetic leads for ``lead_scorer``.

The story: each lead has two hidden traits, *intent* (how seriously they want to move, standard
normal) and *capacity* (whether they can afford to, standard normal, mildly correlated with
intent, rho = 0.3). Everything the agent can observe is a noisy symptom of those traits:

- serious leads answer fast (``response_time_hours`` is log-normal, its median falls from ~20 h
  to ~2 h as intent rises), write longer messages and ask more questions (Poisson);
- they name a price range, a timeline and a precise location more often;
- capacity shows in job stability, financing talk and previous ownership;
- family size is mentioned at a constant 35 % and carries no signal (a distractor).

Conversion is a logistic function of both traits plus urgency interacting with capacity (an
urgent lead who cannot pay does not buy). 5 % of labels are then flipped (CRM entry mistakes),
which caps any model's AUC below 1. About 18 % of leads convert.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def generate(n: int, rng: np.random.Generator) -> pd.DataFrame:
    intent = rng.standard_normal(n)
    capacity = 0.3 * intent + np.sqrt(1 - 0.3**2) * rng.standard_normal(n)

    def chance(logit: np.ndarray) -> np.ndarray:
        drawn: np.ndarray = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
        return drawn

    urgency = 1 / (1 + np.exp(-(0.9 * intent + 0.6 * rng.standard_normal(n))))
    frame = pd.DataFrame(
        {
            "id": [f"lead-{i:07d}" for i in range(n)],
            "response_time_hours": np.clip(np.exp(2.0 - 0.7 * intent + 0.8 * rng.standard_normal(n)), 0, 2160),
            "message_length_avg": np.clip(np.exp(4.5 + 0.35 * intent + 0.5 * rng.standard_normal(n)), 0, 20000),
            "questions_asked": rng.poisson(np.exp(0.6 + 0.45 * intent)),
            "price_range_mentioned": chance(-0.4 + 0.9 * intent),
            "timeline_urgency": urgency,
            "location_specificity": 1 / (1 + np.exp(-(0.7 * intent + 0.8 * rng.standard_normal(n)))),
            "financing_mentioned": chance(-0.9 + 0.5 * intent + 0.8 * capacity),
            "family_size_mentioned": chance(np.full(n, np.log(0.35 / 0.65))),
            "job_stability_score": 1 / (1 + np.exp(-(1.0 * capacity + 0.7 * rng.standard_normal(n)))),
            "previous_real_estate_experience": chance(-1.0 + 0.6 * capacity),
        }
    )
    logit = -2.3 + 1.1 * intent + 0.6 * capacity + 1.2 * (urgency - 0.5) * (capacity > -0.5)
    converted = chance(logit)
    flip = rng.random(n) < 0.05
    frame["converted"] = np.where(flip, 1 - converted, converted)
    return frame
