"""PlayerProxyService gRPC servicer: protobuf <-> the Spotify calls (errors are domain errors)."""

from __future__ import annotations

from typing import Any

import grpc

from echostats.player_proxy.v1 import player_proxy_service_pb2 as pb
from echostats.player_proxy.v1 import player_proxy_service_pb2_grpc as pb_grpc
from echostats_platform.errors import InvalidArgument
from player_proxy_service import mapping
from player_proxy_service.settings import PlayerProxySettings
from player_proxy_service.spotify_calls import Closed, SpotifyPlayerCalls

Context = grpc.aio.ServicerContext
MAX_PAGE = 50


def _user(request: Any) -> str:
    if not request.user_id:
        raise InvalidArgument("user_id is required")
    return request.user_id


def _limit(value: int, *, default: int) -> int:
    """0 means the default; otherwise Spotify's 1-50."""
    if value == 0:
        return default
    if not 1 <= value <= MAX_PAGE:
        raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}")
    return value


def _play_body(request: pb.StartPlaybackRequest) -> dict[str, Any]:
    """The JSON body of PUT /me/player/play, with only the fields the caller gave."""
    body: dict[str, Any] = {}
    if request.HasField("context_uri"):
        body["context_uri"] = request.context_uri
    if request.uris:
        body["uris"] = list(request.uris)
    if request.HasField("offset"):
        which = request.offset.WhichOneof("target")
        if which == "position":
            body["offset"] = {"position": request.offset.position}
        elif which == "uri":
            body["offset"] = {"uri": request.offset.uri}
    if request.HasField("position_ms"):
        body["position_ms"] = request.position_ms
    return body


def _device(request: Any) -> str | None:
    return request.device_id if request.HasField("device_id") else None


class PlayerProxyServicer(pb_grpc.PlayerProxyServiceServicer):
    """The player-proxy context's RPCs."""

    def __init__(self, spotify: SpotifyPlayerCalls, settings: PlayerProxySettings) -> None:
        self._spotify = spotify
        self._settings = settings

    async def GetPlayback(
        self, request: pb.GetPlaybackRequest, context: Context
    ) -> pb.GetPlaybackResponse:
        """What plays now (no playback when Spotify answered 204)."""
        return mapping.playback(await self._spotify.playback(_user(request)))

    async def ListDevices(
        self, request: pb.ListDevicesRequest, context: Context
    ) -> pb.ListDevicesResponse:
        """The user's Connect devices."""
        devices = await self._spotify.devices(_user(request))
        return pb.ListDevicesResponse(devices=[mapping.device(d) for d in devices])

    async def GetQueue(self, request: pb.GetQueueRequest, context: Context) -> pb.GetQueueResponse:
        """Current item and the next few."""
        max_items = _limit(request.max_items, default=self._settings.queue_max_items)
        return mapping.queue(await self._spotify.queue(_user(request)), max_items)

    async def StartPlayback(
        self, request: pb.StartPlaybackRequest, context: Context
    ) -> pb.PlayerCommandResponse:
        """Start or resume playback."""
        if request.HasField("context_uri") and request.uris:
            raise InvalidArgument("give context_uri or uris, not both")
        status = await self._spotify.command(
            _user(request), "PUT", "play", device_id=_device(request), body=_play_body(request)
        )
        return pb.PlayerCommandResponse(spotify_status=status)

    async def PausePlayback(
        self, request: pb.PausePlaybackRequest, context: Context
    ) -> pb.PlayerCommandResponse:
        """Pause playback."""
        status = await self._spotify.command(
            _user(request), "PUT", "pause", device_id=_device(request)
        )
        return pb.PlayerCommandResponse(spotify_status=status)

    async def SkipToNext(
        self, request: pb.SkipToNextRequest, context: Context
    ) -> pb.PlayerCommandResponse:
        """Skip to the next track."""
        status = await self._spotify.command(
            _user(request), "POST", "next", device_id=_device(request)
        )
        return pb.PlayerCommandResponse(spotify_status=status)

    async def SkipToPrevious(
        self, request: pb.SkipToPreviousRequest, context: Context
    ) -> pb.PlayerCommandResponse:
        """Skip to the previous track."""
        status = await self._spotify.command(
            _user(request), "POST", "previous", device_id=_device(request)
        )
        return pb.PlayerCommandResponse(spotify_status=status)

    async def ListNewReleases(
        self, request: pb.ListNewReleasesRequest, context: Context
    ) -> pb.ListNewReleasesResponse:
        """New album releases, or none with a reason when Spotify closed the endpoint."""
        body = await self._spotify.browse(
            _user(request), "/v1/browse/new-releases", limit=_limit(request.limit, default=20)
        )
        if isinstance(body, Closed):
            return pb.ListNewReleasesResponse(unavailable_reason=body.reason)
        albums = (body.get("albums") or {}).get("items") or []
        return pb.ListNewReleasesResponse(
            items=[mapping.new_release(a) for a in albums if isinstance(a, dict)]
        )

    async def ListFeaturedPlaylists(
        self, request: pb.ListFeaturedPlaylistsRequest, context: Context
    ) -> pb.ListFeaturedPlaylistsResponse:
        """Spotify's featured playlists, or none with a reason when closed."""
        body = await self._spotify.browse(
            _user(request),
            "/v1/browse/featured-playlists",
            limit=_limit(request.limit, default=20),
        )
        if isinstance(body, Closed):
            return pb.ListFeaturedPlaylistsResponse(unavailable_reason=body.reason)
        playlists = (body.get("playlists") or {}).get("items") or []
        return pb.ListFeaturedPlaylistsResponse(
            message=body.get("message") or "",
            items=[mapping.featured_playlist(p) for p in playlists if isinstance(p, dict)],
        )

    async def ListCategories(
        self, request: pb.ListCategoriesRequest, context: Context
    ) -> pb.ListCategoriesResponse:
        """Browse categories, or none with a reason when closed."""
        body = await self._spotify.browse(
            _user(request), "/v1/browse/categories", limit=_limit(request.limit, default=50)
        )
        if isinstance(body, Closed):
            return pb.ListCategoriesResponse(unavailable_reason=body.reason)
        categories = (body.get("categories") or {}).get("items") or []
        return pb.ListCategoriesResponse(
            items=[mapping.category(c) for c in categories if isinstance(c, dict)]
        )

    async def ListFollowedArtists(
        self, request: pb.ListFollowedArtistsRequest, context: Context
    ) -> pb.ListFollowedArtistsResponse:
        """Followed artists (cursor paging underneath) and their total."""
        items, total = await self._spotify.followed_artists(
            _user(request),
            limit=_limit(request.limit, default=MAX_PAGE),
            max_pages=self._settings.followed_artists_max_pages,
        )
        return pb.ListFollowedArtistsResponse(
            items=[mapping.followed_artist(a) for a in items if isinstance(a, dict)], total=total
        )

    async def ListSavedAlbums(
        self, request: pb.ListSavedAlbumsRequest, context: Context
    ) -> pb.ListSavedAlbumsResponse:
        """Saved albums, offset paging."""
        if request.offset < 0:
            raise InvalidArgument("offset must not be negative")
        limit = _limit(request.limit, default=MAX_PAGE)
        body = await self._spotify.saved_albums(_user(request), limit=limit, offset=request.offset)
        saved = [s for s in body.get("items") or [] if isinstance(s, dict)]
        return pb.ListSavedAlbumsResponse(
            items=[mapping.saved_album(s) for s in saved],
            total=int(body.get("total") or 0),
            limit=limit,
            offset=request.offset,
        )
