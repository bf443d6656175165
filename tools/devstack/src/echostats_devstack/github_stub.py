"""A tiny GitHub releases API stub, served from a thread of the test process.

It answers `GET /repos/<owner>/<repo>/releases/latest` with a fixed release, so the
observability service's update check has something deterministic to compare against, and
404 with GitHub's error shape for everything else. Each request is logged to its log file.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from echostats_devstack.ports import LOOPBACK
from echostats_devstack.process import Component

LATEST_RELEASE_PATH = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/releases/latest/?$")

DEFAULT_RELEASE: dict[str, Any] = {
    "tag_name": "v0.2.0",
    "name": "v0.2.0",
    "body": "EchoStats v0.2.0: faster analytics snapshots and import progress reporting.",
    "published_at": "2025-01-15T12:00:00Z",
    "draft": False,
    "prerelease": False,
}


class GithubStub(Component):
    """The stub as a stack component: start/stop keep the same port across restarts."""

    def __init__(self, *, port: int, log_path: Path) -> None:
        """`port` 0 picks a free one on the first start; later starts reuse it."""
        self.name = "github-stub"
        self.port = port
        self.log_path = log_path
        # Tests may swap the release (e.g. a newer tag) while the stack runs.
        self.release: dict[str, Any] = copy.deepcopy(DEFAULT_RELEASE)
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._log_lock = threading.Lock()
        self._truncate_log = True

    @property
    def url(self) -> str:
        """Base URL to give as ECHOSTATS_GITHUB_API_URL."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Bind (the same port as before, if any) and serve from a daemon thread."""
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self._truncate_log:
            self.log_path.write_bytes(b"")
            self._truncate_log = False
        server = ThreadingHTTPServer((LOOPBACK, self.port), _handler_for(self))
        server.daemon_threads = True
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="devstack-github-stub", daemon=True
        )
        self._thread.start()
        self.log(f"listening on {self.url}")

    def begin_stop(self) -> None:
        """Stop serving (shutdown waits for the serve loop, which is quick)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self.log("stopped")
        self._server = None

    def finish_stop(self, timeout: float | None = None) -> None:
        """Join the server thread."""
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def kill(self) -> None:
        """Same as stop: there is no process to kill."""
        self.stop()

    def log(self, line: str) -> None:
        """Append a timestamped line to the stub's log."""
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self._log_lock, open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"{stamp} {line}\n")

    def response_for(self, path: str) -> tuple[int, dict[str, Any]]:
        """The status and JSON body the stub answers for GET `path`."""
        match = LATEST_RELEASE_PATH.match(path.split("?", 1)[0])
        if match is None:
            return 404, {
                "message": "Not Found",
                "documentation_url": "https://docs.github.com/rest",
            }
        owner, repo = match["owner"], match["repo"]
        body = copy.deepcopy(self.release)
        tag = body.get("tag_name", "")
        body.setdefault("html_url", f"https://github.com/{owner}/{repo}/releases/tag/{tag}")
        return 200, body


def _handler_for(stub: GithubStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "devstack-github-stub"

        def do_GET(self) -> None:
            status, body = stub.response_for(self.path)
            stub.requests.append(self.path)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            # To the stub's log file, never to the test process's stderr.
            stub.log(format % args)

    return Handler
