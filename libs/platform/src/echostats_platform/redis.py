"""Redis client factory (redis-py asyncio); services share one Redis, each with its key prefix."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from echostats_platform.settings import CommonSettings


def create_redis(settings: CommonSettings) -> Redis:
    """Build the process's Redis client with short timeouts (outages surface as 503s)."""
    return Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        health_check_interval=15,
        # After a Redis restart every pooled connection is dead; one retry on a fresh
        # connection turns that into a non-event instead of a failed request per connection.
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=1),
        retry_on_error=[RedisConnectionError],
    )


async def ping(redis: Redis) -> bool:
    """True when Redis answers PING."""
    try:
        return bool(await redis.ping())
    except Exception:
        return False
