"""Client side of the kit: channels with request-id propagation and a deadline on every call."""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from echostats_grpc.status import REASON_METADATA_KEY, RETRY_AFTER_METADATA_KEY
from echostats_platform.context import (
    REQUEST_ID_METADATA_KEY,
    current_request_id,
    remaining_budget,
)


def _with_context(details: grpc.aio.ClientCallDetails, default_timeout: float) -> Any:
    """Add x-request-id and clamp the timeout to the caller's remaining budget."""
    metadata = list(details.metadata or ())
    request_id = current_request_id()
    if request_id and not any(key == REQUEST_ID_METADATA_KEY for key, _ in metadata):
        metadata.append((REQUEST_ID_METADATA_KEY, request_id))
    timeout = details.timeout if details.timeout is not None else default_timeout
    timeout = remaining_budget(timeout)
    return grpc.aio.ClientCallDetails(
        method=details.method,
        timeout=timeout,
        metadata=grpc.aio.Metadata(*metadata),
        credentials=details.credentials,
        wait_for_ready=details.wait_for_ready,
    )


class _ContextClientInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
):
    def __init__(self, default_timeout: float) -> None:
        self.default_timeout = default_timeout

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_context(details, self.default_timeout), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_context(details, self.default_timeout), request)

    async def intercept_stream_unary(
        self, continuation: Any, details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(_with_context(details, self.default_timeout), request_iterator)


def create_channel(target: str, *, default_timeout: float = 10.0) -> grpc.aio.Channel:
    """An insecure aio channel (in-cluster traffic) with round-robin over resolved addresses."""
    return grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.lb_policy_name", "round_robin"),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
            ("grpc.enable_retries", 1),
        ],
        interceptors=[_ContextClientInterceptor(default_timeout)],
    )


async def check_health(channel: grpc.aio.Channel, *, timeout: float = 1.0) -> bool:
    """True when the peer's standard health service answers SERVING."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        response = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
    except grpc.aio.AioRpcError:
        return False
    return response.status == health_pb2.HealthCheckResponse.SERVING


def error_reason(error: grpc.aio.AioRpcError) -> str | None:
    """The stable reason a service attached to a failed call, if any."""
    for key, value in error.trailing_metadata() or ():
        if key == REASON_METADATA_KEY:
            return str(value)
    return None


def error_retry_after(error: grpc.aio.AioRpcError) -> int | None:
    """The Retry-After seconds a service attached to a failed call, if any."""
    for key, value in error.trailing_metadata() or ():
        if key == RETRY_AFTER_METADATA_KEY:
            try:
                return int(value)
            except ValueError:
                return None
    return None
