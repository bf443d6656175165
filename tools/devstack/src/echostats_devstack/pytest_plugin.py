"""pytest plugin: one real Redis and one real FerretDB per test session, run by the devstack.

Registered once, in the repository's root conftest.py::

    pytest_plugins = ["echostats_devstack.pytest_plugin"]

`redis_server` and `ferretdb_server` each drive a single-component `LocalStack`, so tests
get the same launch command, readiness probe, log file and same-port restart that
`make dev` and the integration stack use. A server starts the first time a test asks for
it and stops when the session ends.

The servers are shared by every test of the session. A test that needs a clean slate
removes its own keys (or uses a key prefix of its own) or drops its own database; it
does not start another server. Outage tests call `.stop()` and then `.start()` in a
`finally`: the server comes back on the same port, Redis empty (it keeps no data on
disk), FerretDB with its data.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, TypeVar

import pytest

from echostats_devstack.paths import ferretdb_binary, find_repo_root
from echostats_devstack.stack import LocalStack


class BackingServer:
    """One backing server of the session: a `LocalStack` holding just that component."""

    component: ClassVar[str]

    def __init__(self, run_dir: Path) -> None:
        """Configure the server in `run_dir` (logs in `<run_dir>/logs`); nothing starts yet."""
        self._stack = LocalStack(run_dir, components={self.component})
        self._opened = False

    @property
    def port(self) -> int:
        """The loopback port it listens on (kept across stop/start)."""
        return self._stack.ports.get(self.component)

    @property
    def running(self) -> bool:
        """Whether the server process is up."""
        return self._opened and self._stack.is_running(self.component)

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self._stack.log_path(self.component)

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it answers."""
        if not self._opened:
            # The first start picks the free port; later ones reuse it.
            self._stack.start()
            self._opened = True
        else:
            self._stack.start_component(self.component)

    def stop(self) -> None:
        """Stop the server gracefully, for an outage test; `start()` brings it back."""
        if self._opened:
            self._stack.stop_component(self.component)

    def close(self) -> None:
        """Stop the server for good (end of session)."""
        self._stack.stop()
        self._opened = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(port={self.port}, running={self.running})"


class RedisServer(BackingServer):
    """A real `redis-server` on a free loopback port, without persistence."""

    component = "redis"

    @property
    def url(self) -> str:
        """Redis URL of database 0."""
        return self._stack.redis_url


class FerretDBServer(BackingServer):
    """A real FerretDB (SQLite backend): a MongoDB-wire server on a free loopback port."""

    component = "ferretdb"

    @property
    def uri(self) -> str:
        """MongoDB URI with directConnection=true (it is a standalone server)."""
        return self._stack.mongodb_uri

    @property
    def data_dir(self) -> Path:
        """The directory of its SQLite files (one per database)."""
        return self._stack.run_dir / "ferretdb"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The session's redis-server (skips when redis-server is not installed)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (make tools installs it)")
    server = RedisServer(tmp_path_factory.mktemp("redis-server"))
    yield from _running(server)


@pytest.fixture(scope="session")
def ferretdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerretDBServer]:
    """The session's FerretDB (built with Go on first use; skips without Go or a binary)."""
    if shutil.which("go") is None and not ferretdb_binary(find_repo_root()).is_file():
        pytest.skip("FerretDB needs Go or a built launcher (make tools ferretdb)")
    server = FerretDBServer(tmp_path_factory.mktemp("ferretdb-server"))
    yield from _running(server)


_Server = TypeVar("_Server", bound=BackingServer)


def _running(server: _Server) -> Iterator[_Server]:
    # Stopped even when the session is interrupted; LocalStack's atexit and SIGTERM nets
    # cover a pytest that dies without running fixture teardown.
    try:
        server.start()
        yield server
    finally:
        server.close()
