"""Per-request context carried across awaits: the request id and the caller's deadline."""

from __future__ import annotations

import time
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
# gRPC metadata keys must be lowercase.
REQUEST_ID_METADATA_KEY = "x-request-id"

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
# Absolute time.monotonic() deadline of the request being served, so outbound calls can
# use the remaining budget instead of a fresh, longer one.
deadline_var: ContextVar[float | None] = ContextVar("deadline", default=None)


def new_request_id() -> str:
    """Return a fresh request id (32 hex characters)."""
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    """Return the request id of the request being served, if any."""
    return request_id_var.get()


def remaining_budget(default: float) -> float:
    """Seconds left before the current deadline, or `default` when there is none."""
    deadline = deadline_var.get()
    if deadline is None:
        return default
    return max(0.0, min(default, deadline - time.monotonic()))
