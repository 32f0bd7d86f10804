from __future__ import annotations

from datetime import UTC, datetime

from ml_core.timestamps import utc_iso


def test_one_format_utc_with_milliseconds_and_z() -> None:
    assert utc_iso(0) == "1970-01-01T00:00:00.000Z"
    assert utc_iso(1764510300.1234) == "2025-11-30T13:45:00.123Z"
    assert datetime.fromisoformat(utc_iso()).tzinfo == UTC
