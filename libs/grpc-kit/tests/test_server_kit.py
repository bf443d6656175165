"""The gRPC kit against a real in-process aio server on a free port."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import grpc
import pymongo.errors
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from echostats_grpc.client import check_health, create_channel, error_reason, error_retry_after
from echostats_grpc.server import build_server
from echostats_platform import errors
from echostats_platform.context import deadline_var, remaining_budget, request_id_var

SERVICE = "echostats.test.v1.EchoService"
seen: dict[str, object] = {}


def _encode(value: object) -> bytes:
    return json.dumps(value).encode()


def _decode(raw: bytes) -> object:
    return json.loads(raw)


async def echo(request: dict, context: grpc.aio.ServicerContext) -> dict:
    """Echo the request plus what the interceptors put in context."""
    seen["request_id"] = request_id_var.get()
    seen["deadline"] = deadline_var.get()
    action = request.get("action")
    if action == "not_found":
        raise errors.NotFound("Track not found", reason="TRACK_NOT_FOUND")
    if action == "rate_limited":
        raise errors.ResourceExhausted("slow down", retry_after=42)
    if action == "mongo_down":
        raise pymongo.errors.ServerSelectionTimeoutError("no servers")
    if action == "bug":
        raise RuntimeError("secret internals")
    if action == "slow":
        await asyncio.sleep(5)
    return {"echo": request, "request_id": request_id_var.get()}


async def count(request: dict, context: grpc.aio.ServicerContext):
    """Server-streaming: yields n numbers then fails if asked."""
    for number in range(request["n"]):
        yield {"number": number}
    if request.get("fail"):
        raise errors.FailedPrecondition("stream broke")


def register(server: grpc.aio.Server) -> None:
    handlers = {
        "Echo": grpc.unary_unary_rpc_method_handler(
            echo, request_deserializer=_decode, response_serializer=_encode
        ),
        "Count": grpc.unary_stream_rpc_method_handler(
            count, request_deserializer=_decode, response_serializer=_encode
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


@pytest.fixture
async def channel():
    built = build_server(registrars=[register], service_names=[SERVICE], port=0)
    assert built.port > 0
    await built.start()
    channel = create_channel(f"127.0.0.1:{built.port}", default_timeout=2.0)
    yield channel
    await channel.close()
    await built.stop(0)


def _echo(channel: grpc.aio.Channel):
    return channel.unary_unary(
        f"/{SERVICE}/Echo", request_serializer=_encode, response_deserializer=_decode
    )


async def test_health_and_reflection_are_served(channel):
    assert await check_health(channel)
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for response in stub.ServerReflectionInfo(requests()):
        names = {service.name for service in response.list_services_response.service}
        assert SERVICE in names
        assert "grpc.health.v1.Health" in names
        break


async def test_request_id_propagates_from_the_caller(channel):
    token = request_id_var.set("req-abc-123")
    try:
        reply = await _echo(channel)({"action": "ok"})
    finally:
        request_id_var.reset(token)
    assert reply["request_id"] == "req-abc-123"


async def test_request_id_is_generated_when_absent(channel):
    reply = await _echo(channel)({"action": "ok"})
    assert isinstance(reply["request_id"], str) and len(reply["request_id"]) == 32


async def test_deadline_reaches_the_servicer(channel):
    await _echo(channel)({"action": "ok"}, timeout=1.5)
    assert seen["deadline"] is not None


async def test_caller_budget_clamps_the_deadline(channel):
    token = deadline_var.set(time.monotonic() + 0.3)
    try:
        assert remaining_budget(10) <= 0.3
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _echo(channel)({"action": "slow"})
    finally:
        deadline_var.reset(token)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_domain_error_maps_to_status_and_reason(channel):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _echo(channel)({"action": "not_found"})
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == "Track not found"
    assert error_reason(info.value) == "TRACK_NOT_FOUND"


async def test_retry_after_travels_in_metadata(channel):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _echo(channel)({"action": "rate_limited"})
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_retry_after(info.value) == 42


async def test_database_outage_is_unavailable(channel):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _echo(channel)({"action": "mongo_down"})
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_reason(info.value) == errors.REASON_DATABASE_UNAVAILABLE


async def test_bugs_are_internal_without_details(channel, caplog):
    with caplog.at_level(logging.ERROR), pytest.raises(grpc.aio.AioRpcError) as info:
        await _echo(channel)({"action": "bug"})
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (info.value.details() or "")
    assert any("unhandled error" in record.getMessage() for record in caplog.records)


async def test_streaming_rpcs_are_wrapped(channel):
    call = channel.unary_stream(
        f"/{SERVICE}/Count", request_serializer=_encode, response_deserializer=_decode
    )
    numbers = [item["number"] async for item in call({"n": 3})]
    assert numbers == [0, 1, 2]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call({"n": 1, "fail": True}):
            pass
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_graceful_stop_marks_not_serving():
    built = build_server(registrars=[register], service_names=[SERVICE], port=0)
    await built.start()
    channel = create_channel(f"127.0.0.1:{built.port}")
    try:
        assert await check_health(channel)
        await built.health.enter_graceful_shutdown()
        response = await built.health.Check(health_pb2.HealthCheckRequest(service=""), None)
        assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert not await check_health(channel)
    finally:
        await channel.close()
        await built.stop(0)


async def _peer(request: dict, context: grpc.aio.ServicerContext) -> dict:
    """The caller's address as the server sees it (a new connection, a new client port)."""
    return {"peer": context.peer()}


def _register_peer(server: grpc.aio.Server) -> None:
    handler = grpc.unary_unary_rpc_method_handler(
        _peer, request_deserializer=_decode, response_serializer=_encode
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("echostats.test.v1.PeerService", {"Peer": handler}),)
    )


async def test_calls_survive_connections_ended_by_max_age():
    # Replicas added by a scale-up get traffic because servers end old connections; the
    # callers must not notice: each call after a GOAWAY goes over a new connection.
    built = build_server(
        registrars=[_register_peer], service_names=[], port=0, max_connection_age_seconds=0.3
    )
    await built.start()
    channel = create_channel(f"127.0.0.1:{built.port}", default_timeout=5.0)
    peer = channel.unary_unary(
        "/echostats.test.v1.PeerService/Peer",
        request_serializer=_encode,
        response_deserializer=_decode,
    )
    try:
        peers = []
        for _ in range(8):
            peers.append((await peer({}))["peer"])
            await asyncio.sleep(0.15)
        assert len(set(peers)) >= 2, peers
    finally:
        await channel.close()
        await built.stop(0)
