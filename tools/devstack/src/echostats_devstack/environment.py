"""The environment each stack process is started with (ECHOSTATS_* settings, per component).

Precedence, lowest first: the parent environment, the stack's shared settings, the
component's own settings (its listening ports), the caller's global overrides, the
caller's overrides for that component.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from echostats_devstack.components import SERVICES, env_key
from echostats_devstack.ports import LOOPBACK, StackPorts

DEV_SPOTIFY_CLIENT_ID = "echostats-dev-client"
DEV_SPOTIFY_CLIENT_SECRET = "echostats-dev-secret"  # noqa: S105 - the simulator's dev app


@dataclass(frozen=True)
class StackUrls:
    """Where the stack's components answer, derived from its ports."""

    ports: StackPorts

    @property
    def mongodb_uri(self) -> str:
        """MongoDB URI of FerretDB (direct connection: it is a standalone server)."""
        return f"mongodb://{LOOPBACK}:{self.ports.ferretdb}/?directConnection=true"

    @property
    def redis_url(self) -> str:
        """Redis URL (database 0)."""
        return f"redis://{LOOPBACK}:{self.ports.redis}/0"

    @property
    def simulator_url(self) -> str:
        """Base URL of the Spotify simulator (Accounts and Web API on one server)."""
        return f"http://{LOOPBACK}:{self.ports.simulator}"

    @property
    def gateway_url(self) -> str:
        """Base URL of the main gateway."""
        return f"http://{LOOPBACK}:{self.ports.gateway}"

    @property
    def github_stub_url(self) -> str:
        """Base URL of the GitHub releases stub."""
        return f"http://{LOOPBACK}:{self.ports.github_stub}"

    def service_addr(self, service: str) -> str:
        """`host:port` of a gRPC service."""
        return f"{LOOPBACK}:{self.ports.get(service)}"


def shared_environment(
    ports: StackPorts,
    *,
    environment: str,
    frontend_url: str | None = None,
    github_api_url: str | None = None,
) -> dict[str, str]:
    """Settings every Python process of the stack gets: backends, peers, Spotify, URLs."""
    urls = StackUrls(ports)
    env = {
        "ECHOSTATS_ENVIRONMENT": environment,
        "ECHOSTATS_LOG_LEVEL": "INFO",
        "ECHOSTATS_MONGODB_URI": urls.mongodb_uri,
        "ECHOSTATS_REDIS_URL": urls.redis_url,
        "ECHOSTATS_SPOTIFY_ACCOUNTS_URL": urls.simulator_url,
        "ECHOSTATS_SPOTIFY_API_URL": urls.simulator_url,
        "ECHOSTATS_SPOTIFY_CLIENT_ID": DEV_SPOTIFY_CLIENT_ID,
        "ECHOSTATS_SPOTIFY_CLIENT_SECRET": DEV_SPOTIFY_CLIENT_SECRET,
        "ECHOSTATS_SPOTIFY_REDIRECT_URI": f"{urls.gateway_url}/api/v1/auth/callback",
        "ECHOSTATS_FRONTEND_URL": frontend_url or urls.gateway_url,
    }
    for service in SERVICES:
        env[f"ECHOSTATS_{env_key(service)}_ADDR"] = urls.service_addr(service)
    # Unset means the services' own default (the real api.github.com), as in make dev.
    if github_api_url:
        env["ECHOSTATS_GITHUB_API_URL"] = github_api_url
    return env


def service_environment(port: int, metrics_port: int) -> dict[str, str]:
    """A gRPC service's own listening addresses."""
    return {
        "ECHOSTATS_GRPC_HOST": LOOPBACK,
        "ECHOSTATS_GRPC_PORT": str(port),
        "ECHOSTATS_METRICS_HOST": LOOPBACK,
        "ECHOSTATS_METRICS_PORT": str(metrics_port),
    }


def gateway_environment(port: int, metrics_port: int) -> dict[str, str]:
    """A gateway's own listening addresses (metrics stay off the public port)."""
    return {
        "ECHOSTATS_GATEWAY_HOST": LOOPBACK,
        "ECHOSTATS_GATEWAY_PORT": str(port),
        "ECHOSTATS_METRICS_HOST": LOOPBACK,
        "ECHOSTATS_METRICS_PORT": str(metrics_port),
    }


def process_environment(
    *,
    parent: Mapping[str, str],
    shared: Mapping[str, str],
    own: Mapping[str, str],
    global_overrides: Mapping[str, str] | None = None,
    component_overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Merge the layers into the environment of one child process."""
    env = dict(parent)
    env.update(shared)
    env.update(own)
    # Unbuffered output, so log lines reach <run dir>/logs/<name>.log at once and a test
    # grepping for a request id right after a response finds it.
    env["PYTHONUNBUFFERED"] = "1"
    env.update(global_overrides or {})
    env.update(component_overrides or {})
    return env
