"""Readiness probes: one quick check per kind of server, returning True once it answers.

A probe may raise; the launcher treats any exception as "not ready yet" and quotes the last
one when the component never becomes ready.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import grpc
import httpx
import pymongo
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

Probe = Callable[[], bool]

# Each attempt is short: the launcher polls until its own deadline, and a probe stuck on a
# half-started server must not eat that budget.
ATTEMPT_TIMEOUT_SECONDS = 1.0


def mongo_ping(uri: str) -> Probe:
    """Ready when `ping` succeeds on the MongoDB-wire server at `uri`."""

    address = urlsplit(uri)

    def probe() -> bool:
        # PyMongo waits for its next heartbeat (0.5 s) after a refused connection; a plain
        # connect first keeps the poll at the launcher's pace while the port is still closed.
        if address.hostname and address.port:
            tcp_accepts(address.hostname, address.port)()
        timeout_ms = int(ATTEMPT_TIMEOUT_SECONDS * 1000)
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            uri,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=timeout_ms,
        )
        try:
            return bool(client.admin.command("ping").get("ok"))
        finally:
            client.close()

    return probe


def redis_ping(url: str) -> Probe:
    """Ready when Redis answers PING."""

    def probe() -> bool:
        client = redis.Redis.from_url(
            url,
            socket_timeout=ATTEMPT_TIMEOUT_SECONDS,
            socket_connect_timeout=ATTEMPT_TIMEOUT_SECONDS,
        )
        try:
            return bool(client.ping())
        finally:
            client.close()

    return probe


def tcp_accepts(host: str, port: int) -> Probe:
    """Ready when a TCP connection to `host:port` succeeds."""

    def probe() -> bool:
        with socket.create_connection((host, port), timeout=ATTEMPT_TIMEOUT_SECONDS):
            return True

    return probe


def http_ok(url: str, *, also_ready_on: frozenset[int] = frozenset()) -> Probe:
    """Ready when GET `url` answers 200 (or one of `also_ready_on`)."""

    def probe() -> bool:
        response = httpx.get(url, timeout=ATTEMPT_TIMEOUT_SECONDS)
        return response.status_code == 200 or response.status_code in also_ready_on

    return probe


def grpc_serving(addr: str) -> Probe:
    """Ready when the standard gRPC health service reports SERVING for the server ("")."""

    def probe() -> bool:
        with grpc.insecure_channel(addr) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            response = stub.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=ATTEMPT_TIMEOUT_SECONDS
            )
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    return probe
