"""A lead's ``context`` checked and read into plain values, within documented bounds.

Bounds (what is read, so one lead can never be slow): the last ``MAX_MESSAGES`` messages of a
thread (an older message is neither checked nor read), the first ``MAX_TEXT_CHARS`` characters
of each text and of a free-text timeline. Problems name the part of the context, never its text:
``context.messages[3].at``, with the index in the thread as sent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from ml_core.json_values import is_utf8, json_type

MAX_MESSAGES = 200
MAX_TEXT_CHARS = 2000
_MAX_TIME_CHARS = 40  # longer than any ISO-8601 time: refused before it reaches the parser
_FIELDS = ("messages", "budget", "timeline", "employment", "previous_transactions", "household_size")
_SENDERS = ("lead", "agent")
_MESSAGE_FIELDS = ("from", "at", "text")
_MAX_NAME = 64


class Message(NamedTuple):  # a tuple: a thread makes hundreds of them per lead
    by_lead: bool
    at: float
    """POSIX seconds; a time without an offset is UTC."""
    text: str
    """The first ``MAX_TEXT_CHARS`` characters, ``normalize``d."""
    chars: int
    """Characters of the text as read (at most ``MAX_TEXT_CHARS``)."""


@dataclass(frozen=True)
class Conversation:
    messages: list[Message]
    budget_given: bool = False
    timeline_text: str | None = None
    timeline_date: date | None = None
    employment_status: str | None = None
    years_in_role: float | None = None
    previous_transactions: int | None = None
    household_size: int | None = None


def parse_context(value: Any, statuses: Mapping[str, float]) -> tuple[Conversation | None, list[list[str]]]:
    """The conversation, or ``None`` and its problems as ``[part, problem]`` pairs."""
    if not isinstance(value, Mapping):
        return None, [["context", f"expected a JSON object, got {json_type(value)}"]]
    problems: list[list[str]] = []
    for key in sorted(map(str, set(value) - set(_FIELDS))):
        problems.append([f"context.{key[:_MAX_NAME]}", "unknown field"])
    messages = _messages(value.get("messages"), problems)
    fields: dict[str, Any] = {}
    if value.get("budget") is not None:
        fields["budget_given"] = _budget(value["budget"], problems)
    if value.get("timeline") is not None:
        fields.update(_timeline(value["timeline"], problems))
    if value.get("employment") is not None:
        fields.update(_employment(value["employment"], statuses, problems))
    for key, low in (("previous_transactions", 0), ("household_size", 1)):
        if value.get(key) is not None:
            fields[key] = _count(value[key], f"context.{key}", low, problems)
    if problems:
        return None, problems
    return Conversation(messages, **fields), []


def _messages(value: Any, problems: list[list[str]]) -> list[Message]:
    if value is None:
        problems.append(["context.messages", "missing (required; [] for a thread without messages)"])
        return []
    if not isinstance(value, list):
        problems.append(["context.messages", f"expected a JSON array, got {json_type(value)}"])
        return []
    first = max(0, len(value) - MAX_MESSAGES)
    out: list[Message] = []
    unordered = False
    for i in range(first, len(value)):
        where = f"context.messages[{i}]"
        m = value[i]
        if not isinstance(m, Mapping):
            problems.append([where, f"expected a JSON object, got {json_type(m)}"])
            continue
        if len(m) > 3 or any(k not in _MESSAGE_FIELDS for k in m):
            extra = sorted(map(str, set(m) - set(_MESSAGE_FIELDS)))
            if extra:
                problems.append([f"{where}.{extra[0][:_MAX_NAME]}", "unknown field"])
        sender, text = m.get("from"), m.get("text")
        if sender not in _SENDERS:
            problems.append([f"{where}.from", "expected \"lead\" or \"agent\""])
        if not isinstance(text, str):
            problems.append([f"{where}.text", f"expected a string, got {json_type(text)}"])
            text = ""
        text = text[:MAX_TEXT_CHARS]
        if not is_utf8(text):
            problems.append([f"{where}.text", "is not valid Unicode (a lone surrogate)"])
        at = _time(m.get("at"))
        if at is None:
            problems.append([f"{where}.at", "expected an ISO-8601 time, e.g. 2026-03-01T09:30:00Z"])
            continue
        if out and at < out[-1].at and not unordered:  # the first one is enough to name
            unordered = True
            problems.append([f"{where}.at", "earlier than the message before it (messages must be in time order)"])
        out.append(Message(sender == "lead", at, normalize(text), len(text)))
    return out


def normalize(text: str) -> str:
    """Lower case without apostrophes, as phrase lists are written: "Don't" reads "dont"."""
    return text.lower().replace("'", "").replace("\u2019", "")


def _time(value: Any) -> float | None:
    if not isinstance(value, str) or len(value) > _MAX_TIME_CHARS:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _budget(value: Any, problems: list[list[str]]) -> bool:
    if not isinstance(value, Mapping):
        problems.append(["context.budget", f"expected a JSON object with min and/or max, got {json_type(value)}"])
        return False
    bounds = {}
    for key in ("min", "max"):
        v = value.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            problems.append([f"context.budget.{key}", "expected a non-negative number"])
        else:
            bounds[key] = v
    if set(value) - {"min", "max"}:
        problems.append(["context.budget", "unknown field (expected min and/or max)"])
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        problems.append(["context.budget", "min is greater than max"])
    return bool(bounds)


def _timeline(value: Any, problems: list[list[str]]) -> dict[str, Any]:
    if not isinstance(value, str):
        problems.append(["context.timeline", f"expected a string (free text or a YYYY-MM-DD date), got {json_type(value)}"])
        return {}
    if len(value) <= 10:
        try:
            return {"timeline_date": date.fromisoformat(value)}
        except ValueError:
            pass
    text = value[:MAX_TEXT_CHARS]
    if not is_utf8(text):
        problems.append(["context.timeline", "is not valid Unicode (a lone surrogate)"])
        return {}
    return {"timeline_text": normalize(text)}


def _employment(value: Any, statuses: Mapping[str, float], problems: list[list[str]]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        problems.append(["context.employment", f"expected a JSON object, got {json_type(value)}"])
        return {}
    out: dict[str, Any] = {}
    status, years = value.get("status"), value.get("years_in_role")
    if status is not None:
        if not isinstance(status, str) or status not in statuses:
            problems.append(["context.employment.status", f"expected one of {sorted(statuses)}"])
        else:
            out["employment_status"] = status
    if years is not None:
        if isinstance(years, bool) or not isinstance(years, (int, float)) or not math.isfinite(years) or not 0 <= years <= 80:
            problems.append(["context.employment.years_in_role", "expected a number of years from 0 to 80"])
        else:
            out["years_in_role"] = float(years)
    if set(value) - {"status", "years_in_role"}:
        problems.append(["context.employment", "unknown field (expected status and/or years_in_role)"])
    return out


def _count(value: Any, where: str, low: int, problems: list[list[str]]) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= 1000 or value != int(value):
        problems.append([where, f"expected an integer from {low} to 1000"])
        return low
    return int(value)
