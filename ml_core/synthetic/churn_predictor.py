"""Synthetic engagement histories for ``churn_predictor``.

The story: each engaged lead has two hidden traits, *momentum* (how engaged they are now,
standard normal) and *drift* (whether that engagement is rising or cooling, standard normal).
What the CRM records are noisy symptoms of both:

- recency: ``days_since_last_activity`` is exponential, its mean falling as
  momentum rises (from ~30 days two standard deviations below the mean to ~1 day above);
- frequency: messages, listing views (last 30 days) and viewings (last 90 days) are Poisson, more
  with momentum, and messages also with drift;
- trend: ``engagement_trend`` (this month's activity against last month's, -1 to 1) is drift plus
  noise; cooling leads also answer more slowly, open fewer emails and leave more agent messages
  unanswered;
- the agency's own ``agent_response_time_hours`` is independent of the lead, but a slow agency
  loses leads: it raises churn on its own;
- ``days_since_first_contact`` (tenure) carries a weak signal: long-running searches tire.

Churn (silent for 60 days, or said they stopped looking) is a logistic function of low momentum,
cooling drift, slow agency replies and tenure, lowered by a booked viewing. 5 % of labels are
flipped (CRM mistakes). About 27 % of leads churn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def generate(n: int, rng: np.random.Generator) -> pd.DataFrame:
    momentum = rng.standard_normal(n)
    drift = rng.standard_normal(n)

    def noise() -> np.ndarray:
        return rng.standard_normal(n)

    agent_hours = np.clip(np.exp(1.0 + 0.8 * noise()), 0, 720)
    tenure = np.clip(rng.gamma(2.0, 40.0, n), 0, 3650)
    viewings = rng.poisson(np.exp(-0.8 + 0.6 * momentum))
    frame = pd.DataFrame(
        {
            "id": [f"lead-{i:07d}" for i in range(n)],
            "days_since_last_activity": np.clip(rng.exponential(np.exp(1.8 - 0.8 * momentum - 0.3 * drift)), 0, np.minimum(tenure, 3650)),
            "days_since_first_contact": tenure,
            "messages_last_30d": rng.poisson(np.exp(1.6 + 0.6 * momentum + 0.3 * drift)),
            "listing_views_last_30d": rng.poisson(np.exp(2.0 + 0.5 * momentum)),
            "viewings_last_90d": viewings,
            "engagement_trend": np.tanh(0.9 * drift + 0.4 * noise()),
            "response_time_hours": np.clip(np.exp(2.0 - 0.5 * momentum - 0.3 * drift + 0.8 * noise()), 0, 2160),
            "email_open_rate": 1 / (1 + np.exp(-(-0.3 + 0.7 * momentum + 0.6 * noise()))),
            "agent_response_time_hours": agent_hours,
            "unanswered_agent_messages": rng.poisson(np.exp(-0.6 - 0.7 * momentum - 0.5 * drift)),
        }
    )
    logit = -2.3 - 1.3 * momentum - 1.1 * drift + 0.4 * np.log1p(agent_hours) + 0.003 * tenure - 0.5 * (viewings > 0)
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    flip = rng.random(n) < 0.05
    frame["churned"] = np.where(flip, 1 - churned, churned)
    return frame
