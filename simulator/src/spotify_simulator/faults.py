"""Fault injection, latency, the sliding-window rate limiter and the request log.

These are plain in-memory books, each behind its own lock, that the middleware consults
on every non-control request and the `/_sim/*` control API edits:
- `FaultBook`: "the next N requests matching prefix/method/user get status S", rendered
  with Spotify's real bodies (`render_fault`): 429 + Retry-After (optionally
  `QUOTA_EXCEEDED`), 401 `The access token expired`, 5xx as JSON or, for 502, HTML;
- `LatencyBook`: extra delay per path prefix (longest prefix wins);
- `RateLimiter`: Spotify's rolling 30-second window per app (ref §6), off by default;
- `RequestLog`: a bounded record of what was asked and answered, for call counting.
"""

from __future__ import annotations

import math
import secrets
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from typing import Any

from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from .errors import WEB_API_PREFIX, accounts_body, web_api_body

RATE_LIMIT_MESSAGE = "API rate limit exceeded"


def _matches(prefix: str, method: str | None, req_path: str, req_method: str) -> bool:
    return req_path.startswith(prefix) and (method is None or method == req_method)


# --- faults -------------------------------------------------------------------------------


@dataclass(slots=True)
class FaultRule:
    """One armed fault; `remaining=None` fires until cleared."""

    id: str
    path_prefix: str
    status: int
    method: str | None = None
    remaining: int | None = 1
    retry_after: int | None = None
    body: Any = None
    reason: str | None = None
    user_id: str | None = None
    fired: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON view for the control API."""
        return asdict(self)


class FaultBook:
    """Armed faults, consumed first-armed-first."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def arm(
        self,
        *,
        path_prefix: str,
        status: int,
        method: str | None = None,
        count: int | None = 1,
        retry_after: int | None = None,
        body: Any = None,
        reason: str | None = None,
        user_id: str | None = None,
    ) -> FaultRule:
        """Add a fault for the next `count` matching requests (None: until cleared)."""
        rule = FaultRule(
            id=secrets.token_hex(6),
            path_prefix=path_prefix,
            status=status,
            method=method.upper() if method else None,
            remaining=count,
            retry_after=retry_after,
            body=body,
            reason=reason,
            user_id=user_id,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def take(self, method: str, path: str, user_id: str | None) -> FaultRule | None:
        """Consume one shot of the first fault matching this request, if any."""
        with self._lock:
            for rule in self._rules:
                if not _matches(rule.path_prefix, rule.method, path, method):
                    continue
                if rule.user_id is not None and rule.user_id != user_id:
                    continue
                rule.fired += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                return rule
        return None

    def list(self) -> list[FaultRule]:
        """Faults still armed."""
        with self._lock:
            return list(self._rules)

    def remove(self, rule_id: str) -> bool:
        """Disarm one fault; False if it was not armed."""
        with self._lock:
            for rule in self._rules:
                if rule.id == rule_id:
                    self._rules.remove(rule)
                    return True
        return False

    def clear(self) -> int:
        """Disarm everything; return how many were armed."""
        with self._lock:
            count = len(self._rules)
            self._rules.clear()
            return count


_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)
_WEB_API_DEFAULT_MESSAGES = {
    401: "The access token expired",
    429: RATE_LIMIT_MESSAGE,
    500: "Server error.",
    503: "Service unavailable",
}
_ACCOUNTS_DEFAULT_CODES = {
    400: "invalid_request",
    401: "invalid_client",
    429: "rate_limit_exceeded",
    503: "temporarily_unavailable",
}


def render_fault(rule: FaultRule, path: str) -> Response:
    """The response Spotify would send for this fault on this path."""
    headers: dict[str, str] = {}
    if rule.retry_after is not None:
        headers["Retry-After"] = str(rule.retry_after)
    elif rule.status == 429:
        headers["Retry-After"] = "1"  # Spotify always tells clients how long to wait
    if rule.body is not None:
        if isinstance(rule.body, str):
            cls = HTMLResponse if rule.body.lstrip().startswith("<") else PlainTextResponse
            return cls(rule.body, rule.status, headers=headers)
        return JSONResponse(rule.body, rule.status, headers=headers)
    phrase = _phrase(rule.status)
    if rule.status == 502:
        # Spotify's edge answers some 5xx with an HTML page; clients must not parse JSON.
        return HTMLResponse(_BAD_GATEWAY_HTML, 502, headers=headers)
    if path.startswith(WEB_API_PREFIX):
        if rule.status == 401:
            message = _WEB_API_DEFAULT_MESSAGES[401]
            headers["WWW-Authenticate"] = (
                f'Bearer realm="spotify", error="invalid_token", error_description="{message}"'
            )
        elif rule.status == 429 and rule.reason == "QUOTA_EXCEEDED":
            message = "Too many requests"
        else:
            message = _WEB_API_DEFAULT_MESSAGES.get(rule.status, phrase)
        return JSONResponse(web_api_body(rule.status, message, rule.reason), rule.status, headers)
    if path.startswith("/api/"):
        code = _ACCOUNTS_DEFAULT_CODES.get(
            rule.status, "server_error" if rule.status >= 500 else "invalid_request"
        )
        return JSONResponse(accounts_body(code, phrase), rule.status, headers=headers)
    # Browser-facing pages such as /authorize.
    return HTMLResponse(f"<html><body><h1>{rule.status} {phrase}</h1></body></html>", rule.status)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# --- latency ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LatencyRule:
    """Extra delay for requests under a path prefix."""

    path_prefix: str
    ms: int
    method: str | None = None


