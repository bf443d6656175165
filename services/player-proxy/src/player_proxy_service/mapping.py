"""Spotify JSON → this context's protobuf messages (the shapes the API documents).

Spotify objects are read defensively: fields dev-mode apps no longer receive (artist
`followers`), null device ids, episodes instead of tracks, and the Feb 2026 rename of a
playlist's `tracks` count block to `items` are all handled here, once.
"""

from __future__ import annotations

from typing import Any

from echostats.player_proxy.v1 import player_proxy_service_pb2 as pb


def first_image(images: Any) -> str | None:
    """The first (largest) image URL of a Spotify `images` list, if any."""
    if isinstance(images, list):
        for image in images:
            if isinstance(image, dict) and isinstance(image.get("url"), str):
                return image["url"]
    return None


def artist_names(obj: dict[str, Any]) -> str:
    """The `artists` of a track or album as one string, "A, B"."""
    artists = obj.get("artists") or []
    return ", ".join(a.get("name", "") for a in artists if isinstance(a, dict) and a.get("name"))


def _item_parts(item: dict[str, Any]) -> tuple[str, str, str | None]:
    """(artist, album, image) of a track, or of a podcast episode (its show)."""
    if item.get("type") == "episode":
        show = item.get("show") or {}
        image = first_image(item.get("images")) or first_image(show.get("images"))
        return show.get("publisher") or show.get("name") or "", show.get("name") or "", image
    album = item.get("album") or {}
    return artist_names(item), album.get("name") or "", first_image(album.get("images"))


def playback(body: dict[str, Any] | None) -> pb.GetPlaybackResponse:
    """GET /me/player → the current playback, absent when nothing is loaded."""
    item = (body or {}).get("item")
    if not body or not isinstance(item, dict):
        return pb.GetPlaybackResponse()
    artist, album, image = _item_parts(item)
    device = body.get("device") or {}
    playing = pb.Playback(
        is_playing=bool(body.get("is_playing")),
        track_id=item.get("id") or "",
        track_name=item.get("name") or "",
        artist_name=artist,
        album_name=album,
        duration_ms=int(item.get("duration_ms") or 0),
        progress_ms=int(body.get("progress_ms") or 0),
        device=device.get("name") or "",
        shuffle=bool(body.get("shuffle_state")),
        repeat=body.get("repeat_state") or "off",
    )
    if image is not None:
        playing.album_image = image
    return pb.GetPlaybackResponse(playback=playing)


def device(obj: dict[str, Any]) -> pb.Device:
    """One Connect device."""
    message = pb.Device(
        name=obj.get("name") or "",
        type=obj.get("type") or "",
        is_active=bool(obj.get("is_active")),
    )
    if isinstance(obj.get("id"), str):
        message.id = obj["id"]
    if isinstance(obj.get("volume_percent"), int):
        message.volume_percent = obj["volume_percent"]
    return message


def queue_item(item: dict[str, Any]) -> pb.QueueItem:
    """A track or episode of the queue."""
    artist, album, image = _item_parts(item)
    message = pb.QueueItem(
        id=item.get("id") or "",
        name=item.get("name") or "",
        artist=artist,
        album=album,
        duration_ms=int(item.get("duration_ms") or 0),
    )
    if image is not None:
        message.image = image
    return message


def queue(body: dict[str, Any], max_items: int) -> pb.GetQueueResponse:
    """GET /me/player/queue, capped at `max_items` upcoming items."""
    response = pb.GetQueueResponse()
    current = body.get("currently_playing")
    if isinstance(current, dict):
        response.currently_playing.CopyFrom(queue_item(current))
    upcoming = [i for i in body.get("queue") or [] if isinstance(i, dict)]
    response.queue.extend(queue_item(i) for i in upcoming[:max_items])
    return response


def new_release(album: dict[str, Any]) -> pb.NewRelease:
    """A simplified album from /browse/new-releases."""
    message = pb.NewRelease(
        id=album.get("id") or "",
        name=album.get("name") or "",
        artists=artist_names(album),
        release_date=album.get("release_date") or "",
        total_tracks=int(album.get("total_tracks") or 0),
        type=album.get("album_type") or album.get("type") or "",
    )
    if (image := first_image(album.get("images"))) is not None:
        message.image = image
    return message


def featured_playlist(playlist: dict[str, Any]) -> pb.FeaturedPlaylist:
    """A simplified playlist; its count block is `tracks`, or `items` since Feb 2026."""
    block = playlist.get("tracks") or playlist.get("items") or {}
    owner = playlist.get("owner") or {}
    message = pb.FeaturedPlaylist(
        id=playlist.get("id") or "",
        name=playlist.get("name") or "",
        description=playlist.get("description") or "",
        tracks_total=int(block.get("total") or 0) if isinstance(block, dict) else 0,
        owner=owner.get("display_name") or owner.get("id") or "",
    )
    if (image := first_image(playlist.get("images"))) is not None:
        message.image = image
    return message


def category(obj: dict[str, Any]) -> pb.Category:
    """A browse category."""
    message = pb.Category(id=obj.get("id") or "", name=obj.get("name") or "")
    if (image := first_image(obj.get("icons"))) is not None:
        message.image = image
    return message


def followed_artist(artist: dict[str, Any]) -> pb.FollowedArtist:
    """A full artist object (followers absent for development-mode apps)."""
    message = pb.FollowedArtist(
        id=artist.get("id") or "",
        name=artist.get("name") or "",
        genres=[g for g in artist.get("genres") or [] if isinstance(g, str)],
    )
    if (image := first_image(artist.get("images"))) is not None:
        message.image = image
    followers = artist.get("followers")
    if isinstance(followers, dict) and isinstance(followers.get("total"), int):
        message.followers = followers["total"]
    return message


def saved_album(saved: dict[str, Any]) -> pb.SavedAlbum:
    """One `{added_at, album}` of /me/albums."""
    album = saved.get("album") or {}
    message = pb.SavedAlbum(
        id=album.get("id") or "",
        name=album.get("name") or "",
        artists=artist_names(album),
        release_date=album.get("release_date") or "",
        total_tracks=int(album.get("total_tracks") or 0),
        added_at=saved.get("added_at") or "",
    )
    if (image := first_image(album.get("images"))) is not None:
        message.image = image
    return message
