"""A small CRM-like table with blanks in numeric, integer, boolean and categorical columns,
shared by the unit and integration tests of blanks and ``spec init``."""

from __future__ import annotations

import numpy as np
import pandas as pd


def blank_table(rows: int = 1500, seed: int = 3, blank_share: float = 0.15) -> pd.DataFrame:
    """Columns: ``income`` (numeric), ``visits`` (integer), ``mortgage`` (yes/no text), ``channel``
    (categorical), ``age`` (integer, never blank), ``lead_id`` and the 0/1 target ``won``.

    The label depends on the values and on blanks themselves (an unstated income lowers the odds),
    as in real exports where blanks are rarely random."""
    rng = np.random.default_rng(seed)
    income = rng.gamma(4.0, 15_000.0, rows).round(2)
    visits = rng.poisson(3, rows)
    mortgage = rng.random(rows) < 0.4
    channel = rng.choice(["referral", "ads", "walk_in"], rows, p=[0.3, 0.5, 0.2])
    age = rng.integers(20, 75, rows)
    blank = {c: rng.random(rows) < blank_share for c in ("income", "visits", "mortgage", "channel")}
    logit = (
        -2.5 + 0.00002 * income + 0.35 * visits + 1.0 * mortgage + 1.2 * (channel == "referral")
        - 1.5 * blank["income"] - 0.01 * (age - 45)
    )
    won = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({
        "lead_id": [f"L{i}" for i in range(rows)],
        "income": np.where(blank["income"], np.nan, income),
        "visits": pd.array(np.where(blank["visits"], 0, visits), dtype="Int64"),
        "mortgage": np.where(mortgage, "yes", "no").astype(object),
        "channel": channel.astype(object),
        "age": age,
        "won": won,
    })
    frame.loc[blank["visits"], "visits"] = pd.NA
    frame.loc[blank["mortgage"], "mortgage"] = None
    frame.loc[blank["channel"], "channel"] = None
    return frame


BLANK_MODEL = "crm_blanks"
BLANK_SPEC_TOML = """\
# Hand-written twin of what `spec init` infers from blank_table(); no [fallback]: rules are derived.
description = "A CRM export with blanks"
target = "won"
quality_gate = 0.6

[bands]
hot = 60
warm = 30

[[features]]
name = "income"
kind = "numeric"
min = 0
max = 500000
missing = "allowed"

[[features]]
name = "visits"
kind = "integer"
min = 0
max = 40
missing = "allowed"

[[features]]
name = "mortgage"
kind = "boolean"
missing = "allowed"

[[features]]
name = "channel"
kind = "categorical"
categories = ["ads", "referral", "walk_in"]
missing = "allowed"
unseen = "other"

[[features]]
name = "age"
kind = "integer"
min = 18
max = 100
"""


def blank_lead(lead_id: str = "b-1", **overrides: object) -> dict[str, object]:
    """A lead with every optional feature left out: only the required ``age``."""
    return {"id": lead_id, "age": 40, **overrides}
