"""The deterministic catalog generator: determinism, speed, ids, integrity, realism."""

from __future__ import annotations

import time
from statistics import mean

from echostats_synthetic.catalog import generate_catalog
from echostats_synthetic.ids import BASE62, is_spotify_id, stable_id, stable_seed

_build = generate_catalog.__wrapped__  # bypass the per-process cache to measure real work


def test_same_seed_same_catalog() -> None:
    first = _build(7, 2_000)
    second = _build(7, 2_000)
    assert first == second
    assert list(first.tracks) == list(second.tracks)
    assert _build(8, 2_000).track_ids() != first.track_ids()


def test_ten_thousand_tracks_under_a_second() -> None:
    started = time.perf_counter()
    catalog = _build(123, 10_000)
    elapsed = time.perf_counter() - started
    assert len(catalog.tracks) == 10_000
    assert elapsed < 1.0, f"took {elapsed:.2f}s"


def test_cache_returns_the_same_object() -> None:
    assert generate_catalog(5, 500) is generate_catalog(5, 500)


def test_ids_are_unique_base62() -> None:
    catalog = _build(99, 5_000)
    ids = [*catalog.artists, *catalog.albums, *catalog.tracks]
    assert len(ids) == len(set(ids))
    assert all(is_spotify_id(i) for i in ids)
    assert set("".join(ids)) <= set(BASE62)


def test_referential_integrity() -> None:
    catalog = _build(42, 3_000)
    for track in catalog.tracks.values():
        album = catalog.albums[track.album_id]
        assert album.track_ids[track.track_number - 1] == track.id
        assert all(a in catalog.artists for a in track.artist_ids)
        assert track.id in catalog.audio_features
        assert catalog.audio_features[track.id].duration_ms == track.duration_ms
    for album in catalog.albums.values():
        assert album.total_tracks == len(album.track_ids) >= 1
        assert album.album_type in {"album", "single", "compilation"}
        assert album.release_date_precision in {"day", "month", "year"}
        assert (
            len(album.release_date)
            == {"day": 10, "month": 7, "year": 4}[album.release_date_precision]
        )
    for artist_id, track_ids in catalog.artist_track_ids.items():
        assert all(artist_id in catalog.tracks[t].artist_ids for t in track_ids)
    assert sum(a.total_tracks for a in catalog.albums.values()) == 3_000


def test_values_are_in_spotify_ranges_and_plausible() -> None:
    catalog = _build(1, 5_000)
    features = list(catalog.audio_features.values())
    for f in features:
        for name in ("danceability", "energy", "speechiness", "acousticness",
                     "instrumentalness", "liveness", "valence"):  # fmt: skip
            assert 0.0 <= getattr(f, name) <= 1.0
        assert -1 <= f.key <= 11 and f.mode in (0, 1)
        assert -60 <= f.loudness <= 0 and 50 <= f.tempo <= 220
        assert f.time_signature in (1, 3, 4, 5)
    tracks = list(catalog.tracks.values())
    assert all(45_000 <= t.duration_ms <= 900_000 for t in tracks)
    assert 150_000 < mean(t.duration_ms for t in tracks) < 330_000
    assert all(0 <= t.popularity <= 100 for t in tracks)
    assert all(len(t.isrc) == 12 for t in tracks)
    # Genre strings look like Spotify's, and audio features follow them.
    genres = set(catalog.genres)
    assert {"indie folk", "dance pop", "hip hop"} <= genres
    assert all(g == g.lower() for g in genres)
    by_genre = {g: [] for g in ("classical", "metal")}
    for track in tracks:
        artist = catalog.artists[track.artist_ids[0]]
        for g in by_genre:
            if g in artist.genres:
                by_genre[g].append(catalog.audio_features[track.id])
    assert by_genre["classical"] and by_genre["metal"]
    assert mean(f.acousticness for f in by_genre["classical"]) > mean(
        f.acousticness for f in by_genre["metal"]
    )
    assert mean(f.energy for f in by_genre["metal"]) > mean(f.energy for f in by_genre["classical"])


def test_popularity_is_skewed() -> None:
    catalog = _build(3, 5_000)
    artists = sorted(catalog.artists.values(), key=lambda a: a.popularity, reverse=True)
    top_decile = artists[: len(artists) // 10]
    top_tracks = sum(len(catalog.artist_track_ids[a.id]) for a in top_decile)
    # The most popular tenth of artists owns far more than a tenth of the tracks.
    assert top_tracks > 0.2 * len(catalog.tracks)
    assert artists[0].followers > artists[-1].followers


def test_stable_id_is_deterministic() -> None:
    assert stable_id("account", "sim_alice", length=10) == stable_id(
        "account", "sim_alice", length=10
    )
    assert stable_id("a") != stable_id("b")
    assert is_spotify_id(stable_id("x"))


def test_stable_seed_is_deterministic() -> None:
    # sha256-based, so the same in every process (unlike hash()).
    assert stable_seed("listener", "sim_alice") == stable_seed("listener", "sim_alice")
    assert stable_seed("a", "b") != stable_seed("ab")
    assert 0 <= stable_seed("x") < 2**64
