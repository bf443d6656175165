"""Smoke test of the whole local stack: every process is up and the backends answer."""

from __future__ import annotations

import grpc
import httpx
import pymongo
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from echostats_devstack import LocalStack

pytestmark = pytest.mark.integration

EXPECTED = {
    "ferretdb",
    "redis",
    "simulator",
    "github-stub",
    "auth",
    "ingestion",
    "catalog",
    "analytics",
    "player-proxy",
    "observability",
    "gateway",
}


def test_every_component_is_alive(stack: LocalStack) -> None:
    alive = stack.processes_alive()
    assert set(alive) >= EXPECTED
    assert all(alive.values()), alive
    assert stack.dead_components() == []


def test_ferretdb_and_redis_answer(stack: LocalStack) -> None:
    mongo: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        stack.mongodb_uri, serverSelectionTimeoutMS=2000
    )
    try:
        assert mongo.admin.command("ping")["ok"] == 1.0
    finally:
        mongo.close()
    cache = redis.Redis.from_url(stack.redis_url, socket_timeout=2)
    try:
        assert cache.ping() is True
    finally:
        cache.close()


def test_every_service_reports_serving(stack: LocalStack) -> None:
    for name, addr in stack.service_addrs.items():
        with grpc.insecure_channel(addr) as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2
            )
        assert response.status == health_pb2.HealthCheckResponse.SERVING, name


def test_gateway_simulator_and_github_stub_answer(
    stack: LocalStack, gateway_url: str, simulator_url: str
) -> None:
    assert httpx.get(f"{gateway_url}/api/health", timeout=5).status_code == 200
    assert httpx.get(f"{simulator_url}/_sim/requests", timeout=5).status_code == 200
    release = httpx.get(
        f"{stack.github_stub_url}/repos/echostats/echostats/releases/latest", timeout=5
    )
    assert release.json()["tag_name"] == "v0.2.0"