class LatencyBook:
    """Latency rules keyed by (prefix, method); the longest matching prefix wins."""

    def __init__(self) -> None:
        self._rules: dict[tuple[str, str | None], LatencyRule] = {}
        self._lock = threading.Lock()

    def put(self, path_prefix: str, ms: int, method: str | None = None) -> LatencyRule | None:
        """Set (or with ms=0 remove) the delay for a prefix; return the rule in force."""
        key = (path_prefix, method.upper() if method else None)
        with self._lock:
            if ms <= 0:
                self._rules.pop(key, None)
                return None
            rule = LatencyRule(path_prefix, ms, key[1])
            self._rules[key] = rule
            return rule

    def delay_s(self, method: str, path: str) -> float:
        """Seconds to wait before answering this request."""
        with self._lock:
            hits = [
                r for r in self._rules.values() if _matches(r.path_prefix, r.method, path, method)
            ]
        if not hits:
            return 0.0
        best = max(hits, key=lambda r: (len(r.path_prefix), r.method is not None))
        return best.ms / 1000

    def list(self) -> list[LatencyRule]:
        """Rules in force."""
        with self._lock:
            return list(self._rules.values())

    def clear(self) -> None:
        """Remove every delay."""
        with self._lock:
            self._rules.clear()


# --- rate limiting ------------------------------------------------------------------------


class RateLimiter:
    """Rolling-window request counter per app (client id), like Spotify's (ref §6)."""

    def __init__(self, threshold: int | None = None, window_s: float = 30.0) -> None:
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}
        self.threshold = threshold
        self.window_s = window_s
        self.retry_after: int | None = None

    def configure(
        self, threshold: int | None, window_s: float = 30.0, retry_after: int | None = None
    ) -> None:
        """Set the limit (None disables it); `retry_after` forces a fixed header value."""
        with self._lock:
            self.threshold = threshold
            self.window_s = window_s
            self.retry_after = retry_after
            self._hits.clear()

    def check(self, key: str, now: float) -> int | None:
        """Count a request; return Retry-After seconds if it is over the limit, else None."""
        with self._lock:
            if self.threshold is None:
                return None
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.threshold:
                # Refused requests are not counted, so a client that waits Retry-After
                # really gets through.
                if self.retry_after is not None:
                    return self.retry_after
                return max(1, math.ceil(hits[0] + self.window_s - now))
            hits.append(now)
            return None

    def as_dict(self) -> dict[str, Any]:
        """JSON view for the control API."""
        with self._lock:
            return {
                "threshold": self.threshold,
                "window_s": self.window_s,
                "retry_after": self.retry_after,
                "counts": {k: len(v) for k, v in self._hits.items()},
            }


# --- request log --------------------------------------------------------------------------


@dataclass(slots=True)
class RequestRecord:
    """One request the simulator answered (control API calls are not recorded)."""

    id: int
    method: str
    path: str
    query: str
    status: int
    user_id: str | None
    client_id: str | None
    time: str
    duration_ms: float
    injected: str | None = None  # "fault" | "rate_limit" when the simulator answered itself

    def as_dict(self) -> dict[str, Any]:
        """JSON view for the control API."""
        return asdict(self)


@dataclass
class RequestLog:
    """The most recent `maxlen` requests, oldest first."""

    maxlen: int = 10_000
    _records: deque[RequestRecord] = field(init=False)
    _next_id: int = field(default=1, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._records = deque(maxlen=self.maxlen)

    def add(self, **fields: Any) -> RequestRecord:
        """Append a record (ids increase monotonically, even across clears)."""
        with self._lock:
            record = RequestRecord(id=self._next_id, **fields)
            self._next_id += 1
            self._records.append(record)
            return record

    def list(
        self, path_prefix: str = "", method: str | None = None, user_id: str | None = None
    ) -> list[RequestRecord]:
        """Records filtered by prefix, method and user."""
        with self._lock:
            records = list(self._records)
        return [
            r
            for r in records
            if _matches(path_prefix, method.upper() if method else None, r.path, r.method)
            and (user_id is None or r.user_id == user_id)
        ]

    def clear(self) -> int:
        """Forget every record; return how many there were."""
        with self._lock:
            count = len(self._records)
            self._records.clear()
            return count
