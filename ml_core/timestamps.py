"""The one timestamp format of events, history and records: ISO 8601, UTC, milliseconds, ``Z``."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utc_iso(at: float | None = None) -> str:
    """``at`` (seconds since the epoch; now if None) as ``2026-11-30T13:45:00.123Z``."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
