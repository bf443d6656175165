"""Spotify-compatible Accounts + Web API simulator for EchoStats development and tests.

Modules: `app` (factory), `__main__` (CLI), `config`, `state` (shared mutable state),
`users`, `tokens` (OAuth rules), `play_log` (per-user ground-truth plays),
`playlist_store` (per-user playlist libraries), `auth` (Bearer dependency), `modes`
(Extended vs Development Mode), `errors` (Spotify error shapes), `faults` (faults,
latency, rate limit, request log), `middleware`, `clock`, `urls`, `paging`, `objects`
(Spotify JSON from catalog records), and one router per Spotify area (`accounts`, `me`,
`recently_played`, `playlists`, `top`, `audio_features`) plus `control` (`/_sim`). The
catalog and listening histories come from `echostats_synthetic`.
"""

from .app import create_app
from .config import Mode, SimulatorConfig

__all__ = ["Mode", "SimulatorConfig", "create_app"]
