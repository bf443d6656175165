"""Settings of the gateway."""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import Field, field_validator

from echostats_platform.settings import (
    CommonSettings,
    CsvList,
    ServiceAddresses,
)


class GatewaySettings(CommonSettings, ServiceAddresses):
    """Everything the gateway reads from the environment (sessions are verified by auth)."""

    gateway_host: str = "0.0.0.0"
    gateway_port: int = Field(default=8000, ge=1, le=65535)
    frontend_url: str = "http://localhost:3000"
    # Browser origins allowed by CORS; defaults to the frontend's origin.
    cors_origins: CsvList = Field(default_factory=list)
    rate_limit_requests: int = Field(default=100, ge=1)
    rate_limit_window_seconds: int = Field(default=60, ge=1)
    # Peers whose X-Forwarded-For is believed (CIDRs); nobody by default.
    trusted_proxies: CsvList = Field(default_factory=list)
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    # Import, analytics refresh, rollup build and sync trigger get the longer budget.
    slow_request_timeout_seconds: float = Field(default=120.0, gt=0)
    # Retry-After sent with 503s when a dependency is down.
    unavailable_retry_after_seconds: int = Field(default=5, ge=1)
    # Largest privacy-export upload accepted by POST /history/import (512 MiB).
    import_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    readiness_timeout_seconds: float = Field(default=1.5, gt=0)
    session_cookie_name: str = "echostats_session"
    oauth_binding_cookie_name: str = "echostats_oauth_binding"
    # None means "on in development/demo/test, off in production"; auth enforces it too.
    dev_login_enabled: bool | None = None

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @property
    def session_cookie_secure(self) -> bool:
        """Secure cookies everywhere except explicit development."""
        return self.environment.value != "development"

    @property
    def dev_login_allowed(self) -> bool:
        """Whether /auth/dev-login is served (never in production)."""
        if not self.environment.allows_dev_defaults:
            return False
        return self.dev_login_enabled is not False

    @property
    def allowed_origins(self) -> list[str]:
        """CORS origins: configured ones, else the frontend's origin."""
        return self.cors_origins or [self.frontend_url.rstrip("/")]

    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The trusted proxies as networks."""
        return [ipaddress.ip_network(item, strict=False) for item in self.trusted_proxies]
