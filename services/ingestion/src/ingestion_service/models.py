"""Domain records of the ingestion context: plays, history queries and job messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from ingestion_service.identity import play_id, play_key


class PlaySource(StrEnum):
    """Where a stored play came from."""

    API = "api"
    DEMO = "demo"
    IMPORT_EXTENDED = "import_extended"
    IMPORT_ACCOUNT = "import_account"


@dataclass(frozen=True, slots=True)
class PlayTrack:
    """The track as it was when the play was recorded (enough to show history unaided)."""

    spotify_id: str
    name: str
    artist_name: str
    album_name: str
    duration_ms: int
    album_image_url: str | None = None
    artist_ids: tuple[str, ...] = ()
    album_id: str | None = None


@dataclass(frozen=True, slots=True)
class Play:
    """One listened track of one user; `played_at` is when the play ended (aware UTC)."""

    user_id: str
    track: PlayTrack
    played_at: datetime
    # Recently-played does not say how long the user listened: there it is the track's
    # duration (a play only appears there once it ended and lasted >= 30 s).
    ms_played: int
    source: PlaySource
    context_type: str | None = None
    context_uri: str | None = None
    # Account-data imports have no track id: their identity within the user comes from the
    # names and the minute instead (`imports.rules.account_play_key`, see import_job.py).
    account_key: str | None = None

    @property
    def id(self) -> str:
        """The play's identity (see `identity.py`)."""
        if self.account_key is not None:
            return f"{self.user_id}:{self.account_key}"
        return play_id(self.user_id, self.track.spotify_id, self.played_at)

    @property
    def key(self) -> str:
        """The play's identity within its user (`<track_id>:<seconds>` or the account key)."""
        if self.account_key is not None:
            return self.account_key
        return play_key(self.track.spotify_id, self.played_at)


@dataclass(frozen=True, slots=True)
class StoredPlay:
    """A play as read back from the store."""

    id: str
    play: Play
    inserted_at: datetime


@dataclass(frozen=True, slots=True)
class InsertOutcome:
    """What one idempotent write did: newly stored vs already there."""

    inserted: int = 0
    already_present: int = 0
    # End-of-play times of the plays newly stored (for the plays-stored event).
    first_inserted_at: datetime | None = None
    last_inserted_at: datetime | None = None

    def __add__(self, other: InsertOutcome) -> InsertOutcome:
        firsts = [t for t in (self.first_inserted_at, other.first_inserted_at) if t]
        lasts = [t for t in (self.last_inserted_at, other.last_inserted_at) if t]
        return InsertOutcome(
            inserted=self.inserted + other.inserted,
            already_present=self.already_present + other.already_present,
            first_inserted_at=min(firsts) if firsts else None,
            last_inserted_at=max(lasts) if lasts else None,
        )


@dataclass(frozen=True, slots=True)
class PlayQuery:
    """One page of a user's history, newest first, with optional filters."""

    user_id: str
    page: int = 1
    page_size: int = 50
    # Case-insensitive substrings of the artist / track name.
    artist: str | None = None
    track: str | None = None
    # Inclusive bounds on the end-of-play time.
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class PlayPage:
    """A page of plays and how many match in total."""

    plays: list[StoredPlay] = field(default_factory=list)
    total: int = 0


@dataclass(frozen=True, slots=True)
class DemoHistoryMarker:
    """Set once a user's demo history is stored: which job stored it and what it counted."""

    job_id: str
    seeded_at: datetime
    counters: dict[str, int] = field(default_factory=dict)
