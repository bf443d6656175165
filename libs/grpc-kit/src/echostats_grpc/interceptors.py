"""Server interceptors: request context, logging + metrics, and domain-error → status mapping.

Order (outermost first): RequestContextInterceptor sets the request id and deadline for
everything below; ObservabilityInterceptor logs and counts every call with its final code;
ErrorMappingInterceptor turns DomainError and driver outages into canonical statuses so
servicers just raise.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc.aio import AbortError
from prometheus_client import Counter, Histogram

from echostats_grpc.status import (
    REASON_METADATA_KEY,
    RETRY_AFTER_METADATA_KEY,
    infrastructure_error,
    status_for,
)
from echostats_platform import errors
from echostats_platform.context import (
    REQUEST_ID_METADATA_KEY,
    deadline_var,
    new_request_id,
    request_id_var,
)

log = logging.getLogger("echostats.grpc")

RPC_TOTAL = Counter("echostats_grpc_server_handled_total", "RPCs handled", ["method", "code"])
RPC_SECONDS = Histogram("echostats_grpc_server_handling_seconds", "RPC latency", ["method"])

Wrapper = Callable[[Callable[..., Any], str], Callable[..., Any]]


def _wrap_handler(handler: grpc.RpcMethodHandler, method: str, wrap: Wrapper) -> Any:
    """Return a copy of `handler` whose behaviour is wrapped, whatever its streaming kind."""
    for kind, factory in (
        ("unary_unary", grpc.unary_unary_rpc_method_handler),
        ("unary_stream", grpc.unary_stream_rpc_method_handler),
        ("stream_unary", grpc.stream_unary_rpc_method_handler),
        ("stream_stream", grpc.stream_stream_rpc_method_handler),
    ):
        behaviour = getattr(handler, kind)
        if behaviour is not None:
            return factory(
                wrap(behaviour, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


def _around(
    behaviour: Callable[..., Any],
    before: Callable[[Any], Any],
    on_error: Callable[[BaseException, Any], Awaitable[None]] | None,
    after: Callable[[Any, Any], None],
) -> Callable[..., Any]:
    """Build a wrapper for coroutine or async-generator behaviours with the same hooks."""
    if inspect.isasyncgenfunction(behaviour):

        async def stream_wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            state = before(context)
            try:
                async for item in behaviour(request, context):
                    yield item
            except BaseException as exc:
                if on_error is None:
                    raise
                await on_error(exc, context)
            finally:
                after(state, context)

        return stream_wrapper

    async def unary_wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
        state = before(context)
        try:
            return await behaviour(request, context)
        except BaseException as exc:
            if on_error is None:
                raise
            await on_error(exc, context)
        finally:
            after(state, context)

    return unary_wrapper


class RequestContextInterceptor(grpc.aio.ServerInterceptor):
    """Adopts the caller's x-request-id (or makes one) and the call's deadline."""

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        metadata = dict(details.invocation_metadata or ())
        request_id = metadata.get(REQUEST_ID_METADATA_KEY) or new_request_id()

        def wrap(behaviour: Callable[..., Any], method: str) -> Callable[..., Any]:
            def before(context: grpc.aio.ServicerContext) -> Any:
                remaining = context.time_remaining()
                deadline = time.monotonic() + remaining if remaining is not None else None
                return request_id_var.set(request_id), deadline_var.set(deadline)

            def after(state: Any, context: grpc.aio.ServicerContext) -> None:
                request_id_var.reset(state[0])
                deadline_var.reset(state[1])

            return _around(behaviour, before, None, after)

        return _wrap_handler(handler, details.method, wrap)


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    """One structured log line and Prometheus samples per RPC."""

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None

        def wrap(behaviour: Callable[..., Any], method: str) -> Callable[..., Any]:
            def before(context: grpc.aio.ServicerContext) -> float:
                return time.perf_counter()

            def after(started: float, context: grpc.aio.ServicerContext) -> None:
                elapsed = time.perf_counter() - started
                code = context.code() or grpc.StatusCode.OK
                code_name = code.name if isinstance(code, grpc.StatusCode) else str(code)
                RPC_TOTAL.labels(method, code_name).inc()
                RPC_SECONDS.labels(method).observe(elapsed)
                log.info(
                    "rpc handled",
                    extra={
                        "rpc": method,
                        "code": code_name,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )

            return _around(behaviour, before, None, after)

        return _wrap_handler(handler, details.method, wrap)


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """DomainError → its status + reason; MongoDB/Redis outages → UNAVAILABLE; bugs → INTERNAL."""

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None

        async def on_error(exc: BaseException, context: grpc.aio.ServicerContext) -> None:
            if isinstance(exc, AbortError | GeneratorExit):
                raise exc
            if not isinstance(exc, Exception):
                raise exc  # CancelledError, KeyboardInterrupt: let grpc handle them
            error = exc if isinstance(exc, errors.DomainError) else infrastructure_error(exc)
            if error is None:
                log.exception("unhandled error in %s", details.method)
                await context.abort(grpc.StatusCode.INTERNAL, "Internal server error")
                return
            metadata: list[tuple[str, str]] = [(REASON_METADATA_KEY, error.reason)]
            if error.retry_after is not None:
                metadata.append((RETRY_AFTER_METADATA_KEY, str(error.retry_after)))
            await context.abort(status_for(error), error.message, trailing_metadata=tuple(metadata))

        def wrap(behaviour: Callable[..., Any], method: str) -> Callable[..., Any]:
            return _around(behaviour, lambda context: None, on_error, lambda s, c: None)

        return _wrap_handler(handler, details.method, wrap)


def default_server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """The standard chain, outermost first."""
    return [RequestContextInterceptor(), ObservabilityInterceptor(), ErrorMappingInterceptor()]
