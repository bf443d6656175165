"""Pure parts of catalog: Spotify JSON → documents, playlist fields, recommendation ranking."""

from __future__ import annotations

from catalog_service.catalog import is_spotify_id
from catalog_service.models import artist_fields, audio_features_fields, track_fields
from catalog_service.playlists import playlist_fields
from catalog_service.recommendations import feature_distance

TRACK = {
    "id": "t" * 22,
    "name": "Song",
    "duration_ms": 200000,
    "explicit": False,
    "popularity": 40,
    "external_urls": {"spotify": "https://open.spotify.com/track/" + "t" * 22},
    "artists": [{"id": "a" * 22, "name": "Band"}],
    "album": {
        "id": "b" * 22,
        "name": "Record",
        "release_date": "2001-02-03",
        "images": [{"url": "https://i.example/640", "height": 640}],
    },
}


def test_track_fields_keep_only_what_spotify_sent() -> None:
    full = track_fields(TRACK)
    assert full["popularity"] == 40 and full["enriched"] is True
    assert full["album"] == {
        "spotify_id": "b" * 22,
        "name": "Record",
        "image_url": "https://i.example/640",
        "release_date": "2001-02-03",
    }
    # A development-mode answer has no popularity: the field stays absent (null in REST).
    dev = track_fields({k: v for k, v in TRACK.items() if k != "popularity"})
    assert "popularity" not in dev


def test_artist_fields_without_followers_and_popularity() -> None:
    fields = artist_fields({"id": "a" * 22, "name": "Band", "genres": ["indie folk"], "images": []})
    assert fields["genres"] == ["indie folk"]
    assert "followers" not in fields and "popularity" not in fields and "image_url" not in fields
    full = artist_fields(
        {"id": "a" * 22, "name": "Band", "followers": {"total": 7}, "popularity": 3}
    )
    assert full["followers"] == 7 and full["popularity"] == 3


def test_audio_features_keep_types_and_skip_nulls() -> None:
    stored = audio_features_fields({"energy": 1, "key": 5.0, "mode": None, "tempo": "120.5"})
    assert stored == {"energy": 1.0, "key": 5, "tempo": 120.5}


def test_playlist_count_block_before_and_after_the_rename() -> None:
    base = {"id": "p" * 22, "name": "Mix", "owner": {"id": "u1", "display_name": None}}
    before = playlist_fields({**base, "tracks": {"total": 12}}, 0)
    after = playlist_fields({**base, "items": {"total": 13}}, 1)
    assert before is not None and after is not None
    assert before["tracks_total"] == 12 and after["tracks_total"] == 13
    assert before["owner"] == "u1" and before["description"] is None
    assert playlist_fields({"name": "no id"}, 0) is None


def test_feature_distance_orders_nearest_first_and_unknown_last() -> None:
    targets = {"energy": 0.8, "tempo": 120.0}
    near = feature_distance({"energy": 0.75, "tempo": 118.0}, targets)
    far = feature_distance({"energy": 0.1, "tempo": 60.0}, targets)
    assert near < far < feature_distance(None, targets) == float("inf")
    assert feature_distance(None, {}) == 0.0


def test_spotify_ids() -> None:
    assert is_spotify_id("4Z8W4fKeB5YxbusRsdQVPb")
    assert not is_spotify_id("top") and not is_spotify_id("4Z8W4fKeB5YxbusRsdQVP!")
