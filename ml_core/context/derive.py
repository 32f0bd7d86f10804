"""The ten lead_scorer features from a checked conversation, each by one rule (README,
"Scoring from a conversation"). Text signals read only the lead's own messages."""

from __future__ import annotations

import re
import statistics
from datetime import UTC, datetime
from typing import Any

from ml_core.context.parse import Conversation
from ml_core.context.phrases import Matches, Phrases

UNANSWERED_HOURS = 168.0
"""Reply delay of a thread whose agent messages the lead never answered: a week."""
NO_EXCHANGE_HOURS = 24.0
"""Reply delay of a thread with no agent message to answer yet: a day, neither fast nor slow."""
MAX_HOURS = 2160.0
FULL_URGENCY_DAYS, NO_URGENCY_DAYS, FAR_URGENCY = 30, 365, 0.05
_QUESTIONS = re.compile(r"\?+")

RULES = {
    "response_time_hours": "median hours from an agent message to the lead's next reply",
    "message_length_avg": "mean characters per lead message",
    "questions_asked": "question marks in the lead's messages",
    "price_range_mentioned": "a budget given or a price phrase not negated",
    "timeline_urgency": "the CRM timeline, else the lead's last statement about timing",
    "location_specificity": "the most precise place the lead named",
    "financing_mentioned": "a financing phrase not negated",
    "family_size_mentioned": "a household size given or a household phrase",
    "job_stability_score": "the CRM employment status, else the lead's last statement about work, plus years in role",
    "previous_real_estate_experience": "previous transactions given, else an ownership phrase not negated",
}
"""Each feature's rule in a phrase, for explanations (README, "Scoring from a conversation", has them in full)."""


def derive(conversation: Conversation, phrases: Phrases) -> dict[str, Any]:
    messages = conversation.messages
    lead = [m for m in messages if m.by_lead]
    text = "\n".join(m.text for m in lead)  # a line break ends a clause: no negation reaches across messages
    found = phrases.scan(text)
    return {
        "response_time_hours": round(reply_hours(conversation), 4),
        "message_length_avg": round(sum(m.chars for m in lead) / len(lead), 2) if lead else 0.0,
        "questions_asked": len(_QUESTIONS.findall(text)),
        "price_range_mentioned": conversation.budget_given or _said(found, "price"),
        "timeline_urgency": round(_urgency(conversation, phrases, found), 4),
        "location_specificity": round(_most(phrases, found, "location"), 4),
        "financing_mentioned": _said(found, "financing"),
        "family_size_mentioned": conversation.household_size is not None or _said(found, "household"),
        "job_stability_score": round(_job(conversation, phrases, found), 4),
        "previous_real_estate_experience": (
            conversation.previous_transactions > 0
            if conversation.previous_transactions is not None
            else _said(found, "ownership")
        ),
    }


def reply_hours(conversation: Conversation) -> float:
    """Median hours from an agent message to the lead's next message. A run of agent messages
    counts from its first (the lead kept the agent waiting since then); an agent run still
    unanswered at the end of the thread is left out, since the thread has no "now"."""
    delays: list[float] = []
    waiting_since: float | None = None
    asked = False
    for m in conversation.messages:
        if not m.by_lead:
            asked = True
            if waiting_since is None:
                waiting_since = m.at
        elif waiting_since is not None:
            delays.append(m.at - waiting_since)
            waiting_since = None
    if delays:
        return min(statistics.median(delays) / 3600.0, MAX_HOURS)
    return UNANSWERED_HOURS if asked else NO_EXCHANGE_HOURS


def _said(found: Matches, signal: str) -> bool:
    return any(value > 0 for _, value in found[signal])


def _most(phrases: Phrases, found: Matches, signal: str) -> float:
    return max((value for _, value in found[signal]), default=phrases.signals[signal].default)


def _last(found: Matches, signal: str) -> float | None:
    """The value of the last statement about the signal: people update what they said."""
    matches = found[signal]
    return max(matches, key=lambda match: match[0])[1] if matches else None


def _urgency(conversation: Conversation, phrases: Phrases, found: Matches) -> float:
    """The CRM's timeline first (a date, measured from the last message; or its text), else the
    lead's last statement about timing, else the signal's default."""
    signal = phrases.signals["timeline_urgency"]
    if conversation.timeline_date is not None and conversation.messages:
        target = conversation.timeline_date
        # whole UTC days from the last message's day: POSIX arithmetic, valid for any year a time can name
        days = int(datetime(target.year, target.month, target.day, tzinfo=UTC).timestamp() // 86400) - int(conversation.messages[-1].at // 86400)
        if days <= FULL_URGENCY_DAYS:
            return 1.0
        share = min(1.0, (days - FULL_URGENCY_DAYS) / (NO_URGENCY_DAYS - FULL_URGENCY_DAYS))
        return 1.0 - (1.0 - FAR_URGENCY) * share
    if conversation.timeline_text is not None:
        stated = _last(phrases.scan(conversation.timeline_text), "timeline_urgency")
        if stated is not None:
            return stated
    stated = _last(found, "timeline_urgency")
    return signal.default if stated is None else stated


def _job(conversation: Conversation, phrases: Phrases, found: Matches) -> float:
    """The CRM's employment status (else the lead's last statement about work, else the default),
    plus a bonus for years in role."""
    signal = phrases.signals["job"]
    if conversation.employment_status is not None:
        base = phrases.employment[conversation.employment_status]
    else:
        stated = _last(found, "job")
        base = signal.default if stated is None else stated
    if conversation.years_in_role is not None:
        base += phrases.years_bonus * min(1.0, conversation.years_in_role / phrases.years_full)
    return min(1.0, max(0.0, base))
