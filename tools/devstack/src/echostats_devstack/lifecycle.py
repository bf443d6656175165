"""Safety nets against orphaned processes: atexit, SIGTERM, and a pid file per run dir.

The normal path is `LocalStack.stop()` (context manager, fixture teardown, Ctrl-C). These
cover the rest: an interpreter that exits without calling it (atexit), a SIGTERM from a
CI runner or `kill` (turned into KeyboardInterrupt, so the usual unwinding runs), and a
supervisor that was SIGKILLed, whose children the next start in the same run dir finds
through the pid file and stops.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from echostats_devstack.errors import StackError

PID_FILE_NAME = "devstack.pids.json"


class Stoppable(Protocol):
    """What the safety nets need from a stack."""

    def stop(self) -> None:
        """Stop everything the stack started."""


_live: set[Stoppable] = set()
_live_lock = threading.Lock()
_atexit_registered = False
_previous_sigterm: Any = None
_sigterm_installed = False


def register(stack: Stoppable) -> None:
    """Track a started stack so the safety nets can stop it."""
    global _atexit_registered
    with _live_lock:
        _live.add(stack)
        if not _atexit_registered:
            atexit.register(stop_all)
            _atexit_registered = True
    _install_sigterm_handler()


def unregister(stack: Stoppable) -> None:
    """Forget a stack that has stopped."""
    with _live_lock:
        _live.discard(stack)
        empty = not _live
    if empty:
        _restore_sigterm_handler()


def stop_all() -> None:
    """Stop every stack still running (atexit hook)."""
    with _live_lock:
        stacks = list(_live)
    for stack in stacks:
        with contextlib.suppress(Exception):
            stack.stop()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Unwind like Ctrl-C: context managers, fixture teardown and `finally` blocks stop the
    # stack in order, which a handler running stop() in the middle of a start could not.
    raise KeyboardInterrupt(f"received signal {signum}")


def _install_sigterm_handler() -> None:
    global _previous_sigterm, _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGTERM)
    # Only replace the default (die at once); someone else's handler stays in charge.
    if current not in (signal.SIG_DFL, None):
        return
    _previous_sigterm = current
    signal.signal(signal.SIGTERM, _on_sigterm)
    _sigterm_installed = True


def _restore_sigterm_handler() -> None:
    global _sigterm_installed
    if not _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is _on_sigterm:
        signal.signal(signal.SIGTERM, _previous_sigterm or signal.SIG_DFL)
    _sigterm_installed = False


def process_identity(pid: int) -> str | None:
    """The start time of `pid` in clock ticks (from /proc), or None if it is not running.

    A pid alone may have been reused by an unrelated process; pid plus start time may not.
    A zombie (exited, not yet reaped by its parent) counts as not running.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (the command name) is parenthesised and may contain spaces; count after it.
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) <= 19 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


class PidFile:
    """`<run dir>/devstack.pids.json`: the supervisor and the children it has running."""

    def __init__(self, run_dir: Path) -> None:
        """Bind to the pid file of `run_dir` (not read or written yet)."""
        self.path = run_dir / PID_FILE_NAME
        self._lock = threading.Lock()
        self._processes: dict[str, dict[str, Any]] = {}

    def claim(self) -> list[str]:
        """Make this process the owner; stop orphans of a dead previous owner.

        Returns the names of the orphans that were stopped. Raises when a live supervisor
        still owns the run dir.
        """
        with self._lock:
            previous = self._read()
            owner = previous.get("owner") or {}
            owner_pid = owner.get("pid")
            owner_alive = (
                isinstance(owner_pid, int)
                and owner_pid != os.getpid()
                and process_identity(owner_pid) == owner.get("start")
            )
            leftovers = {
                name: entry
                for name, entry in (previous.get("processes") or {}).items()
                if _still_running(entry)
            }
            if owner_alive and leftovers:
                raise StackError(
                    f"{self.path.parent} is in use by another devstack (pid {owner_pid}); "
                    "stop it first or use another run dir"
                )
            for entry in leftovers.values():
                _stop_orphan(entry["pid"])
            self._processes = {}
            self._write()
            return sorted(leftovers)

    def record(self, name: str, pid: int | None) -> None:
        """Note that `name` now runs as `pid` (None: it stopped)."""
        with self._lock:
            if pid is None:
                self._processes.pop(name, None)
            else:
                self._processes[name] = {"pid": pid, "start": process_identity(pid)}
            self._write()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self) -> None:
        me = os.getpid()
        data = {"owner": {"pid": me, "start": process_identity(me)}, "processes": self._processes}
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2))
            tmp.replace(self.path)


def _still_running(entry: Any) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("pid"), int):
        return False
    start = entry.get("start")
    return start is not None and process_identity(entry["pid"]) == start


def _stop_orphan(pid: int, timeout: float = 5.0) -> None:
    # Children run as session leaders, so their process group id is their pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process_identity(pid) is not None:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
