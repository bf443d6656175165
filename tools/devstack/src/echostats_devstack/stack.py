"""LocalStack: the whole EchoStats stack as real processes on loopback, in dependency order.

FerretDB, Redis, the Spotify simulator and the GitHub stub start first, then the six gRPC
services in parallel, then the gateway and the background workers (the ingestion worker);
each must pass its readiness probe before the next tier starts. Stopping walks the tiers
backwards. Fault hooks stop, kill and restart single components on the same port with the
same data, for the fault tests (e.g. kill the ingestion worker mid-job).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from types import TracebackType

from echostats_devstack import lifecycle, probes
from echostats_devstack.components import (
    ALL_COMPONENTS,
    GATEWAY_MODULE,
    PYTHON_COMPONENTS,
    SERVICE_MODULES,
    SERVICES,
    SIMULATOR_MODULE,
    TIERS,
    WORKER_MODULES,
    is_extra_gateway,
)
from echostats_devstack.environment import (
    StackUrls,
    gateway_environment,
    process_environment,
    service_environment,
    shared_environment,
)
from echostats_devstack.errors import ComponentStartError, StackError
from echostats_devstack.github_stub import GithubStub
from echostats_devstack.lifecycle import PidFile
from echostats_devstack.paths import ensure_ferretdb_binary, find_repo_root
from echostats_devstack.ports import LOOPBACK, StackPorts, pick_free_port
from echostats_devstack.process import Component, LaunchSpec, ProcessComponent
from echostats_platform.settings import Environment

# Seconds until a component must answer its readiness probe. Python processes get longer:
# the first start after `uv sync` compiles bytecode for every import.
STARTUP_TIMEOUTS: dict[str, float] = {"ferretdb": 30.0, "redis": 15.0, "github-stub": 5.0}
PYTHON_STARTUP_TIMEOUT = 60.0
DEFAULT_STOP_TIMEOUT = 10.0


class LocalStack:
    """The local stack in `run_dir` (data in `<run_dir>/<component>`, logs in `<run_dir>/logs`)."""

    def __init__(
        self,
        run_dir: Path | str,
        *,
        ports: StackPorts | None = None,
        environment: str = "test",
        env: Mapping[str, str] | None = None,
        component_env: Mapping[str, Mapping[str, str]] | None = None,
        components: Iterable[str] | None = None,
        frontend_url: str | None = None,
        startup_timeout: float | None = None,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        python: str | None = None,
        repo_root: Path | None = None,
    ) -> None:
        """Configure the stack; nothing starts before `start()`.

        `ports` with 0 entries (or None) means free ports are picked at start. `env`
        overrides the environment of every Python process, `component_env[name]` that of
        one component. `components` starts a subset (default: all of ALL_COMPONENTS).
        """
        self.run_dir = Path(run_dir).resolve()
        self.environment = Environment(environment).value
        self._ports = ports.copy() if ports is not None else StackPorts()
        self._env = dict(env or {})
        self._component_env = {name: dict(values) for name, values in (component_env or {}).items()}
        selected = set(ALL_COMPONENTS if components is None else components)
        unknown = selected - ALL_COMPONENTS
        if unknown:
            raise ValueError(
                f"unknown components {sorted(unknown)}; known: {sorted(ALL_COMPONENTS)}"
            )
        self._selected = frozenset(selected)
        self._frontend_url = frontend_url
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._python = python or sys.executable
        self._repo_root = repo_root
        self._pidfile = PidFile(self.run_dir)
        self._components: dict[str, Component] = {}
        self._extra_ports: dict[str, int] = {}
        self._extra_count = 0
        self._ports_moved = False
        self._started = False
        self._lock = threading.RLock()
        self._github_stub: GithubStub | None = None
        self._build_components()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LocalStack:
        """Start every selected component in dependency order; on any failure stop all and raise."""
        with self._lock:
            if self._started:
                return self
            lifecycle.register(self)
            try:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                self._pidfile.claim()
                self._resolve_ports()
                self._check_prerequisites()
                for tier in TIERS:
                    names = [name for name in tier if name in self._selected]
                    self._ports_moved = False
                    self._start_tier(names)
                    if self._ports_moved and len(names) > 1:
                        # A component of this tier moved to another port after its siblings
                        # had been told the old one; restart them so they see the new one.
                        self._restart_stale(names)
                    for name in names:
                        self._pin(name)
                self._started = True
            except BaseException:
                self.stop()
                raise
            return self

    def stop(self) -> None:
        """Stop everything in reverse order: SIGTERM, wait, then SIGKILL stragglers."""
        with self._lock:
            order = [
                [name for name in self._components if is_extra_gateway(name)],
                *([name for name in tier if name in self._components] for tier in reversed(TIERS)),
            ]
            try:
                for names in order:
                    self._stop_group([self._components[name] for name in names])
            except KeyboardInterrupt:
                # A second Ctrl-C while stopping: no more waiting, kill what is left.
                for component in self._components.values():
                    with contextlib.suppress(Exception):
                        component.kill()
                raise
            finally:
                self._started = False
                lifecycle.unregister(self)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- fault hooks -------------------------------------------------------------------------

    def stop_component(self, name: str) -> None:
        """Stop one component gracefully (SIGTERM, then SIGKILL after the stop timeout)."""
        self._component(name).stop(self._stop_timeout)

    def start_component(self, name: str) -> None:
        """Start a stopped component again, on the same port with the same data."""
        self._component(name).start()

    def kill_component(self, name: str) -> None:
        """SIGKILL one component (no graceful shutdown), e.g. a worker mid-import."""
        self._component(name).kill()

    def restart_component(self, name: str) -> None:
        """Stop and start one component, on the same port with the same data."""
        self.stop_component(name)
        self.start_component(name)

    def start_extra_gateway(self, env_overrides: Mapping[str, str] | None = None) -> str:
        """Start one more gateway on a free port against the same services; return its URL."""
        with self._lock:
            if not self._started:
                raise StackError("start the stack before adding gateways")
            self._extra_count += 1
            # Names are never reused, so each extra gateway keeps a log of its own.
            name = f"gateway-{self._extra_count + 1}"
            self._extra_ports[name] = pick_free_port()
            self._ports.metrics[name] = pick_free_port()
            # Like a replica of the main gateway (its overrides too), plus the caller's.
            self._component_env[name] = {
                **self._component_env.get("gateway", {}),
                **(env_overrides or {}),
            }
            component = self._python_component(
                name,
                module=GATEWAY_MODULE,
                probe=lambda: probes.http_ok(f"{self._url_of(name)}/api/health"),
                port=lambda: self._extra_ports[name],
                repick=lambda: self._extra_ports.__setitem__(name, pick_free_port()),
            )
            self._components[name] = component
            try:
                component.start()
            except BaseException:
                # Not kept: a gateway that never came up is not part of the stack.
                del self._components[name]
                raise
            component.pin_port()
            return self._url_of(name)

    # -- what tests look at ------------------------------------------------------------------

    @property
    def ports(self) -> StackPorts:
        """The ports in use (free ones are filled in by `start()`)."""
        return self._ports

    @property
    def log_dir(self) -> Path:
        """Where `<name>.log` files go."""
        return self.run_dir / "logs"

    def log_path(self, name: str) -> Path:
        """The log file of a component (stdout and stderr of its process)."""
        if name not in self._components and not (name in ALL_COMPONENTS or is_extra_gateway(name)):
            raise KeyError(f"unknown component {name!r}")
        return self.log_dir / f"{name}.log"

    @property
    def gateway_url(self) -> str:
        """Base URL of the main gateway."""
        return StackUrls(self._ports).gateway_url

    @property
    def frontend_url(self) -> str:
        """Where the login callback sends the browser; also the gateway's CORS origin."""
        return self._frontend_url or self.gateway_url

    @property
    def simulator_url(self) -> str:
        """Base URL of the Spotify simulator."""
        return StackUrls(self._ports).simulator_url

    @property
    def mongodb_uri(self) -> str:
        """MongoDB URI of FerretDB (with directConnection=true)."""
        return StackUrls(self._ports).mongodb_uri

    @property
    def redis_url(self) -> str:
        """Redis URL."""
        return StackUrls(self._ports).redis_url

    @property
    def service_addrs(self) -> dict[str, str]:
        """`host:port` of each gRPC service, by name (auth, ..., player-proxy, observability)."""
        urls = StackUrls(self._ports)
        return {service: urls.service_addr(service) for service in SERVICES}

    @property
    def github_stub_url(self) -> str | None:
        """Base URL of the GitHub releases stub (None when it is not part of this stack)."""
        return self._github_stub.url if self._github_stub is not None else None

    @property
    def github_stub(self) -> GithubStub | None:
        """The GitHub stub itself (tests may change `.release` or read `.requests`)."""
        return self._github_stub

    @property
    def components(self) -> list[str]:
        """Names of the components this stack manages (extra gateways included)."""
        return list(self._components)

    def is_running(self, name: str) -> bool:
        """Whether a component is up."""
        return self._component(name).running

    def processes_alive(self) -> dict[str, bool]:
        """Whether each component is up, by name."""
        return {name: component.running for name, component in self._components.items()}

    def dead_components(self) -> list[str]:
        """Components that died on their own since they were started."""
        return [name for name, c in self._components.items() if c.exited_unexpectedly]

    def pid(self, name: str) -> int | None:
        """Process id of a component's process (None for the in-process stub or when stopped)."""
        component = self._component(name)
        return component.pid if isinstance(component, ProcessComponent) else None

    def shared_env(self) -> dict[str, str]:
        """The ECHOSTATS_* settings every Python process of the stack receives."""
        return shared_environment(
            self._ports,
            environment=self.environment,
            frontend_url=self.frontend_url,
            github_api_url=self.github_stub_url,
        )

    def process_env(self, name: str) -> dict[str, str]:
        """The full environment a Python component is (or would be) started with."""
        own: dict[str, str] = {}
        component_overrides = self._component_env.get(name)
        if name in SERVICE_MODULES:
            own = service_environment(self._ports.get(name), self._ports.metrics.get(name, 0))
        elif name in WORKER_MODULES:
            # The same environment as its service (overrides included), with its own
            # metrics port; its own overrides come last.
            service = WORKER_MODULES[name][1]
            own = service_environment(self._ports.get(service), self._ports.metrics.get(name, 0))
            component_overrides = {
                **self._component_env.get(service, {}),
                **self._component_env.get(name, {}),
            }
        elif name == "gateway":
            own = gateway_environment(self._ports.gateway, self._ports.metrics.get(name, 0))
        elif is_extra_gateway(name):
            own = gateway_environment(self._extra_ports[name], self._ports.metrics[name])
        return process_environment(
            parent=_parent_environ(),
            shared=self.shared_env(),
            own=own,
            global_overrides=self._env,
            component_overrides=component_overrides,
        )

    def __repr__(self) -> str:
        return f"LocalStack({str(self.run_dir)!r}, environment={self.environment!r})"

    # -- internals ---------------------------------------------------------------------------

    def _component(self, name: str) -> Component:
        try:
            return self._components[name]
        except KeyError:
            raise KeyError(
                f"component {name!r} is not part of this stack; it has {sorted(self._components)}"
            ) from None

    def _url_of(self, name: str) -> str:
        return f"http://{LOOPBACK}:{self._extra_ports[name]}"

    def _build_components(self) -> None:
        urls = self._urls
        for name in (n for tier in TIERS for n in tier if n in self._selected):
            if name == "ferretdb":
                self._components[name] = self._process_component(
                    name,
                    spec=self._ferretdb_spec,
                    probe=lambda: probes.mongo_ping(urls().mongodb_uri),
                )
            elif name == "redis":
                self._components[name] = self._process_component(
                    name, spec=self._redis_spec, probe=lambda: probes.redis_ping(urls().redis_url)
                )
            elif name == "github-stub":
                self._github_stub = GithubStub(
                    port=self._ports.github_stub, log_path=self.log_dir / "github-stub.log"
                )
                self._components[name] = self._github_stub
            elif name == "simulator":
                self._components[name] = self._python_component(
                    name,
                    module=SIMULATOR_MODULE,
                    extra_args=lambda: ["--host", LOOPBACK, "--port", str(self._ports.simulator)],
                    probe=lambda: _simulator_probe(urls().simulator_url),
                )
            elif name in SERVICE_MODULES:
                self._components[name] = self._python_component(
                    name,
                    module=SERVICE_MODULES[name],
                    probe=self._service_probe(name),
                )
            elif name == "gateway":
                self._components[name] = self._python_component(
                    name,
                    module=GATEWAY_MODULE,
                    probe=lambda: probes.http_ok(f"{urls().gateway_url}/api/health"),
                )
            elif name in WORKER_MODULES:
                self._components[name] = self._worker_component(name)

    def _worker_component(self, name: str) -> ProcessComponent:
        # No port of its own: the metrics endpoint is both its only listener and its
        # readiness probe (the worker opens it once its queues are set up).
        def metrics_port() -> int:
            return self._ports.metrics[name]

        def repick() -> None:
            self._ports.metrics[name] = pick_free_port()

        return self._python_component(
            name,
            module=WORKER_MODULES[name][0],
            probe=lambda: probes.http_ok(f"http://{LOOPBACK}:{metrics_port()}/metrics"),
            port=metrics_port,
            repick=repick,
        )

    def _urls(self) -> StackUrls:
        # Built on demand: a port may move (EADDRINUSE retry) between two launches.
        return StackUrls(self._ports)

    def _service_probe(self, name: str) -> Callable[[], probes.Probe]:
        return lambda: probes.grpc_serving(self._urls().service_addr(name))

    def _process_component(
        self,
        name: str,
        *,
        spec: Callable[[], LaunchSpec],
        probe: Callable[[], probes.Probe],
        port: Callable[[], int] | None = None,
        repick: Callable[[], None] | None = None,
    ) -> ProcessComponent:
        timeout = self._startup_timeout or STARTUP_TIMEOUTS.get(name, PYTHON_STARTUP_TIMEOUT)
        return ProcessComponent(
            name,
            log_path=self.log_dir / f"{name}.log",
            spec=spec,
            probe=probe,
            startup_timeout=timeout,
            stop_timeout=self._stop_timeout,
            port=port or (lambda: self._ports.get(name)),
            repick_port=repick or (lambda: self._repick(name)),
            on_change=lambda n, proc: self._pidfile.record(n, proc.pid if proc else None),
        )

    def _python_component(
        self,
        name: str,
        *,
        module: str,
        probe: Callable[[], probes.Probe],
        extra_args: Callable[[], list[str]] | None = None,
        port: Callable[[], int] | None = None,
        repick: Callable[[], None] | None = None,
    ) -> ProcessComponent:
        def spec() -> LaunchSpec:
            argv = [self._python, "-m", module, *(extra_args() if extra_args else [])]
            return LaunchSpec(argv=argv, env=self.process_env(name), cwd=self.run_dir)

        return self._process_component(name, spec=spec, probe=probe, port=port, repick=repick)

    def _ferretdb_spec(self) -> LaunchSpec:
        repo_root = self._repo_root or find_repo_root()
        argv = [
            str(ensure_ferretdb_binary(repo_root)),
            "--listen-addr",
            f"{LOOPBACK}:{self._ports.ferretdb}",
            "--data-dir",
            str(self.run_dir / "ferretdb"),
        ]
        # The embedded FerretDB already has telemetry off and locked; DO_NOT_TRACK keeps it
        # so should the launcher ever switch to the full CLI.
        env = dict(_parent_environ(), DO_NOT_TRACK="1")
        return LaunchSpec(argv=argv, env=env, cwd=self.run_dir)

    def _redis_spec(self) -> LaunchSpec:
        data_dir = self.run_dir / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            _redis_server(),
            "--port",
            str(self._ports.redis),
            "--bind",
            LOOPBACK,
            # No persistence: Redis holds only short-lived state here (OAuth states, rate
            # limits, streams in flight), and a restart on a clean slate is what tests want.
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data_dir),
            "--protected-mode",
            "yes",
        ]
        return LaunchSpec(argv=argv, env=_parent_environ(), cwd=self.run_dir)

    def _resolve_ports(self) -> None:
        for name in ALL_COMPONENTS - set(WORKER_MODULES):
            if self._ports.get(name) == 0:
                self._ports.set(name, pick_free_port())
            elif name in self._selected and isinstance(self._components[name], ProcessComponent):
                # A port the caller fixed stays fixed: others may have been told about it.
                self._pin(name)
        for name in PYTHON_COMPONENTS - {"simulator"}:
            if not self._ports.metrics.get(name):
                self._ports.metrics[name] = pick_free_port()
        if self._github_stub is not None:
            self._github_stub.port = self._ports.github_stub

    def _repick(self, name: str) -> None:
        self._ports.set(name, pick_free_port())
        self._ports_moved = True

    def _pin(self, name: str) -> None:
        component = self._components.get(name)
        if isinstance(component, ProcessComponent):
            component.pin_port()

    def _check_prerequisites(self) -> None:
        if "redis" in self._selected:
            _redis_server()
        if "ferretdb" in self._selected:
            ensure_ferretdb_binary(self._repo_root or find_repo_root())

    def _start_tier(self, names: list[str]) -> None:
        if not names:
            return
        if len(names) == 1:
            self._start_checked(names[0])
            return
        errors: list[BaseException] = []
        pool = ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="devstack-start")
        try:
            futures = [pool.submit(self._start_checked, name) for name in names]
            _done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            if pending:
                # One failed: the stack will not come up, so the others need not finish.
                for name in names:
                    self._components[name].cancel()
                wait(pending)
            errors = [exc for future in futures if (exc := future.exception()) is not None]
        except BaseException:
            for name in names:
                self._components[name].cancel()
            raise
        finally:
            pool.shutdown(wait=True)
        real = [e for e in errors if not getattr(e, "cancelled", False)] or errors
        if len(real) == 1:
            raise real[0]
        if real:
            raise StackError("\n\n".join(str(e) for e in real)) from real[0]

    def _start_checked(self, name: str) -> None:
        component = self._components[name]
        try:
            component.start()
        except ComponentStartError as exc:
            clash = "already in use" in exc.reason
            # Workers listen only on a picked metrics port, which no variable fixes.
            if (
                name not in WORKER_MODULES
                and isinstance(component, ProcessComponent)
                and (clash or component.address_in_use())
            ):
                # Only fixed ports get here (free ones move on a clash): say how to move it.
                variable = f"DEVSTACK_{name.replace('-', '_').upper()}_PORT"
                port = self._ports.get(name)
                reason = exc.reason if clash else f"{exc.reason}: port {port} is taken"
                raise ComponentStartError(
                    name,
                    f"{reason}; set {variable} to use another port, or stop what holds it",
                    exc.log_path,
                    exc.log_tail,
                ) from exc
            raise
        except OSError as exc:
            # The in-process stub binding a taken fixed port ends up here.
            raise StackError(f"component {name!r} failed to start: {exc}") from exc

    def _restart_stale(self, names: list[str]) -> None:
        for name in names:
            component = self._components[name]
            if not isinstance(component, ProcessComponent):
                continue
            launched = component.launched_spec
            if launched is not None and launched.env != self.process_env(name):
                component.stop(self._stop_timeout)
                component.start()

    def _stop_group(self, components: list[Component]) -> None:
        for component in components:
            component.cancel()
        for component in components:
            with contextlib.suppress(Exception):
                component.begin_stop()
        for component in components:
            with contextlib.suppress(Exception):
                component.finish_stop(self._stop_timeout)


def _parent_environ() -> dict[str, str]:
    # Read at each launch, so a restarted component sees the environment of that moment.
    return dict(os.environ)


def _redis_server() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise StackError("redis-server is not on PATH; install it with `make tools`")
    return path


def _simulator_probe(base_url: str) -> probes.Probe:
    # /_sim/requests is the simulator's own introspection endpoint. A 404 there still proves
    # an HTTP server is answering, which is all readiness needs from an older simulator.
    return probes.http_ok(f"{base_url}/_sim/requests", also_ready_on=frozenset({404}))
