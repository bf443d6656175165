"""Per-user playlist libraries: what `GET /v1/me/playlists` lists.

A playlist exists once, by id; each user's library is an ordered list of playlist ids
(newest first), so one playlist can sit in several libraries (a friend's public playlist).
At reset every seeded user U gets, in this order:
- U's six own playlists from `echostats_synthetic` (the `playlist` contexts of U's plays);
  the fourth is private and the sixth collaborative (and therefore private);
- the first own playlist of the next seeded user (a friend's public playlist);
- two Spotify-owned playlists with `37i9dQZF1...` ids: an editorial one shared by everyone
  and an algorithmic "Daily Mix 1" per user.
Users added later start with an empty library. Tests create, change and delete playlists
through `/_sim/playlists`; every change gives the playlist a new `snapshot_id`.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from echostats_synthetic.catalog import Catalog
from echostats_synthetic.history import ListenerTaste
from echostats_synthetic.ids import stable_id, stable_seed

from .users import SimUser

SPOTIFY_OWNER = ("spotify", "Spotify")
EDITORIAL_SIZE = 50
DAILY_MIX_SIZE = 30
_PRIVATE_INDEX = 3
_COLLABORATIVE_INDEX = 5


@dataclass(frozen=True, slots=True)
class SimPlaylist:
    """One playlist; `version` grows with every change and drives `snapshot_id`."""

    id: str
    name: str
    owner_id: str
    owner_display_name: str | None
    description: str = ""
    public: bool = True
    collaborative: bool = False
    track_ids: tuple[str, ...] = ()
    version: int = 1

    @property
    def snapshot_id(self) -> str:
        """An opaque 32-character version tag, as Spotify's snapshot ids look."""
        digest = hashlib.sha256(f"{self.id}:{self.version}".encode()).digest()
        return base64.b64encode(digest[:24]).decode()

    @property
    def uri(self) -> str:
        """The playlist's Spotify URI."""
        return f"spotify:playlist:{self.id}"


def control_view(playlist: SimPlaylist, user_ids: list[str]) -> dict[str, Any]:
    """The `/_sim/playlists` view: every stored field plus whose libraries hold it."""
    return {
        "id": playlist.id,
        "name": playlist.name,
        "description": playlist.description,
        "owner_id": playlist.owner_id,
        "owner_display_name": playlist.owner_display_name,
        "public": playlist.public,
        "collaborative": playlist.collaborative,
        "snapshot_id": playlist.snapshot_id,
        "track_ids": list(playlist.track_ids),
        "user_ids": user_ids,
    }


