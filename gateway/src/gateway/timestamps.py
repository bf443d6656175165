"""Protobuf timestamps <-> the API's ISO 8601 strings, and the parsing of date query parameters."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from fastapi.exceptions import RequestValidationError
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from echostats_platform.timeutil import isoformat_z


def iso_or_none(message: Message, field: str) -> str | None:
    """The ISO 8601 (Z) form of an optional Timestamp field, or None when unset."""
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return isoformat_z(stamp.ToDatetime(tzinfo=UTC))


# How a date-or-datetime query value is documented (`Query(json_schema_extra=...)`): exactly
# what parse_date_param accepts, so clients and schema-driven tests know a free-form string
# is refused (422).
ISO_DATE_OR_DATETIME: dict[str, object] = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
        {"type": "string", "maxLength": 0},
    ]
}


def parse_date_param(value: str | None, *, name: str, end_of_day: bool) -> datetime | None:
    """Parse an ISO 8601 date or datetime query value (naive means UTC).

    A date without a time means the start of that day, or for an end bound the whole day
    (so `end_date=2025-01-15` includes plays on the 15th). Bad input is a 422 naming the
    parameter.
    """
    if value is None or value == "":
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).date()
            moment = datetime.combine(day, time.min, tzinfo=UTC)
            return moment + timedelta(days=1) - timedelta(microseconds=1) if end_of_day else moment
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": f"{name} must be an ISO 8601 date or datetime, e.g. 2025-01-15 or "
                    "2025-01-15T14:32:00Z",
                    "type": "value_error",
                }
            ]
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
