"""Spotify JSON objects built from catalog records: tracks, artists, albums, audio features.

Shapes follow ref §2 ("Compact shapes") with the other fields Spotify sends. Every builder
takes the simulator's base URL so `href`s point back at the simulator, and the app mode so
Development Mode responses lose the fields Feb 2026 removed (`modes.strip_dev_fields`).
"""

from __future__ import annotations

from typing import Any

from echostats_synthetic.catalog import Album, Artist, AudioFeatures, Catalog
from echostats_synthetic.ids import image_set

from .config import Mode
from .modes import strip_dev_fields

OPEN_SPOTIFY = "https://open.spotify.com"
# Where the synthetic catalog is "available"; real tracks list ~180 markets.
AVAILABLE_MARKETS = (
    "AR", "AT", "AU", "BE", "BR", "CA", "CH", "DE", "DK", "ES", "FI", "FR", "GB", "IE", "IT",
    "JP", "MX", "NL", "NO", "NZ", "PL", "PT", "SE", "US",
)  # fmt: skip


def _links(kind: str, entity_id: str, base: str) -> dict[str, Any]:
    return {
        "external_urls": {"spotify": f"{OPEN_SPOTIFY}/{kind}/{entity_id}"},
        "href": f"{base}/v1/{kind}s/{entity_id}",
        "id": entity_id,
        "type": kind,
        "uri": f"spotify:{kind}:{entity_id}",
    }


def simplified_artist(artist: Artist, base: str) -> dict[str, Any]:
    """The simplified artist object inside tracks and albums."""
    return {**_links("artist", artist.id, base), "name": artist.name}


def artist_object(artist: Artist, base: str, mode: Mode) -> dict[str, Any]:
    """The full artist object (dev mode: no `followers`, no `popularity`)."""
    body = {
        **_links("artist", artist.id, base),
        "followers": {"href": None, "total": artist.followers},
        "genres": list(artist.genres),
        "images": image_set("artist", artist.id, (640, 320, 160)),
        "name": artist.name,
        "popularity": artist.popularity,
    }
    return strip_dev_fields("artist", body, mode)


def simplified_album(album: Album, catalog: Catalog, base: str, mode: Mode) -> dict[str, Any]:
    """The simplified album object inside a track (dev mode: no `available_markets`)."""
    body = {
        **_links("album", album.id, base),
        "album_type": album.album_type,
        "artists": [simplified_artist(catalog.artists[a], base) for a in album.artist_ids],
        "available_markets": list(AVAILABLE_MARKETS),
        "images": image_set("album", album.id, (640, 300, 64)),
        "is_playable": True,
        "name": album.name,
        "release_date": album.release_date,
        "release_date_precision": album.release_date_precision,
        "total_tracks": album.total_tracks,
    }
    return strip_dev_fields("album", body, mode)


def track_object(catalog: Catalog, track_id: str, base: str, mode: Mode) -> dict[str, Any]:
    """The full track object (dev mode: no `popularity`, no `available_markets`)."""
    track = catalog.tracks[track_id]
    body = {
        **_links("track", track.id, base),
        "album": simplified_album(catalog.albums[track.album_id], catalog, base, mode),
        "artists": [simplified_artist(catalog.artists[a], base) for a in track.artist_ids],
        "available_markets": list(AVAILABLE_MARKETS),
        "disc_number": track.disc_number,
        "duration_ms": track.duration_ms,
        "explicit": track.explicit,
        "external_ids": {"isrc": track.isrc},
        "is_local": False,
        "is_playable": True,
        "name": track.name,
        "popularity": track.popularity,
        # Spotify stopped sending 30-second previews in Nov 2024 (ref §4).
        "preview_url": None,
        "track_number": track.track_number,
    }
    return strip_dev_fields("track", body, mode)


def audio_features_object(features: AudioFeatures, base: str) -> dict[str, Any]:
    """The audio-features object of one track."""
    return {
        "acousticness": features.acousticness,
        "analysis_url": f"{base}/v1/audio-analysis/{features.id}",
        "danceability": features.danceability,
        "duration_ms": features.duration_ms,
        "energy": features.energy,
        "id": features.id,
        "instrumentalness": features.instrumentalness,
        "key": features.key,
        "liveness": features.liveness,
        "loudness": features.loudness,
        "mode": features.mode,
        "speechiness": features.speechiness,
        "tempo": features.tempo,
        "time_signature": features.time_signature,
        "track_href": f"{base}/v1/tracks/{features.id}",
        "type": "audio_features",
        "uri": f"spotify:track:{features.id}",
        "valence": features.valence,
    }


def context_object(context_uri: str | None, base: str) -> dict[str, Any] | None:
    """The play-history `context` for a `spotify:<type>:<id>` URI, or None."""
    if not context_uri:
        return None
    _, kind, entity_id = context_uri.split(":", 2)
    return {
        "type": kind,
        "uri": context_uri,
        "href": f"{base}/v1/{kind}s/{entity_id}",
        "external_urls": {"spotify": f"{OPEN_SPOTIFY}/{kind}/{entity_id}"},
    }
