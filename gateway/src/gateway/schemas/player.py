"""Request and response models of /api/v1/player."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Spotify ids are base62; URIs name their kind.
_ID = r"[0-9A-Za-z]{1,64}"
TRACK_URI = re.compile(rf"spotify:track:{_ID}")
CONTEXT_URI = re.compile(rf"spotify:(album|artist|playlist|show):{_ID}")
# Spotify fails play bodies of about 9 KB (~228 URIs) with a 500; stay well below.
MAX_URIS = 100


class CurrentPlayback(BaseModel):
    """GET /player/current. Only `is_playing` is sent when nothing is loaded."""

    is_playing: bool
    track_name: str | None = None
    artist_name: str | None = None
    album_name: str | None = None
    album_image: str | None = None
    track_id: str | None = None
    duration_ms: int | None = None
    progress_ms: int | None = None
    device: str | None = None
    shuffle: bool | None = None
    repeat: str | None = None


class DeviceOut(BaseModel):
    id: str | None
    name: str
    type: str
    is_active: bool
    volume_percent: int | None


class DevicesOut(BaseModel):
    devices: list[DeviceOut]


class QueueItemOut(BaseModel):
    id: str
    name: str
    artist: str
    album: str
    image: str | None
    duration_ms: int


class QueueOut(BaseModel):
    currently_playing: QueueItemOut | None
    queue: list[QueueItemOut]


class PlayOffset(BaseModel):
    """Where in an album or playlist context to start: a position or a track URI."""

    model_config = ConfigDict(extra="forbid")

    position: int | None = Field(None, ge=0, le=10_000)
    uri: str | None = Field(None, pattern=TRACK_URI.pattern, max_length=100)

    @model_validator(mode="after")
    def _one_target(self) -> PlayOffset:
        if (self.position is None) == (self.uri is None):
            raise ValueError("give exactly one of position and uri")
        return self


class PlayRequest(BaseModel):
    """POST /player/play body; every field is optional (an empty body resumes)."""

    model_config = ConfigDict(extra="forbid")

    context_uri: str | None = Field(
        None, pattern=CONTEXT_URI.pattern, max_length=100, examples=["spotify:album:6GjwtEZcf"]
    )
    uris: Annotated[
        list[Annotated[str, Field(pattern=TRACK_URI.pattern, max_length=100)]] | None,
        Field(max_length=MAX_URIS),
    ] = None
    device_id: str | None = Field(None, min_length=1, max_length=100)
    offset: PlayOffset | None = None
    position_ms: int | None = Field(None, ge=0, le=24 * 3600 * 1000)

    @field_validator("uris")
    @classmethod
    def _not_empty(cls, uris: list[str] | None) -> list[str] | None:
        if uris is not None and not uris:
            raise ValueError("uris must not be empty")
        return uris

    @model_validator(mode="after")
    def _consistent(self) -> PlayRequest:
        if self.context_uri is not None and self.uris is not None:
            raise ValueError("give context_uri or uris, not both")
        if self.offset is not None and not (self.context_uri or "").startswith(
            ("spotify:album:", "spotify:playlist:")
        ):
            raise ValueError("offset is only valid with an album or playlist context_uri")
        return self


class PlayerStatus(BaseModel):
    """What a player command did: playing, paused, skipped, skipped_back."""

    status: str
