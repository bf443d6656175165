"""The one shared, mutable simulator state that every router reads.

`SimulatorState` composes the immutable catalog with the mutable parts: the app mode,
registered apps, users, OAuth tokens, faults, latency, the rate limiter, the request log,
the clock, each user's play log (`plays`) and playlist library (`playlists`). Each part
guards itself with a lock and never holds it across an `await`, so the state is safe for
one asyncio process (and for handlers run in threads).

Later areas (player, library) add their per-user state here as further fields that
`reset()` restores, and read the catalog from `self.catalog`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from fastapi import Request

from echostats_synthetic.catalog import Catalog, generate_catalog

from .clock import Clock
from .config import Mode, SimulatorConfig
from .faults import FaultBook, LatencyBook, RateLimiter, RequestLog
from .play_log import PlayLog
from .player_state import PlayerBook
from .playlist_store import PlaylistStore
from .tokens import TokenStore
from .users import SimUser, seeded_users


@dataclass(frozen=True, slots=True)
class RegisteredApp:
    """An app registered in the (simulated) Developer Dashboard."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]


class SimulatorState:
    """Everything the simulator knows, restorable to its seeded start with `reset()`."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.clock = Clock()
        # The catalog is immutable and cached per process, so reset never regenerates it.
        self.catalog: Catalog = generate_catalog(config.catalog_seed, config.catalog_tracks)
        self.tokens = TokenStore(
            clock=self.clock,
            access_ttl_s=config.access_token_ttl_s,
            code_ttl_s=config.auth_code_ttl_s,
            refresh_ttl_s=config.refresh_token_ttl_s,
        )
        self.faults = FaultBook()
        self.latency = LatencyBook()
        self.rate_limiter = RateLimiter(config.rate_limit, config.rate_limit_window_s)
        self.requests = RequestLog(config.request_log_size)
        self.plays = PlayLog(self.catalog, recent_window=config.recent_window)
        self.playlists = PlaylistStore(self.catalog)
        self.player = PlayerBook()
        self.apps = {
            config.client_id: RegisteredApp(
                config.client_id, config.client_secret, config.redirect_uris
            )
        }
        self._lock = threading.RLock()
        self._users: dict[str, SimUser] = {}
        self.mode: Mode = config.mode
        self.reset(tokens=True)

    # --- lifecycle ------------------------------------------------------------------------

    def reset(self, *, tokens: bool = False) -> None:
        """Restore seeded users, their plays and playlists, and the configured mode and
        knobs; clear faults, latency, the request log and the clock offset.

        Issued tokens survive unless `tokens=True`, so a long-running stack that reset the
        simulator between tests keeps its signed-in users (tokens of users that no longer
        exist answer `Invalid access token`).
        """
        users = seeded_users()
        with self._lock:
            self._users = {u.id: u for u in users}
            self.mode = self.config.mode
        self.faults.clear()
        self.latency.clear()
        self.rate_limiter.configure(self.config.rate_limit, self.config.rate_limit_window_s)
        self.requests.clear()
        self.clock.reset()
        # Seeded plays end before the (just reset) simulated now.
        self.plays.reset(
            [u.id for u in users],
            now_ms=self.clock.now_ms(),
            count=self.config.seeded_plays,
            recent_window=self.config.recent_window,
        )
        self.playlists.reset(users, self.plays.taste)
        self.player.reset()
        if tokens:
            self.tokens.clear()

    # --- mode -----------------------------------------------------------------------------

    @property
    def development(self) -> bool:
        """True when the simulated app is in Development Mode."""
        return self.mode is Mode.DEVELOPMENT

    def set_mode(self, mode: Mode | str) -> Mode:
        """Switch between Extended Quota Mode and Development Mode."""
        with self._lock:
            self.mode = Mode(mode)
            return self.mode

    # --- apps and users -------------------------------------------------------------------

    def app(self, client_id: str | None) -> RegisteredApp | None:
        """The registered app with this client id, if any."""
        return self.apps.get(client_id or "")

    def user(self, user_id: str | None) -> SimUser | None:
        """A user by Spotify id, if it exists."""
        with self._lock:
            return self._users.get(user_id or "")

    def users(self) -> list[SimUser]:
        """All users, seeded ones first."""
        with self._lock:
            return list(self._users.values())

    def default_user(self) -> SimUser:
        """Who signs in when `/authorize` names no `sim_user`: the first seeded user."""
        with self._lock:
            return next(iter(self._users.values()))

    def add_user(self, user: SimUser) -> bool:
        """Add a user; False if the id is taken."""
        with self._lock:
            if user.id in self._users:
                return False
            self._users[user.id] = user
            return True


def get_state(request: Request) -> SimulatorState:
    """FastAPI dependency: the state of the app serving this request."""
    return request.app.state.sim
