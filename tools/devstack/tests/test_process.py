"""Unit tests of the launcher itself, driving trivial fake Python children."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from echostats_devstack import ComponentStartError, LocalStack, pick_free_port
from echostats_devstack.probes import tcp_accepts
from echostats_devstack.process import LaunchSpec, ProcessComponent

# A fake server: listens on the port given as argv[1] (exits with EADDRINUSE if taken).
SERVER = """
import signal, socket, sys, time
if len(sys.argv) > 2 and sys.argv[2] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
sock = socket.socket()
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
print("listening on", sys.argv[1], flush=True)
while True:
    time.sleep(1)
"""

CRASH = """
import sys
for i in range(60):
    print(f"starting step {i}")
print("fatal: ECHOSTATS_SESSION_SECRET is required", file=sys.stderr)
sys.exit(3)
"""


def _component(
    tmp_path: Path,
    code: str,
    *,
    port: list[int],
    args: tuple[str, ...] = (),
    timeout: float = 10.0,
    repick: bool = False,
) -> ProcessComponent:
    """A component whose port lives in a one-item list, so a re-pick is visible to the test."""

    def spec() -> LaunchSpec:
        return LaunchSpec(argv=[sys.executable, "-c", code, str(port[0]), *args])

    def repick_port() -> None:
        port[0] = pick_free_port()

    return ProcessComponent(
        "fake",
        log_path=tmp_path / "logs" / "fake.log",
        spec=spec,
        port=lambda: port[0],
        probe=lambda: tcp_accepts("127.0.0.1", port[0]),
        startup_timeout=timeout,
        stop_timeout=2.0,
        repick_port=repick_port if repick else None,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


def test_start_waits_for_readiness_and_stop_ends_the_child(tmp_path: Path) -> None:
    component = _component(tmp_path, SERVER, port=[pick_free_port()])
    component.start()
    pid = component.pid
    assert pid is not None and component.running
    component.stop()
    assert not component.running
    assert not _alive(pid)
    log = component.log_path.read_text()
    assert "listening on" in log
    assert "stopped (exit code" in log


def test_a_child_that_dies_reports_its_name_exit_code_and_log_tail(tmp_path: Path) -> None:
    component = _component(tmp_path, CRASH, port=[pick_free_port()])
    with pytest.raises(ComponentStartError) as caught:
        component.start()
    error = caught.value
    assert error.name == "fake"
    assert "exited with code 3" in str(error)
    assert "fatal: ECHOSTATS_SESSION_SECRET is required" in str(error)
    assert "starting step 59" in error.log_tail
    # Only the tail: the first lines of a long log are left out.
    assert "starting step 0\n" not in error.log_tail
    assert str(component.log_path) in str(error)


def test_a_child_that_never_gets_ready_times_out_and_is_killed(tmp_path: Path) -> None:
    code = "import time; print('warming up', flush=True); time.sleep(60)"
    component = _component(tmp_path, code, port=[pick_free_port()], timeout=1.0)
    began = time.monotonic()
    with pytest.raises(ComponentStartError, match=r"not ready within 1s") as caught:
        component.start()
    assert time.monotonic() - began < 10
    assert "warming up" in caught.value.log_tail
    assert not component.running


def test_a_taken_port_is_replaced_when_allowed(tmp_path: Path) -> None:
    with __import__("socket").socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        port = [taken]
        component = _component(tmp_path, SERVER, port=port, repick=True)
        component.start()
        try:
            assert port[0] != taken
            assert component.running
            assert f"port {taken} is taken" in component.log_path.read_text()
        finally:
            component.stop()


def test_a_taken_port_fails_when_pinned(tmp_path: Path) -> None:
    with __import__("socket").socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        component = _component(tmp_path, SERVER, port=[blocker.getsockname()[1]])
        with pytest.raises(ComponentStartError, match="already in use by another process"):
            component.start()
        assert not component.running


def test_a_child_ignoring_sigterm_is_killed_after_the_stop_timeout(tmp_path: Path) -> None:
    component = _component(tmp_path, SERVER, port=[pick_free_port()], args=("ignore-term",))
    component.start()
    began = time.monotonic()
    component.stop(timeout=0.5)
    assert time.monotonic() - began < 5
    assert component.returncode == -signal.SIGKILL
    assert "sending SIGKILL" in component.log_path.read_text()


def test_a_port_taken_between_check_and_bind_is_replaced(tmp_path: Path) -> None:
    # The child itself takes the port first, as a racing process would, and then fails.
    code = SERVER.replace(
        "sock = socket.socket()",
        "squatter = socket.socket(); squatter.bind(('127.0.0.1', int(sys.argv[1])))\n"
        "sock = socket.socket()",
    )
    port = [pick_free_port()]
    first = port[0]
    component = _component(tmp_path, code, port=port, repick=True)
    with pytest.raises(ComponentStartError, match="exited with code 1"):
        # Every attempt squats its own port, so all of them fail; what matters is that each
        # failure was recognised as a port clash and retried on a new port.
        component.start()
    log = component.log_path.read_text()
    assert log.count("port was taken; retrying on another port") == 2
    assert port[0] != first


def test_stop_reaches_grandchildren(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    code = f"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open({str(pid_file)!r}, "w").write(str(child.pid))
exec({SERVER!r})
"""
    component = _component(tmp_path, code, port=[pick_free_port()])
    component.start()
    grandchild = int(pid_file.read_text())
    assert _alive(grandchild)
    component.stop()
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_restart_keeps_the_port_and_appends_to_the_log(tmp_path: Path) -> None:
    port = [pick_free_port()]
    component = _component(tmp_path, SERVER, port=port)
    component.start()
    first_port = port[0]
    component.kill()
    assert component.returncode == -signal.SIGKILL
    component.start()
    try:
        assert port[0] == first_port
        log = component.log_path.read_text()
        assert log.count(f"listening on {first_port}\n") == 2
        assert "killed (exit code -9)" in log
    finally:
        component.stop()


