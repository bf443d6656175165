"""The gateway's per-client rate limiter: a sliding-window log in Redis, shared by replicas.

Algorithm: each client has one sorted set (`gateway:ratelimit:<client>`) holding the
timestamps of its accepted requests in the last window. One Lua script, run atomically by
Redis, drops the timestamps that left the window, counts the rest and admits the request
only when fewer than `limit` remain. A sliding window has no burst at the edge of a fixed
window (2 x limit in a moment); the cost is at most `limit` small entries per active client.
Rejected requests are not recorded, so a client that keeps hammering is admitted again as
soon as its oldest accepted request leaves the window. The clock is Redis' own (`TIME`), so
replicas with skewed clocks still agree.

One round trip per request: the script runs by EVALSHA (redis-py loads it once more after
a Redis restart).

Failure policy: when Redis is unreachable the limiter fails OPEN (the request proceeds
without rate-limit headers and a warning is logged). Availability wins over strictness:
a Redis outage must not turn into a full API outage. To keep a dead Redis from adding its
connect timeout to every request, the limiter then skips Redis for `backoff_seconds`.

The client identity comes from `client_address`: the socket peer, or, only when the peer
is a trusted proxy, the right-most X-Forwarded-For address that is not itself a proxy.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

KEY_PREFIX = "gateway:ratelimit:"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# KEYS[1]: the client's sorted set of accepted-request timestamps (microseconds).
# ARGV[1]: limit, ARGV[2]: window in microseconds, ARGV[3]: a unique member for this request.
# Returns {allowed (0/1), requests now in the window, microseconds until a slot frees}.
# Timestamps stay below 2^53, so Lua's doubles hold them exactly.
_SLIDING_WINDOW_LUA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
local reset = window
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] then
  reset = tonumber(oldest[2]) + window - now
end
return {allowed, count, reset}
"""


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    """The limiter's answer for one request."""

    allowed: bool
    limit: int
    remaining: int
    # Seconds until the window frees a slot (the oldest accepted request leaves it).
    reset_seconds: int

    @property
    def retry_after(self) -> int:
        """Seconds a rejected client should wait (at least 1)."""
        return max(1, self.reset_seconds)

    def headers(self) -> dict[str, str]:
        """The X-RateLimit-* headers (plus Retry-After when rejected)."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class RateLimiter:
    """Sliding-window limiter of `limit` requests per `window_seconds` per client key."""

    def __init__(
        self,
        redis: Redis,
        *,
        limit: int,
        window_seconds: float,
        key_prefix: str = KEY_PREFIX,
        timeout_seconds: float = 1.0,
        backoff_seconds: float = 5.0,
    ) -> None:
        if limit < 1 or window_seconds <= 0:
            raise ValueError("limit must be >= 1 and window_seconds > 0")
        self.limit = limit
        self.window_seconds = window_seconds
        self.key_prefix = key_prefix
        # Bounds the time a slow (not dead) Redis can add to a request.
        self.timeout_seconds = timeout_seconds
        self.backoff_seconds = backoff_seconds
        self._script = redis.register_script(_SLIDING_WINDOW_LUA)
        self._skip_until = 0.0

    async def hit(self, client: str) -> RateLimitDecision | None:
        """Count one request by `client`; None when Redis is unavailable (fail open)."""
        if time.monotonic() < self._skip_until:
            return None
        window_us = math.ceil(self.window_seconds * 1_000_000)
        try:
            async with asyncio.timeout(self.timeout_seconds):
                allowed, count, reset_us = await self._script(
                    keys=[self.key_prefix + client],
                    args=[self.limit, window_us, uuid.uuid4().hex],
                )
        except (RedisError, OSError, TimeoutError) as exc:
            self._skip_until = time.monotonic() + self.backoff_seconds
            logger.warning(
                "rate limiter failing open: Redis unavailable (%s); skipping it for %.1fs",
                exc.__class__.__name__,
                self.backoff_seconds,
            )
            return None
        return RateLimitDecision(
            allowed=bool(int(allowed)),
            limit=self.limit,
            remaining=max(0, self.limit - int(count)),
            reset_seconds=max(1, math.ceil(int(reset_us) / 1_000_000)),
        )


def parse_ip(value: str) -> IPAddress | None:
    """The address in `value`, or None when it is not one."""
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def is_trusted_proxy(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    """Whether `address` is one of the configured proxies."""
    # An IPv4-mapped IPv6 peer (::ffff:10.0.0.1) is the IPv4 proxy it wraps.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in trusted)


def client_address(
    peer: str | None,
    forwarded_for: Iterable[str],
    trusted_proxies: Sequence[IPNetwork],
) -> str:
    """The client's address: the peer, or its X-Forwarded-For when the peer is a trusted proxy."""
    peer_ip = parse_ip(peer) if peer else None
    if peer_ip is None:
        # No usable socket address (e.g. a unix socket): everyone shares one bucket, which
        # is strict but cannot be dodged.
        return peer or "unknown"
    if not is_trusted_proxy(peer_ip, trusted_proxies):
        return str(peer_ip)
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    # Walk from the right: every trusted proxy appends the address it saw, so the right-most
    # untrusted entry is the client as seen by our outermost proxy. Entries left of it were
    # written by the client and may be forged.
    last_trusted = peer_ip
    for hop in reversed(hops):
        hop_ip = parse_ip(hop)
        if hop_ip is None:
            # Garbage where a proxy should have written an address: do not let it become an
            # identity of the client's choosing.
            break
        if not is_trusted_proxy(hop_ip, trusted_proxies):
            return str(hop_ip)
        last_trusted = hop_ip
    return str(last_trusted)
