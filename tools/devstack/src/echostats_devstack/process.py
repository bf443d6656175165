"""One supervised child process: launch with its log file, wait for readiness, stop, kill.

Every child runs in a session (and process group) of its own, so a signal reaches the
workers it spawned too, and Ctrl-C in the terminal reaches only the supervisor, which then
stops the children in order.
"""

from __future__ import annotations

import abc
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
from echostats_devstack.probes import Probe

POLL_INTERVAL_SECONDS = 0.1
DEFAULT_STOP_TIMEOUT_SECONDS = 10.0
LOG_TAIL_LINES = 40
# How often a start is retried on another port when the picked one was taken meanwhile.
PORT_RETRIES = 3

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
        self._signal_group(signal.SIGKILL)
        proc.wait()
        self._forget(proc, "killed")

    def _forget(self, proc: subprocess.Popen[bytes], what: str) -> None:
        # Workers the child spawned but did not reap would otherwise outlive it. Sent right
        # after the reap, while the group id cannot have been reused by anyone else yet.
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
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

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

    def address_in_use(self) -> bool:
        """Whether the current launch's log says its port was already taken."""
        return bool(_ADDRESS_IN_USE.search(self.log_tail(lines=200)))

    def _append_marker(self, text: str) -> None:
        try:
            with open(self.log_path, "ab") as log:
                stamp = datetime.now(UTC).isoformat(timespec="seconds")
                log.write(f"--- devstack {stamp}: {self.name} {text}\n".encode())
        except OSError:
            pass

    def _start_error(self, reason: str) -> ComponentStartError:
        return ComponentStartError(self.name, reason, str(self.log_path), self.log_tail())
