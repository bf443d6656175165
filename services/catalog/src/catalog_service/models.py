"""Catalog documents built from Spotify's JSON: tracks, artists, albums, audio features.

Every document is keyed by its Spotify id (`_id`: the only lookup FerretDB pushes down)
and carries `doc_id`, catalog's own 24-hex id, set once on insert: the REST `id`.
A field Spotify did not send (e.g. `popularity` to a development-mode app since Feb 2026)
is left out of the `$set`, so it stays absent (null in REST) and a value stored earlier is
not overwritten with an invented one. `enriched` is True once Spotify's own object was
stored; before that a track is only what plays said about it (names, artist and album ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OPEN_SPOTIFY = "https://open.spotify.com"

FEATURE_FLOATS = (
    "danceability",
    "energy",
    "valence",
    "acousticness",
    "instrumentalness",
    "liveness",
    "speechiness",
    "tempo",
    "loudness",
)
FEATURE_INTS = ("key", "mode", "time_signature")


def external_url(kind: str, spotify_id: str, body: dict[str, Any] | None = None) -> str:
    """Spotify's `external_urls.spotify`, or the open.spotify.com URL it always has."""
    urls = (body or {}).get("external_urls")
    if isinstance(urls, dict) and isinstance(urls.get("spotify"), str):
        return urls["spotify"]
    return f"{OPEN_SPOTIFY}/{kind}/{spotify_id}"


def first_image(body: dict[str, Any]) -> str | None:
    """The largest image's URL (Spotify lists the largest first)."""
    images = body.get("images")
    if isinstance(images, list) and images and isinstance(images[0], dict):
        url = images[0].get("url")
        return url if isinstance(url, str) else None
    return None


def _present(body: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    """{our name: value} for the Spotify fields present (and not null) in `body`."""
    return {ours: body[theirs] for ours, theirs in fields.items() if body.get(theirs) is not None}


def artist_refs(items: Any) -> list[dict[str, str]]:
    """[{spotify_id, name}] from Spotify's simplified artists."""
    refs = []
    for item in items or ():
        if isinstance(item, dict) and item.get("id"):
            refs.append({"spotify_id": str(item["id"]), "name": str(item.get("name") or "")})
    return refs


def album_fields(album: dict[str, Any]) -> dict[str, Any]:
    """The album document's fields from a (simplified or full) Spotify album object."""
    fields: dict[str, Any] = {
        "name": str(album.get("name") or ""),
        "artists": artist_refs(album.get("artists")),
        "external_url": external_url("album", str(album["id"]), album),
        "enriched": True,
    }
    image = first_image(album)
    if image is not None:
        fields["image_url"] = image
    fields.update(
        _present(
            album,
            {
                "release_date": "release_date",
                "total_tracks": "total_tracks",
                "album_type": "album_type",
            },
        )
    )
    return fields


def track_fields(track: dict[str, Any]) -> dict[str, Any]:
    """The track document's fields from a full Spotify track object."""
    fields: dict[str, Any] = {
        "name": str(track.get("name") or ""),
        "artists": artist_refs(track.get("artists")),
        "external_url": external_url("track", str(track["id"]), track),
        "enriched": True,
    }
    album = track.get("album")
    if isinstance(album, dict) and album.get("id"):
        ref: dict[str, Any] = {"spotify_id": str(album["id"]), "name": str(album.get("name") or "")}
        image = first_image(album)
        if image is not None:
            ref["image_url"] = image
        if album.get("release_date"):
            ref["release_date"] = str(album["release_date"])
        fields["album"] = ref
    fields.update(
        _present(
            track,
            {"duration_ms": "duration_ms", "popularity": "popularity", "explicit": "explicit"},
        )
    )
    return fields


def artist_fields(artist: dict[str, Any]) -> dict[str, Any]:
    """The artist document's fields from a full Spotify artist object."""
    fields: dict[str, Any] = {
        "name": str(artist.get("name") or ""),
        "external_url": external_url("artist", str(artist["id"]), artist),
        "enriched": True,
    }
    image = first_image(artist)
    if image is not None:
        fields["image_url"] = image
    if isinstance(artist.get("genres"), list):
        fields["genres"] = [str(g) for g in artist["genres"]]
    if artist.get("popularity") is not None:
        fields["popularity"] = int(artist["popularity"])
    followers = artist.get("followers")
    if isinstance(followers, dict) and followers.get("total") is not None:
        fields["followers"] = int(followers["total"])
    return fields


def audio_features_fields(features: dict[str, Any]) -> dict[str, Any]:
    """The stored audio features (only the values Spotify sent)."""
    stored: dict[str, Any] = {}
    for name in FEATURE_FLOATS:
        if features.get(name) is not None:
            stored[name] = float(features[name])
    for name in FEATURE_INTS:
        if features.get(name) is not None:
            stored[name] = int(features[name])
    return stored


@dataclass(frozen=True, slots=True)
class SeenTrack:
    """A track id (or, for account-data imports, only names) that appeared in stored plays."""

    spotify_id: str
    name: str
    artist_name: str
    album_name: str
    artist_ids: tuple[str, ...] = ()
    album_id: str | None = None


def name_key(artist_name: str, track_name: str) -> str:
    """The key of a track known only by names (account-data imports carry no ids)."""
    return f"{artist_name.strip().casefold()}\x1f{track_name.strip().casefold()}"
