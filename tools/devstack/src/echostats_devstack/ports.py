"""The stack's loopback ports: which component listens where, and how free ports are picked."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"

# Ports this process has already handed out. The kernel may return a port again as soon as
# the probing socket is closed, so without this two components picked one after the other
# could be given the same port before either has bound it.
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def pick_free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on `host` that is free now and not handed out before by this process."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        with _handed_out_lock:
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError(f"could not find a free port on {host} that was not handed out already")


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether a listener could bind `host:port` right now (SO_REUSEADDR, like servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class StackPorts:
    """Listening ports per component; 0 means "pick a free port when the stack starts".

    Field names are the component names with `-` replaced by `_`. `metrics` holds the
    internal Prometheus port of each Python process by component name.
    """

    ferretdb: int = 0
    redis: int = 0
    simulator: int = 0
    github_stub: int = 0
    auth: int = 0
    ingestion: int = 0
    catalog: int = 0
    analytics: int = 0
    player_proxy: int = 0
    observability: int = 0
    gateway: int = 0
    metrics: dict[str, int] = field(default_factory=dict)

    @classmethod
    def development(cls, environ: Mapping[str, str] | None = None) -> StackPorts:
        """Fixed ports for `make dev`, each overridable by DEVSTACK_<COMPONENT>_PORT."""
        environ = os.environ if environ is None else environ
        # The gRPC defaults match ServiceAddresses in echostats_platform.settings, so a
        # developer's grpcurl or a process started by hand finds the services there.
        defaults = {
            "ferretdb": 27017,
            "redis": 6379,
            "simulator": 8099,
            "auth": 50051,
            "ingestion": 50052,
            "catalog": 50053,
            "analytics": 50054,
            "player_proxy": 50055,
            "observability": 50056,
            "gateway": 8000,
        }
        values: dict[str, int] = {}
        for key, default in defaults.items():
            raw = environ.get(f"DEVSTACK_{key.upper()}_PORT", "").strip()
            try:
                values[key] = int(raw) if raw else default
            except ValueError as exc:
                raise ValueError(f"DEVSTACK_{key.upper()}_PORT must be a port number") from exc
            if not 0 <= values[key] <= 65535:
                raise ValueError(f"DEVSTACK_{key.upper()}_PORT must be between 0 and 65535")
        return cls(**values)

    def get(self, component: str) -> int:
        """The listening port of a component (0 while not picked yet)."""
        return int(getattr(self, _attr(component)))

    def set(self, component: str, port: int) -> None:
        """Record the listening port of a component."""
        setattr(self, _attr(component), port)

    def copy(self) -> StackPorts:
        """An independent copy (the metrics mapping included)."""
        return dataclasses.replace(self, metrics=dict(self.metrics))


def _attr(component: str) -> str:
    name = component.replace("-", "_")
    if name == "metrics" or name not in {f.name for f in dataclasses.fields(StackPorts)}:
        raise KeyError(f"no listening port is defined for component {component!r}")
    return name
