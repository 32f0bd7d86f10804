"""Synthetic lead *conversations* for ``lead_scorer``: the context form of ``lead_scorer.py``.

The same story: hidden *intent* and *capacity* (rho = 0.3), conversion a logistic function of
both plus urgency that only counts for a lead who can pay, 5 % of labels flipped. Here the traits
write a thread instead of ten numbers: serious leads answer the agent faster, write more and ask
more questions, name a budget, a date and a street; capacity shows in financing, work and past
ownership. Some say the opposite in a negated form ("not pre-approved yet", "no rush"), some
carry the CRM's structured fields instead of saying it. The features are then *derived* by
``ml_core.context``, so a model trained here learns from exactly what serving derives.

As a JSON-lines training table (what ``leadscore train lead_scorer --data FILE.jsonl`` reads)::

    python -m ml_core.synthetic.lead_conversations conversations.jsonl --rows 5000
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from ml_core.context import derive_features
from ml_core.errors import DatasetError
from ml_core.spec import ModelSpec

_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_URGENT = ["We need to move asap.", "Our lease ends this month, so it's urgent.", "We have to move in two weeks."]
_SOON = ["Hoping to move in the next few months.", "We'd like to be in by this summer."]
_LATER = ["Probably sometime next year.", "Maybe in six months or so."]
_SOMEDAY = ["No rush, we're just browsing.", "Just looking for now, no timeline."]
_PLACE = [
    ["We love 14 Elm Street, anything on that street?", "Is 220 Harbor Road still available?"],
    ["We want the Lincoln school district.", "Something downtown, walking distance to the park."],
    ["Somewhere in the suburbs.", "The north side of town would work."],
    ["Anywhere really.", "We're open to any area."],
]
_QUESTIONS = ["Is parking included?", "How old is the roof?", "What are the HOA fees?", "Can we see it this weekend?",
              "Are pets allowed?", "How are the schools?", "Is the basement finished?", "When was it last renovated?"]
_FILLER = ["Thanks for getting back to me.", "That sounds interesting.", "We liked the photos.",
           "My commute matters a lot to me.", "Great, thank you."]
_AGENT = ["Hi! What are you looking for?", "Here are a few listings that match.", "Would you like to book a viewing?",
          "Just checking in.", "I can send more options.", "Do you have any questions?"]


def conversations(n: int, seed: int = 42) -> tuple[list[dict[str, Any]], np.ndarray]:
    """``n`` leads ``{"id", "context"}`` and their conversion labels (0/1)."""
    rng = np.random.default_rng(seed)
    intent = rng.standard_normal(n)
    capacity = 0.3 * intent + np.sqrt(1 - 0.3**2) * rng.standard_normal(n)
    urgency = 1 / (1 + np.exp(-(0.9 * intent + 0.6 * rng.standard_normal(n))))
    leads = [_lead(i, float(intent[i]), float(capacity[i]), float(urgency[i]), rng) for i in range(n)]
    logit = -2.3 + 1.1 * intent + 0.6 * capacity + 1.2 * (urgency - 0.5) * (capacity > -0.5)
    converted = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    flip = rng.random(n) < 0.05
    return leads, np.where(flip, 1 - converted, converted)


def training_frame(spec: ModelSpec, n: int, seed: int = 42) -> pd.DataFrame:
    """The derived features of ``n`` synthetic conversations, with ``id`` and the target."""
    leads, converted = conversations(n, seed)
    rows = []
    for lead in leads:
        features, problems = derive_features(spec, lead["context"])
        if features is None:  # the generator writes valid contexts; a failure here is a bug to see
            raise DatasetError(spec.name, f"synthetic conversation {lead['id']} is invalid: {problems}")
        rows.append({"id": lead["id"], **features})
    frame = pd.DataFrame(rows)
    frame[spec.target] = converted
    return frame


def training_lines(n: int, seed: int = 42, target: str = "converted") -> Iterator[bytes]:
    """``n`` conversations as JSON-lines training rows: ``{"id", "context", target: 0 | 1}``."""
    leads, converted = conversations(n, seed)
    for lead, label in zip(leads, converted):
        yield orjson.dumps({**lead, target: int(label)}) + b"\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write synthetic lead conversations with their labels as JSON lines.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    with open(args.out, "wb") as f:
        f.writelines(training_lines(args.rows, args.seed))


def _lead(i: int, intent: float, capacity: float, urgency: float, rng: np.random.Generator) -> dict[str, Any]:
    def chance(logit: float) -> bool:
        return bool(rng.random() < 1 / (1 + np.exp(-logit)))

    said: list[str] = []
    context: dict[str, Any] = {}
    if chance(-0.4 + 0.9 * intent):
        if rng.random() < 0.3:
            low = int(rng.integers(200, 600)) * 1000
            context["budget"] = {"min": low, "max": low + 100_000}
        else:
            said.append(f"Our budget is around ${int(rng.integers(200, 900))}k.")
    said.append(rng.choice(_URGENT if urgency > 0.75 else _SOON if urgency > 0.5 else _LATER if urgency > 0.3 else _SOMEDAY))
    place = 1 / (1 + np.exp(-(0.7 * intent + 0.8 * rng.standard_normal())))
    said.append(rng.choice(_PLACE[0 if place > 0.75 else 1 if place > 0.5 else 2 if place > 0.3 else 3]))
    if chance(-0.9 + 0.5 * intent + 0.8 * capacity):
        said.append(rng.choice(["We're pre-approved for a mortgage.", "We'd be paying cash.", "Our lender is ready."]))
    elif rng.random() < 0.4:
        said.append(rng.choice(["We're not pre-approved yet.", "Haven't talked to a lender yet."]))
    if rng.random() < 0.35:
        if rng.random() < 0.3:
            context["household_size"] = int(rng.integers(1, 6))
        else:
            said.append(rng.choice(["It's me, my wife and our two kids.", "Just the two of us.", "We have no kids."]))
    stability = 1 / (1 + np.exp(-(1.0 * capacity + 0.7 * rng.standard_normal())))
    if rng.random() < 0.3:
        status = "employed" if stability > 0.4 else "contract" if stability > 0.25 else "unemployed"
        context["employment"] = {"status": status, "years_in_role": round(float(10 * stability), 1)}
    elif stability > 0.7:
        said.append("I have a permanent position, ten years at the same employer.")
    elif stability < 0.3:
        said.append(rng.choice(["I was laid off recently.", "My contract ends soon."]))
    if chance(-1.0 + 0.6 * capacity):
        if rng.random() < 0.3:
            context["previous_transactions"] = int(rng.integers(1, 4))
        else:
            said.append(rng.choice(["We sold our condo last year.", "We own our current home."]))
    elif rng.random() < 0.3:
        said.append("We have never owned a home.")
    n_questions = min(int(rng.poisson(np.exp(0.6 + 0.45 * intent))), len(_QUESTIONS))
    said += list(rng.choice(_QUESTIONS, size=n_questions, replace=False))
    said += list(rng.choice(_FILLER, size=int(rng.integers(0, 3 + max(0, int(2 * intent))))))
    context["messages"] = _thread(said, intent, rng)
    return {"id": f"conv-{i:07d}", "context": context}


def _thread(said: list[str], intent: float, rng: np.random.Generator) -> list[dict[str, Any]]:
    """The lead's sentences over a few turns, each answering an agent message after a delay."""
    turns = max(1, min(len(said), int(rng.integers(1, 4)) + max(0, int(intent + 1))))
    order = rng.permutation(len(said))
    at = _START + timedelta(days=int(rng.integers(0, 300)), minutes=int(rng.integers(0, 600)))
    messages = []
    for part in np.array_split(order, turns):
        messages.append({"from": "agent", "at": at.isoformat(timespec="seconds"), "text": str(rng.choice(_AGENT))})
        delay_hours = float(np.clip(np.exp(2.0 - 0.7 * intent + 0.8 * rng.standard_normal()), 0.02, 400))
        at += timedelta(hours=delay_hours)
        messages.append({"from": "lead", "at": at.isoformat(timespec="seconds"), "text": " ".join(str(said[k]) for k in part)})
        at += timedelta(hours=float(rng.uniform(0.5, 30)))
    if rng.random() < 0.15 - 0.1 * np.tanh(intent):  # the agent's last message left unanswered
        messages.append({"from": "agent", "at": at.isoformat(timespec="seconds"), "text": str(rng.choice(_AGENT))})
    return messages


if __name__ == "__main__":
    main()
