"""The names of the stack's components, what each one runs, and the order they start in."""

from __future__ import annotations

# gRPC services by component name (as in ServiceAddresses.service_targets) -> Python module.
SERVICE_MODULES: dict[str, str] = {
    "auth": "auth_service",
    "ingestion": "ingestion_service",
    "catalog": "catalog_service",
    "analytics": "analytics_service",
    "player-proxy": "player_proxy_service",
    "observability": "observability_service",
}
SERVICES: tuple[str, ...] = tuple(SERVICE_MODULES)

# Background workers by component name -> (Python module, the service whose environment
# and component overrides they share). A worker listens on no port of its own: its
# readiness probe is its metrics endpoint.
WORKER_MODULES: dict[str, tuple[str, str]] = {
    "ingestion-worker": ("ingestion_service.worker", "ingestion"),
}
WORKERS: tuple[str, ...] = tuple(WORKER_MODULES)

SIMULATOR_MODULE = "spotify_simulator"
GATEWAY_MODULE = "gateway"

# Start order, one tier at a time; the components of a tier do not depend on each other,
# so they start in parallel. Stopping walks the tiers backwards.
TIERS: tuple[tuple[str, ...], ...] = (
    ("ferretdb", "redis", "simulator", "github-stub"),
    SERVICES,
    # Workers call the services (ledger, tokens) and the gateway only calls services, so
    # both start once every service is up, side by side.
    (*WORKERS, "gateway"),
)
ALL_COMPONENTS: frozenset[str] = frozenset(name for tier in TIERS for name in tier)

# Python processes receive the ECHOSTATS_* environment and a metrics port of their own.
PYTHON_COMPONENTS: frozenset[str] = frozenset({"simulator", "gateway", *SERVICES, *WORKERS})


def env_key(component: str) -> str:
    """The upper-case name used in environment variables (`player-proxy` -> `PLAYER_PROXY`)."""
    return component.replace("-", "_").upper()


def is_extra_gateway(name: str) -> bool:
    """Whether `name` is one of the additional gateways (`gateway-2`, `gateway-3`, ...)."""
    prefix, _, number = name.partition("-")
    return prefix == "gateway" and number.isdigit()
