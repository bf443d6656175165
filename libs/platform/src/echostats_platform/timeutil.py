"""Time at the edges: we store aware UTC datetimes and print ISO 8601 with a trailing Z."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def isoformat_z(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with `Z` (naive values are taken as UTC); None stays None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