class PlaylistStore:
    """Playlists by id plus each user's library order; thread-safe."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        self._playlists: dict[str, SimPlaylist] = {}
        self._libraries: dict[str, list[str]] = {}
        self._created = 0
        # The editorial playlist holds the catalog's most popular tracks; computed once.
        hits = heapq.nsmallest(
            EDITORIAL_SIZE, catalog.tracks.values(), key=lambda t: (-t.popularity, t.id)
        )
        self._editorial = SimPlaylist(
            id="37i9dQZF1DX" + stable_id("editorial", str(catalog.seed), length=11),
            name="Today's Top Hits",
            owner_id=SPOTIFY_OWNER[0],
            owner_display_name=SPOTIFY_OWNER[1],
            description="The hottest tracks of the simulated catalog.",
            track_ids=tuple(t.id for t in hits[:EDITORIAL_SIZE]),
        )

    def reset(self, users: list[SimUser], taste_of: Callable[[str], ListenerTaste]) -> None:
        """Forget every playlist and library, then seed the libraries of `users`."""
        playlists: dict[str, SimPlaylist] = {self._editorial.id: self._editorial}
        libraries: dict[str, list[str]] = {}
        owned: dict[str, list[str]] = {}
        for user in users:
            own = []
            for index, synthetic in enumerate(taste_of(user.id).playlists()):
                collaborative = index == _COLLABORATIVE_INDEX
                playlist = SimPlaylist(
                    id=synthetic.id,
                    name=synthetic.name,
                    owner_id=user.id,
                    owner_display_name=user.display_name,
                    description=synthetic.description,
                    # Spotify only allows collaborative playlists that are private.
                    public=index != _PRIVATE_INDEX and not collaborative,
                    collaborative=collaborative,
                    track_ids=synthetic.track_ids,
                )
                playlists[playlist.id] = playlist
                own.append(playlist.id)
            owned[user.id] = own
        for position, user in enumerate(users):
            friend = users[(position + 1) % len(users)]
            library = list(owned[user.id])
            if friend.id != user.id:
                library.append(owned[friend.id][0])
            daily_mix = self._daily_mix(user.id)
            playlists[daily_mix.id] = daily_mix
            library += [self._editorial.id, daily_mix.id]
            libraries[user.id] = library
        with self._lock:
            self._playlists = playlists
            self._libraries = libraries
            self._created = 0

    def _daily_mix(self, user_id: str) -> SimPlaylist:
        rng = random.Random(stable_seed("daily-mix", user_id))
        track_ids = list(self.catalog.tracks)
        return SimPlaylist(
            id="37i9dQZF1E" + stable_id("daily-mix", user_id, length=12),
            name="Daily Mix 1",
            owner_id=SPOTIFY_OWNER[0],
            owner_display_name=SPOTIFY_OWNER[1],
            description="Made for you.",
            track_ids=tuple(rng.sample(track_ids, k=min(DAILY_MIX_SIZE, len(track_ids)))),
        )

    # --- reads ----------------------------------------------------------------------------

    def library(self, user_id: str) -> list[SimPlaylist]:
        """The user's playlists in library order (newest first)."""
        with self._lock:
            return [self._playlists[p] for p in self._libraries.get(user_id, ())]

    def get(self, playlist_id: str) -> SimPlaylist | None:
        """A playlist by id, if it exists."""
        with self._lock:
            return self._playlists.get(playlist_id)

    def holders(self, playlist_id: str) -> list[str]:
        """The users whose library holds the playlist."""
        with self._lock:
            return [u for u, ids in self._libraries.items() if playlist_id in ids]

    # --- writes ---------------------------------------------------------------------------

    def next_id(self, user_id: str) -> str:
        """A deterministic id for the next playlist created through the control API."""
        with self._lock:
            self._created += 1
            return stable_id("sim-playlist", user_id, str(self._created))

    def create(self, user_id: str, playlist: SimPlaylist) -> bool:
        """Add a playlist at the top of the user's library; False if the id exists."""
        with self._lock:
            if playlist.id in self._playlists:
                return False
            self._playlists[playlist.id] = playlist
            self._libraries.setdefault(user_id, []).insert(0, playlist.id)
            return True

    def update(self, playlist_id: str, **changes: Any) -> SimPlaylist | None:
        """Change fields of a playlist and bump its version; None if it does not exist."""
        with self._lock:
            current = self._playlists.get(playlist_id)
            if current is None:
                return None
            updated = replace(current, **changes, version=current.version + 1)
            self._playlists[playlist_id] = updated
            return updated

    def delete(self, playlist_id: str) -> bool:
        """Remove a playlist from the store and every library; False if unknown."""
        with self._lock:
            if self._playlists.pop(playlist_id, None) is None:
                return False
            for ids in self._libraries.values():
                if playlist_id in ids:
                    ids.remove(playlist_id)
            return True


def pick_tracks(taste: ListenerTaste, *, seed_key: str, count: int) -> tuple[str, ...]:
    """`count` distinct tracks the listener likes, deterministic for `seed_key`."""
    rng = random.Random(stable_seed("sim-playlist-tracks", seed_key))
    picked: dict[str, None] = {}
    attempts = 0
    while len(picked) < count and attempts < count * 20:
        picked[taste.pick_track(rng)] = None
        attempts += 1
    return tuple(picked)


def unknown_tracks(catalog: Catalog, track_ids: Iterable[str]) -> list[str]:
    """The ids in `track_ids` that are not in the catalog."""
    return [t for t in track_ids if t not in catalog.tracks]
