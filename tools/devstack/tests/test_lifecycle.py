"""Tests of the orphan safety nets: pid file, atexit, SIGTERM, a SIGKILLed supervisor."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from echostats_devstack import StackError
from echostats_devstack.lifecycle import PID_FILE_NAME, PidFile, process_identity

needs_redis = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed (make tools)"
)


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_identity(pid) is None:  # gone, or a zombie waiting for its parent
            return True
        time.sleep(0.05)
    return False


def _write_pids(run_dir: Path, owner: dict[str, object], processes: dict[str, object]) -> None:
    (run_dir / PID_FILE_NAME).write_text(json.dumps({"owner": owner, "processes": processes}))


def test_orphans_of_a_dead_owner_are_stopped(tmp_path: Path) -> None:
    orphan = _sleeper()
    try:
        _write_pids(
            tmp_path,
            owner={"pid": orphan.pid, "start": "not-this-process"},
            processes={"redis": {"pid": orphan.pid, "start": process_identity(orphan.pid)}},
        )
        assert PidFile(tmp_path).claim() == ["redis"]
        assert orphan.wait(timeout=10) == -signal.SIGTERM
    finally:
        orphan.kill()
        orphan.wait()
    owner = json.loads((tmp_path / PID_FILE_NAME).read_text())["owner"]
    assert owner["pid"] == os.getpid()


def test_a_reused_pid_is_left_alone(tmp_path: Path) -> None:
    stranger = _sleeper()
    try:
        _write_pids(
            tmp_path,
            owner={"pid": 1, "start": "nope"},
            processes={"redis": {"pid": stranger.pid, "start": "some-other-start-time"}},
        )
        assert PidFile(tmp_path).claim() == []
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_run_dir_owned_by_a_live_supervisor_is_refused(tmp_path: Path) -> None:
    owner, child = _sleeper(), _sleeper()
    try:
        _write_pids(
            tmp_path,
            owner={"pid": owner.pid, "start": process_identity(owner.pid)},
            processes={"redis": {"pid": child.pid, "start": process_identity(child.pid)}},
        )
        with pytest.raises(StackError, match="in use by another devstack"):
            PidFile(tmp_path).claim()
        assert child.poll() is None
    finally:
        for proc in (owner, child):
            proc.kill()
            proc.wait()


SUPERVISOR = """
import sys, time
from echostats_devstack import LocalStack
stack = LocalStack(sys.argv[1], components={"redis"})
stack.start()
print(stack.pid("redis"), flush=True)
if sys.argv[2] == "exit":
    sys.exit(0)  # no stop(): atexit must clean up
time.sleep(60)
"""


def _run_supervisor(run_dir: Path, mode: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SUPERVISOR), str(run_dir), mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip().isdigit(), f"supervisor failed: {line!r}"
    return proc, int(line)


@needs_redis
def test_sigterm_to_the_supervisor_stops_its_children(tmp_path: Path) -> None:
    supervisor, redis_pid = _run_supervisor(tmp_path, "wait")
    supervisor.send_signal(signal.SIGTERM)
    supervisor.wait(timeout=20)
    assert _gone(redis_pid)


@needs_redis
def test_exiting_without_stop_still_stops_the_children(tmp_path: Path) -> None:
    supervisor, redis_pid = _run_supervisor(tmp_path, "exit")
    assert supervisor.wait(timeout=20) == 0
    assert _gone(redis_pid)


@needs_redis
def test_children_of_a_killed_supervisor_are_stopped_by_the_next_start(tmp_path: Path) -> None:
    supervisor, redis_pid = _run_supervisor(tmp_path, "wait")
    supervisor.kill()
    supervisor.wait()
    try:
        assert process_identity(redis_pid) is not None, "redis should outlive a SIGKILLed parent"
        assert PidFile(tmp_path).claim() == ["redis"]
        assert _gone(redis_pid)
    finally:
        if process_identity(redis_pid) is not None:
            os.killpg(redis_pid, signal.SIGKILL)