def test_a_crashed_child_is_reported_and_can_be_started_again(tmp_path: Path) -> None:
    component = _component(tmp_path, SERVER, port=[pick_free_port()])
    component.start()
    assert component.pid is not None
    os.killpg(component.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while not component.exited_unexpectedly and time.monotonic() < deadline:
        time.sleep(0.05)
    assert component.exited_unexpectedly
    component.start()
    assert component.running
    component.stop()


def test_stack_start_failure_names_the_component_and_quotes_its_log(tmp_path: Path) -> None:
    # A fake interpreter: whatever module it is asked to run, it fails like a broken service.
    fake_python = tmp_path / "fake-python"
    fake_python.write_text(f"#!{sys.executable}\n{CRASH}")
    fake_python.chmod(0o755)
    stack = LocalStack(tmp_path / "run", components={"auth"}, python=str(fake_python))
    with pytest.raises(ComponentStartError) as caught:
        stack.start()
    assert caught.value.name == "auth"
    assert "fatal: ECHOSTATS_SESSION_SECRET is required" in str(caught.value)
    assert stack.log_path("auth") == tmp_path / "run" / "logs" / "auth.log"
    assert "-m auth_service" in stack.log_path("auth").read_text()
    assert stack.processes_alive() == {"auth": False}


def test_parallel_failures_are_all_reported(tmp_path: Path) -> None:
    fake_python = tmp_path / "fake-python"
    fake_python.write_text(f"#!{sys.executable}\n{CRASH}")
    fake_python.chmod(0o755)
    stack = LocalStack(
        tmp_path / "run",
        components={"auth", "catalog"},
        python=str(fake_python),
        startup_timeout=10,
    )
    began = time.monotonic()
    with pytest.raises(Exception, match="failed to start") as caught:
        stack.start()
    assert time.monotonic() - began < 10
    assert "'auth'" in str(caught.value) or "'catalog'" in str(caught.value)
    assert not any(stack.processes_alive().values())


# A fake interpreter that behaves like a gateway: serves 200 on ECHOSTATS_GATEWAY_PORT and
# logs the settings it was given.
FAKE_GATEWAY = """
import http.server, os, sys
print("argv", sys.argv[1:], flush=True)
for key in sorted(os.environ):
    if key.startswith("ECHOSTATS_"):
        print(f"{key}={os.environ[key]}", flush=True)

class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

http.server.HTTPServer(("127.0.0.1", int(os.environ["ECHOSTATS_GATEWAY_PORT"])), Ok).serve_forever()
"""


def test_extra_gateways_run_beside_the_main_one(tmp_path: Path) -> None:
    fake_python = tmp_path / "fake-python"
    fake_python.write_text(f"#!{sys.executable}\n{FAKE_GATEWAY}")
    fake_python.chmod(0o755)
    stack = LocalStack(
        tmp_path / "run",
        components={"gateway"},
        python=str(fake_python),
        component_env={"gateway": {"ECHOSTATS_TRUSTED_PROXIES": "127.0.0.2/32"}},
    )
    with stack:
        extra = stack.start_extra_gateway({"ECHOSTATS_REQUEST_TIMEOUT_SECONDS": "1"})
        assert extra != stack.gateway_url
        assert stack.processes_alive() == {"gateway": True, "gateway-2": True}
        log = stack.log_path("gateway-2").read_text()
        assert "argv ['-m', 'gateway']" in log
        assert f"ECHOSTATS_GATEWAY_PORT={extra.rsplit(':', 1)[1]}" in log
        assert "ECHOSTATS_REQUEST_TIMEOUT_SECONDS=1" in log
        assert "ECHOSTATS_TRUSTED_PROXIES=127.0.0.2/32" in log
        assert f"ECHOSTATS_FRONTEND_URL={stack.gateway_url}" in log
        main_log = stack.log_path("gateway").read_text()
        assert "ECHOSTATS_REQUEST_TIMEOUT_SECONDS" not in main_log
        assert "ECHOSTATS_ENVIRONMENT=test" in main_log
        pid = stack.pid("gateway-2")
    assert pid is not None
    assert stack.processes_alive() == {"gateway": False, "gateway-2": False}
    assert not _alive(pid)
