"""`python -m spotify_simulator`: serve the simulator with uvicorn on a loopback address.

Settings come from SIMULATOR_* environment variables (see `SimulatorConfig.from_env`),
overridden by command-line flags. `--port 0` binds a free port. Once the socket is
accepting connections one line is printed to stdout:

    spotify-simulator listening on http://127.0.0.1:PORT

so a parent process can read the port. Ctrl-C and SIGTERM shut down gracefully with
exit status 0.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import sys
from dataclasses import replace

import uvicorn

from .app import create_app
from .config import Mode, SimulatorConfig


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="python -m spotify_simulator",
        description="Spotify-compatible Accounts + Web API simulator (development/tests only).",
    )
    parser.add_argument("--host", help="bind address (env SIMULATOR_HOST, default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, help="port, 0 = any free one (env SIMULATOR_PORT, default 8090)"
    )
    parser.add_argument("--client-id", help="registered client id (env SIMULATOR_CLIENT_ID)")
    parser.add_argument(
        "--client-secret", help="registered client secret (env SIMULATOR_CLIENT_SECRET)"
    )
    parser.add_argument(
        "--mode", choices=[m.value for m in Mode], help="app mode (env SIMULATOR_MODE)"
    )
    parser.add_argument(
        "--redirect-uri",
        action="append",
        dest="redirect_uris",
        help="exact allowed redirect URI, repeatable (env SIMULATOR_REDIRECT_URIS, comma list);"
        " default: any loopback or https URI",
    )
    parser.add_argument(
        "--token-ttl", type=int, help="access-token lifetime in s (env SIMULATOR_TOKEN_TTL)"
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        help="requests per app per 30 s window, 0 = off (env SIMULATOR_RATE_LIMIT)",
    )
    parser.add_argument(
        "--recent-window",
        type=int,
        help="recently-played serves only the last N plays, 0 = all (env SIMULATOR_RECENT_WINDOW;"
        " Spotify: 50)",
    )
    parser.add_argument(
        "--log-level",
        default=None,
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level (env SIMULATOR_LOG_LEVEL, default info); debug adds access logs",
    )
    parser.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="permit binding a non-loopback address (the simulator hands out tokens to anyone)",
    )
    return parser


def config_from(args: argparse.Namespace, base: SimulatorConfig) -> SimulatorConfig:
    """Apply command-line overrides on top of the environment-derived config."""
    overrides: dict[str, object] = {}
    for flag, name in (
        ("host", "host"),
        ("port", "port"),
        ("client_id", "client_id"),
        ("client_secret", "client_secret"),
        ("token_ttl", "access_token_ttl_s"),
    ):
        value = getattr(args, flag)
        if value is not None:
            overrides[name] = value
    if args.mode is not None:
        overrides["mode"] = Mode(args.mode)
    if args.redirect_uris:
        overrides["redirect_uris"] = tuple(args.redirect_uris)
    if args.rate_limit is not None:
        overrides["rate_limit"] = args.rate_limit or None
    if args.recent_window is not None:
        overrides["recent_window"] = args.recent_window or None
    return replace(base, **overrides)  # type: ignore[arg-type]


class _Server(uvicorn.Server):
    """uvicorn server that announces its real address once it accepts connections."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if sockets:
            host, port = sockets[0].getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            print(f"spotify-simulator listening on http://{shown}:{port}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until interrupted; return the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        config = config_from(args, SimulatorConfig.from_env())
    except ValueError as exc:
        print(f"spotify-simulator: {exc}", file=sys.stderr)
        return 2
    if not _is_loopback(config.host) and not args.allow_non_loopback:
        print(
            f"spotify-simulator: refusing to bind non-loopback host {config.host!r}"
            " (use --allow-non-loopback)",
            file=sys.stderr,
        )
        return 2
    log_level = args.log_level or os.environ.get("SIMULATOR_LOG_LEVEL", "info").lower()

    # Bind ourselves so `--port 0` works and the printed port is the real one.
    host = "127.0.0.1" if config.host == "localhost" else config.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, config.port))
    except OSError as exc:
        print(f"spotify-simulator: cannot bind {host}:{config.port}: {exc}", file=sys.stderr)
        sock.close()
        return 1

    server = _Server(
        uvicorn.Config(
            create_app(config),
            log_level=log_level,
            access_log=log_level == "debug",
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
    )
    # uvicorn re-raises the signal it caught after a graceful shutdown; a no-op SIGTERM
    # handler (and catching KeyboardInterrupt for SIGINT) turns that into a clean exit 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
