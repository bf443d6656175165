"""Spotify-compatible Accounts + Web API simulator for EchoStats development and tests.

Modules: `app` (factory), `__main__` (CLI), `config`, `state` (shared mutable state),
`catalog` (deterministic synthetic catalog), `users`, `tokens` (OAuth rules), `auth`
(Bearer dependency), `modes` (Extended vs Development Mode), `errors` (Spotify error
shapes), `faults` (faults, latency, rate limit, request log), `middleware`, `clock`,
`ids`, `urls`, and one router per Spotify area (`accounts`, `me`) plus `control` (`/_sim`).
"""

from .app import create_app
from .config import Mode, SimulatorConfig

__all__ = ["Mode", "SimulatorConfig", "create_app"]
