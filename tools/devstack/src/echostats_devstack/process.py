"""One supervised child process: launch with its log file, wait for readiness, stop, kill.

Every child runs in a session (and process group) of its own, so a signal reaches the
workers it spawned too, and Ctrl-C in the terminal reaches only the supervisor, which then
stops the children in order.
"""

from __future__ import annotations

import abc
import contextlib
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from echostats_devstack.errors import ComponentStartError
from echostats_devstack.ports import port_is_free
from echostats_devstack.probes import Probe

POLL_INTERVAL_SECONDS = 0.1
DEFAULT_STOP_TIMEOUT_SECONDS = 10.0
LOG_TAIL_LINES = 40
# How often a start is tried on another port when the picked one was taken meanwhile.
PORT_ATTEMPTS = 3

# What FerretDB, redis-server, uvicorn and gRPC print when the port is taken.
_ADDRESS_IN_USE = re.compile(
    r"address already in use|failed to bind to address|errno 98\b", re.IGNORECASE
)


@dataclass
class LaunchSpec:
    """What to run: the command line, its full environment and working directory."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path | None = None


class Component(abc.ABC):
    """Something the stack starts and stops: a child process or an in-process server."""

    name: str
    log_path: Path

    @abc.abstractmethod
    def start(self) -> None:
        """Start it and return once it is ready (no-op when already running)."""

    @abc.abstractmethod
    def begin_stop(self) -> None:
        """Ask it to stop without waiting (so a tier of components stops in parallel)."""

    @abc.abstractmethod
    def finish_stop(self, timeout: float | None = None) -> None:
        """Wait for it to stop, forcing it after `timeout` seconds."""

    @abc.abstractmethod
    def kill(self) -> None:
        """Stop it at once, without a graceful shutdown."""

    @property
    @abc.abstractmethod
    def running(self) -> bool:
        """Whether it is up (for a process: started and not exited)."""

    @property
    def exited_unexpectedly(self) -> bool:
        """Whether it was started and has since died without being asked to stop."""
        return False

    def cancel(self) -> None:  # noqa: B027 - optional hook, a no-op for most components
        """Make a start that is in progress (in another thread) give up soon."""

    def stop(self, timeout: float | None = None) -> None:
        """Stop it gracefully, forcing it after `timeout` seconds."""
        self.begin_stop()
        self.finish_stop(timeout)


PidListener = Callable[[str, "subprocess.Popen[bytes] | None"], None]


class ProcessComponent(Component):
    """A child process with a log file, a readiness probe and an orderly stop."""

    def __init__(
        self,
        name: str,
        *,
        log_path: Path,
        spec: Callable[[], LaunchSpec],
        probe: Callable[[], Probe],
        startup_timeout: float,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT_SECONDS,
        port: Callable[[], int] | None = None,
        repick_port: Callable[[], None] | None = None,
        on_change: PidListener | None = None,
    ) -> None:
        """`spec`, `probe` and `port` are called at each launch, so they see a re-picked port."""
        self.name = name
        self.log_path = log_path
        self._spec = spec
        self._probe = probe
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._port = port
        self._repick_port = repick_port
        self._on_change = on_change
        # The current child; None before the first launch and after an orderly stop or kill.
        self._proc: subprocess.Popen[bytes] | None = None
        self._last_returncode: int | None = None
        self._launched: LaunchSpec | None = None
        self._log_offset = 0
        self._truncate_log = True
        # Set by stop/cancel without taking the lock, so a start waiting in another thread
        # gives up at its next poll instead of holding the lock until its timeout.
        self._cancelled = threading.Event()
        self._lock = threading.RLock()

    # -- state ---------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """Process id of the current child, or None once it was stopped."""
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """Exit code once the child has exited (negative: killed by that signal)."""
        return self._proc.poll() if self._proc is not None else self._last_returncode

    @property
    def running(self) -> bool:
        """Whether the child was started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def exited_unexpectedly(self) -> bool:
        """Whether the child died on its own (crash, or killed from outside)."""
        return self._proc is not None and self._proc.poll() is not None

    @property
    def launched_spec(self) -> LaunchSpec | None:
        """The command and environment of the current (or last) launch."""
        return self._launched

    def pin_port(self) -> None:
        """Never move to another port from now on (others have been told this one)."""
        self._repick_port = None

    # -- start ---------------------------------------------------------------------------

    def start(self) -> None:
        """Launch, wait until the probe succeeds; retry on a fresh port if ours was taken."""
        with self._lock:
            if self.running:
                return
            self._prepare_log()
            # A child that died on its own is reaped and forgotten before the new launch.
            self._kill_now()
            self._cancelled.clear()
            attempts = PORT_ATTEMPTS if self._repick_port is not None else 1
            for attempt in range(1, attempts + 1):
                can_retry = attempt < attempts and self._repick_port is not None
                port = self._port() if self._port is not None else None
                # Checked before the launch because the probe cannot tell our server from
                # whoever holds the port: it would report "ready" for a stranger.
                if port is not None and not port_is_free(port):
                    if can_retry and self._repick_port is not None:
                        self._append_marker(f"port {port} is taken; trying another port")
                        self._repick_port()
                        continue
                    raise self._start_error(f"port {port} is already in use by another process")
                self.launch()
                try:
                    self.wait_ready()
                    return
                except ComponentStartError:
                    # Taken between the check and the bind (another process picked it too).
                    port_taken = self.address_in_use()
                    self._kill_now()
                    if port_taken and can_retry and not self._cancelled.is_set():
                        assert self._repick_port is not None
                        self._append_marker("port was taken; retrying on another port")
                        self._repick_port()
                        continue
                    raise

    def launch(self) -> None:
        """Start the child process (without waiting for readiness)."""
        with self._lock:
            if self.running:
                return
            spec = self._spec()
            self._prepare_log()
            with open(self.log_path, "ab") as log:
                stamp = datetime.now(UTC).isoformat(timespec="seconds")
                log.write(f"--- devstack {stamp}: starting {shlex.join(spec.argv)}\n".encode())
                log.flush()
                self._log_offset = log.tell()
                self._proc = subprocess.Popen(  # noqa: S603 - argv built by the stack
                    spec.argv,
                    env=spec.env,
                    cwd=spec.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
            self._launched = spec
            if self._on_change is not None:
                self._on_change(self.name, self._proc)

    def wait_ready(self, timeout: float | None = None) -> None:
        """Poll the probe until it succeeds; raise with the log tail on exit or timeout."""
        timeout = self.startup_timeout if timeout is None else timeout
        probe = self._probe()
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            proc = self._proc
            if proc is None:
                raise self._start_error("it was not launched")
            code = proc.poll()
            if code is not None:
                raise self._start_error(f"the process exited with code {code} before it was ready")
            if self._cancelled.is_set():
                raise self._start_error(
                    "the stack was asked to stop while it was starting", cancelled=True
                )
            try:
                # Alive after the probe too, or the answer came from someone else's server.
                if probe() and proc.poll() is None:
                    return
                last_error = None
            except Exception as exc:  # any failure of a probe just means "not ready yet"
                last_error = exc
            if time.monotonic() >= deadline:
                detail = f" (last probe error: {last_error!r})" if last_error else ""
                raise self._start_error(f"not ready within {timeout:g}s{detail}")
            time.sleep(POLL_INTERVAL_SECONDS)

    # -- stop ----------------------------------------------------------------------------

    def cancel(self) -> None:
        """Make a start that is in progress give up at its next poll."""
        self._cancelled.set()

    def begin_stop(self) -> None:
        """Send SIGTERM to the child's process group."""
        self._cancelled.set()
        with self._lock:
            if self.running:
                self._signal_group(signal.SIGTERM)

    def finish_stop(self, timeout: float | None = None) -> None:
        """Wait for the child to exit; SIGKILL the group after `timeout` seconds."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            try:
                proc.wait(timeout=self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self._append_marker("did not stop in time; sending SIGKILL")
                self._signal_group(signal.SIGKILL)
                proc.wait()
            self._forget(proc, "stopped")

    def kill(self) -> None:
        """SIGKILL the child's process group and reap it."""
        self._cancelled.set()
        with self._lock:
            self._kill_now()

    def _kill_now(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal_group(signal.SIGKILL)
            proc.wait()
            self._forget(proc, "killed")
        else:
            self._forget(proc, "exited")

    def _forget(self, proc: subprocess.Popen[bytes], what: str) -> None:
        # Workers the child spawned but did not reap would otherwise outlive it. Sent right
        # after the reap, before the group id could be reused by an unrelated process.
        self._signal_group(signal.SIGKILL)
        self._last_returncode = proc.returncode
        self._proc = None
        self._append_marker(f"{what} (exit code {proc.returncode})")
        if self._on_change is not None:
            self._on_change(self.name, None)

    def _signal_group(self, sig: signal.Signals) -> None:
        proc = self._proc
        if proc is None:
            return
        # The child is the leader of its own session, so its process group id is its pid.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    # -- logs ----------------------------------------------------------------------------

    def log_tail(self, lines: int = LOG_TAIL_LINES, *, since_launch: bool = True) -> str:
        """The last `lines` lines of the log (by default only what the current launch wrote)."""
        try:
            with open(self.log_path, "rb") as log:
                size = log.seek(0, os.SEEK_END)
                start = self._log_offset if since_launch else 0
                # Only the end matters; a chatty child must not make an error slow to build.
                start = max(start, size - 64 * 1024)
                log.seek(start)
                data = log.read()
        except FileNotFoundError:
            return ""
        text = data.decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _prepare_log(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # The first start by this supervisor begins a fresh log; restarts append, so what
        # happened before a fault stays readable next to what came after.
        if self._truncate_log:
            self.log_path.write_bytes(b"")
            self._truncate_log = False

    def address_in_use(self) -> bool:
        """Whether the current launch's log says its port was already taken."""
        return bool(_ADDRESS_IN_USE.search(self.log_tail(lines=200)))

    def _append_marker(self, text: str) -> None:
        with contextlib.suppress(OSError), open(self.log_path, "ab") as log:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            log.write(f"--- devstack {stamp}: {self.name} {text}\n".encode())

    def _start_error(self, reason: str, *, cancelled: bool = False) -> ComponentStartError:
        return ComponentStartError(
            self.name, reason, str(self.log_path), self.log_tail(), cancelled=cancelled
        )
