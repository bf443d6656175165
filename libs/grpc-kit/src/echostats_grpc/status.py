"""The one table between domain errors and gRPC status codes, and the reason metadata key."""

from __future__ import annotations

import grpc
import pymongo.errors
import redis.exceptions

from echostats_platform import errors

# Trailing metadata key carrying DomainError.reason (a stable, machine-readable cause).
REASON_METADATA_KEY = "echostats-reason"
RETRY_AFTER_METADATA_KEY = "echostats-retry-after"

STATUS_BY_NAME: dict[str, grpc.StatusCode] = {code.name: code for code in grpc.StatusCode}


def status_for(error: errors.DomainError) -> grpc.StatusCode:
    """The canonical gRPC status for a domain error."""
    return STATUS_BY_NAME.get(error.status, grpc.StatusCode.INTERNAL)


def infrastructure_error(exc: BaseException) -> errors.DomainError | None:
    """Translate driver exceptions of our own dependencies into Unavailable, else None."""
    if isinstance(
        exc, pymongo.errors.ConnectionFailure | pymongo.errors.ServerSelectionTimeoutError
    ):
        return errors.Unavailable(
            "database not connected", reason=errors.REASON_DATABASE_UNAVAILABLE
        )
    if isinstance(exc, pymongo.errors.NetworkTimeout | pymongo.errors.AutoReconnect):
        return errors.Unavailable(
            "database not connected", reason=errors.REASON_DATABASE_UNAVAILABLE
        )
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return errors.Unavailable("cache unreachable", reason=errors.REASON_CACHE_UNAVAILABLE)
    return None
