"""`make dev`: the whole stack on fixed loopback ports, data in `<repo>/.devdata`, Ctrl-C stops it.

Ports default to gateway 8000, simulator 8099, FerretDB 27017, Redis 6379 and gRPC
50051-50056; each is overridable with DEVSTACK_<COMPONENT>_PORT (e.g. DEVSTACK_GATEWAY_PORT).
DEVSTACK_FRONTEND_URL sets where the login callback sends the browser (default: the
gateway). DEVSTACK_ENVIRONMENT overrides the environment (default development). The
GitHub releases URL is left to the services' default (the real API).
Component output goes to `.devdata/logs/<name>.log`; the terminal only shows the banner.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from echostats_devstack.components import ALL_COMPONENTS
from echostats_devstack.errors import StackError
from echostats_devstack.paths import find_repo_root
from echostats_devstack.ports import StackPorts
from echostats_devstack.stack import LocalStack

# How often the supervisor looks for components that died on their own.
WATCH_INTERVAL_SECONDS = 1.0


def main(argv: list[str] | None = None) -> int:
    """Run the development stack until Ctrl-C (or SIGTERM/SIGHUP); return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m echostats_devstack",
        description="Run the EchoStats stack locally on loopback (Ctrl-C stops it).",
    )
    parser.add_argument(
        "--run-dir", type=Path, default=None, help="data and logs (default: <repo>/.devdata)"
    )
    args = parser.parse_args(argv)

    try:
        repo_root = find_repo_root()
        run_dir = (args.run_dir or repo_root / ".devdata").resolve()
        stack = LocalStack(
            run_dir,
            ports=StackPorts.development(),
            environment=os.environ.get("DEVSTACK_ENVIRONMENT", "development"),
            # make dev talks to the real GitHub releases API (or whatever the environment
            # says); the stub is for tests.
            components=ALL_COMPONENTS - {"github-stub"},
            frontend_url=os.environ.get("DEVSTACK_FRONTEND_URL") or None,
            repo_root=repo_root,
        )
    except (StackError, ValueError) as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 2

    _stop_on_signals()
    logs = _display(stack.log_dir)
    try:
        print(f"Starting the EchoStats stack (logs in {logs}/) ...", flush=True)
        began = time.monotonic()
        stack.start()
        print(_banner(stack, logs, time.monotonic() - began), flush=True)
        _watch(stack)
    except KeyboardInterrupt:
        pass
    except StackError as exc:
        print(f"\ndevstack: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        print("\nStopping the stack ...", flush=True)
        try:
            stack.stop()
            print("Stopped.", flush=True)
        except KeyboardInterrupt:
            # A second Ctrl-C: stop() has killed what was left instead of waiting.
            print("Killed.", flush=True)
    return 0


def _banner(stack: LocalStack, logs: str, seconds: float) -> str:
    port = stack.ports.gateway
    api = f"http://localhost:{port}"
    return "\n".join(
        [
            f"EchoStats is running ({seconds:.1f}s to start).",
            f"  API          {api}",
            f"  API docs     {api}/api/docs",
            f"  Simulator    http://localhost:{stack.ports.simulator} (Spotify stand-in)",
            f"  MongoDB      {stack.mongodb_uri} (FerretDB)",
            f"  Redis        {stack.redis_url}",
            f"  Logs         {logs}/<component>.log",
            "  Sign in as the demo user:",
            f"    curl -s {api}/api/v1/auth/dev-login",
            "Press Ctrl-C to stop everything.",
        ]
    )


def _watch(stack: LocalStack) -> None:
    reported: set[str] = set()
    while True:
        time.sleep(WATCH_INTERVAL_SECONDS)
        for name in stack.dead_components():
            if name not in reported:
                reported.add(name)
                log = _display(stack.log_path(name))
                print(f"! {name} exited on its own; see {log}", file=sys.stderr, flush=True)
        reported &= set(stack.dead_components())


def _stop_on_signals() -> None:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"received signal {signum}")

    # SIGTERM (kill, a process manager) and SIGHUP (terminal closed) unwind like Ctrl-C, so
    # the `finally` above stops every child instead of leaving them running.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    # A shell starting us in the background leaves SIGINT ignored, and Python keeps it so;
    # Ctrl-C (or kill -INT) must stop the stack however we were started.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
