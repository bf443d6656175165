"""Unit tests for the environment every stack process is started with."""

from __future__ import annotations

from pathlib import Path

from echostats_devstack import LocalStack, StackPorts
from echostats_devstack.components import SERVICES, TIERS
from echostats_devstack.environment import process_environment, shared_environment

PORTS = StackPorts(
    ferretdb=27100,
    redis=27101,
    simulator=27102,
    github_stub=27103,
    auth=27110,
    ingestion=27111,
    catalog=27112,
    analytics=27113,
    player_proxy=27114,
    observability=27115,
    gateway=27120,
    metrics={"auth": 27130, "gateway": 27131},
)


def test_shared_environment_points_at_the_stack() -> None:
    env = shared_environment(PORTS, environment="test")
    assert env["ECHOSTATS_ENVIRONMENT"] == "test"
    assert env["ECHOSTATS_LOG_LEVEL"] == "INFO"
    assert env["ECHOSTATS_MONGODB_URI"] == "mongodb://127.0.0.1:27100/?directConnection=true"
    assert env["ECHOSTATS_REDIS_URL"] == "redis://127.0.0.1:27101/0"
    assert env["ECHOSTATS_SPOTIFY_ACCOUNTS_URL"] == "http://127.0.0.1:27102"
    assert env["ECHOSTATS_SPOTIFY_API_URL"] == "http://127.0.0.1:27102"
    assert env["ECHOSTATS_SPOTIFY_CLIENT_ID"] == "echostats-dev-client"
    assert env["ECHOSTATS_SPOTIFY_CLIENT_SECRET"] == "echostats-dev-secret"
    assert env["ECHOSTATS_SPOTIFY_REDIRECT_URI"] == "http://127.0.0.1:27120/api/v1/auth/callback"
    assert env["ECHOSTATS_FRONTEND_URL"] == "http://127.0.0.1:27120"
    assert env["ECHOSTATS_AUTH_ADDR"] == "127.0.0.1:27110"
    assert env["ECHOSTATS_PLAYER_PROXY_ADDR"] == "127.0.0.1:27114"
    assert env["ECHOSTATS_OBSERVABILITY_ADDR"] == "127.0.0.1:27115"
    assert "ECHOSTATS_GITHUB_API_URL" not in env


def test_frontend_and_github_urls_are_configurable() -> None:
    env = shared_environment(
        PORTS,
        environment="development",
        frontend_url="http://localhost:3000",
        github_api_url="http://127.0.0.1:27103",
    )
    assert env["ECHOSTATS_FRONTEND_URL"] == "http://localhost:3000"
    assert env["ECHOSTATS_GITHUB_API_URL"] == "http://127.0.0.1:27103"


def test_overrides_win_in_order() -> None:
    env = process_environment(
        parent={"PATH": "/bin", "ECHOSTATS_LOG_LEVEL": "DEBUG", "KEEP": "1"},
        shared={"ECHOSTATS_LOG_LEVEL": "INFO", "ECHOSTATS_ENVIRONMENT": "test"},
        own={"ECHOSTATS_GRPC_PORT": "1"},
        global_overrides={"ECHOSTATS_ENVIRONMENT": "production", "ECHOSTATS_GRPC_PORT": "2"},
        component_overrides={"ECHOSTATS_GRPC_PORT": "3"},
    )
    assert env["PATH"] == "/bin"
    assert env["KEEP"] == "1"
    assert env["ECHOSTATS_LOG_LEVEL"] == "INFO"
    assert env["ECHOSTATS_ENVIRONMENT"] == "production"
    assert env["ECHOSTATS_GRPC_PORT"] == "3"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_each_service_gets_its_own_listening_addresses(tmp_path: Path) -> None:
    stack = LocalStack(
        tmp_path,
        ports=PORTS,
        env={"ECHOSTATS_LOG_LEVEL": "DEBUG"},
        component_env={"gateway": {"ECHOSTATS_ENVIRONMENT": "production"}},
    )
    auth = stack.process_env("auth")
    assert auth["ECHOSTATS_GRPC_HOST"] == "127.0.0.1"
    assert auth["ECHOSTATS_GRPC_PORT"] == "27110"
    assert auth["ECHOSTATS_METRICS_HOST"] == "127.0.0.1"
    assert auth["ECHOSTATS_METRICS_PORT"] == "27130"
    assert auth["ECHOSTATS_LOG_LEVEL"] == "DEBUG"
    assert auth["ECHOSTATS_ENVIRONMENT"] == "test"
    assert auth["ECHOSTATS_GITHUB_API_URL"] == "http://127.0.0.1:27103"
    gateway = stack.process_env("gateway")
    assert gateway["ECHOSTATS_GATEWAY_HOST"] == "127.0.0.1"
    assert gateway["ECHOSTATS_GATEWAY_PORT"] == "27120"
    assert gateway["ECHOSTATS_ENVIRONMENT"] == "production"
    assert stack.service_addrs["catalog"] == "127.0.0.1:27112"
    assert stack.gateway_url == "http://127.0.0.1:27120"
    assert stack.simulator_url == "http://127.0.0.1:27102"


def test_github_url_is_unset_without_the_stub(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path, ports=PORTS, components={"ferretdb", "redis"})
    assert stack.github_stub_url is None
    assert "ECHOSTATS_GITHUB_API_URL" not in stack.shared_env()


def test_the_ingestion_worker_shares_the_ingestion_environment(tmp_path: Path) -> None:
    ports = PORTS.copy()
    ports.metrics.update({"ingestion": 27132, "ingestion-worker": 27133})
    stack = LocalStack(
        tmp_path,
        ports=ports,
        component_env={
            "ingestion": {"ECHOSTATS_QUEUE_CLAIM_IDLE_MS": "2000", "ECHOSTATS_LOG_LEVEL": "DEBUG"},
            "ingestion-worker": {"ECHOSTATS_LOG_LEVEL": "WARNING"},
        },
    )
    service = stack.process_env("ingestion")
    worker = stack.process_env("ingestion-worker")
    # The service's settings and overrides, its own metrics port, its own overrides last.
    assert worker["ECHOSTATS_GRPC_PORT"] == service["ECHOSTATS_GRPC_PORT"] == "27111"
    assert worker["ECHOSTATS_MONGODB_URI"] == service["ECHOSTATS_MONGODB_URI"]
    assert worker["ECHOSTATS_QUEUE_CLAIM_IDLE_MS"] == "2000"
    assert worker["ECHOSTATS_METRICS_PORT"] == "27133"
    assert service["ECHOSTATS_METRICS_PORT"] == "27132"
    assert worker["ECHOSTATS_LOG_LEVEL"] == "WARNING"
    assert service["ECHOSTATS_LOG_LEVEL"] == "DEBUG"
    assert "ingestion-worker" in stack.components


def test_the_worker_starts_after_the_services() -> None:
    tier_of = {name: index for index, tier in enumerate(TIERS) for name in tier}
    assert all(tier_of["ingestion-worker"] > tier_of[service] for service in SERVICES)
