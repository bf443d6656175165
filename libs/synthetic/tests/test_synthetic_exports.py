"""Synthetic privacy exports: determinism, row shapes per format, zip layout, streaming."""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import re
import resource
import tracemalloc
import zipfile
from collections import Counter
from datetime import UTC, datetime
from itertools import islice, repeat
from pathlib import Path

import pytest

from echostats_synthetic.exports import (
    account_data_rows,
    extended_history_rows,
    main,
    synthetic_plays,
    write_export_zip,
    write_json_array,
)
from echostats_synthetic.history import SyntheticPlay

EXTENDED_KEYS = [
    "ts", "platform", "ms_played", "conn_country", "ip_addr", "master_metadata_track_name",
    "master_metadata_album_artist_name", "master_metadata_album_album_name", "spotify_track_uri",
    "episode_name", "episode_show_name", "spotify_episode_uri", "audiobook_title", "audiobook_uri",
    "audiobook_chapter_uri", "audiobook_chapter_title", "reason_start", "reason_end", "shuffle",
    "skipped", "offline", "offline_timestamp", "incognito_mode",
]  # fmt: skip
ENDSONG_KEYS = [
    "ts", "username", "platform", "ms_played", "conn_country", "ip_addr_decrypted",
    "user_agent_decrypted", "master_metadata_track_name", "master_metadata_album_artist_name",
    "master_metadata_album_album_name", "spotify_track_uri", "episode_name", "episode_show_name",
    "spotify_episode_uri", "reason_start", "reason_end", "shuffle", "skipped", "offline",
    "offline_timestamp", "incognito_mode",
]  # fmt: skip
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
END_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")


@pytest.fixture(scope="module")
def plays() -> list[SyntheticPlay]:
    """2,000 plays of one listener."""
    return list(synthetic_plays(2_000, seed=21))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rows_are_deterministic(plays: list[SyntheticPlay]) -> None:
    def rows(seed: int) -> list[dict]:
        return list(
            extended_history_rows(
                plays, seed=seed, podcast_rate=0.1, audiobook_rate=0.05, incognito_rate=0.1
            )
        )

    assert rows(1) == rows(1)
    assert rows(1) != rows(2)
    assert list(account_data_rows(plays, seed=1, podcast_rate=0.1)) == list(
        account_data_rows(plays, seed=1, podcast_rate=0.1)
    )


def test_zips_are_byte_identical_for_the_same_input(
    plays: list[SyntheticPlay], tmp_path: Path
) -> None:
    a = write_export_zip(
        tmp_path / "a.zip", plays=plays, rows_per_file=700, seed=3, podcast_rate=0.05
    )
    b = write_export_zip(
        tmp_path / "b.zip", plays=plays, rows_per_file=700, seed=3, podcast_rate=0.05
    )
    assert _sha(a.path) == _sha(b.path)


def test_extended_rows_shape(plays: list[SyntheticPlay]) -> None:
    rows = list(extended_history_rows(plays, seed=4))
    assert len(rows) == len(plays)
    for play, row in zip(plays, rows, strict=True):
        assert list(row) == EXTENDED_KEYS
        assert TS.fullmatch(row["ts"])
        # ts is the END of the play, floored to the second.
        assert row["ts"] == play.played_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert row["ms_played"] == play.ms_played
        assert row["spotify_track_uri"] == f"spotify:track:{play.track.id}"
        assert row["master_metadata_track_name"] == play.track.name
        assert row["master_metadata_album_artist_name"] == play.track.artists[0].name
        assert row["master_metadata_album_album_name"] == play.track.album.name
        assert row["episode_name"] is row["spotify_episode_uri"] is row["audiobook_uri"] is None
        assert row["skipped"] is play.skipped
        assert row["reason_end"] == "trackdone" or play.skipped
        assert row["incognito_mode"] is False
        assert isinstance(row["offline_timestamp"], float)
    assert len({row["conn_country"] for row in rows}) == 1


def test_extended_rows_mix_podcasts_audiobooks_incognito(plays: list[SyntheticPlay]) -> None:
    rows = list(
        extended_history_rows(
            plays, seed=4, podcast_rate=0.1, audiobook_rate=0.05, incognito_rate=0.2
        )
    )
    music = [r for r in rows if r["spotify_track_uri"]]
    podcasts = [r for r in rows if r["spotify_episode_uri"]]
    books = [r for r in rows if r["audiobook_uri"]]
    assert len(music) == len(plays)
    assert len(music) + len(podcasts) + len(books) == len(rows)
    assert 120 < len(podcasts) < 280 and 50 < len(books) < 150
    assert all(r["master_metadata_track_name"] is None and r["episode_show_name"] for r in podcasts)
    assert all(r["spotify_track_uri"] is None and r["audiobook_title"] for r in books)
    assert 250 < sum(r["incognito_mode"] for r in music) < 550
    assert all(list(r) == EXTENDED_KEYS for r in rows)


def test_endsong_rows_shape(plays: list[SyntheticPlay]) -> None:
    rows = list(
        extended_history_rows(
            plays[:200], seed=4, old_format=True, audiobook_rate=0.5, podcast_rate=0.1
        )
    )
    assert all(list(r) == ENDSONG_KEYS for r in rows)
    assert not any(r.get("audiobook_uri") for r in rows)  # endsong exports predate audiobooks
    assert len({r["username"] for r in rows}) == 1
    assert all(
        isinstance(r["offline_timestamp"], int) and r["offline_timestamp"] > 10**12 for r in rows
    )
    assert any(" " in r["platform"] for r in rows)  # detailed platform strings


def test_account_rows_shape(plays: list[SyntheticPlay]) -> None:
    rows = list(account_data_rows(plays, seed=4, podcast_rate=0.1))
    music = [r for r in rows if "trackName" in r]
    podcasts = [r for r in rows if "podcastName" in r]
    assert len(music) == len(plays) and len(podcasts) + len(music) == len(rows)
    for play, row in zip(plays, music, strict=True):
        assert list(row) == ["endTime", "artistName", "trackName", "msPlayed"]
        assert row["endTime"] == play.played_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        assert row["msPlayed"] == play.ms_played
    assert all(list(r) == ["endTime", "podcastName", "episodeName", "msPlayed"] for r in podcasts)
    assert all(END_TIME.fullmatch(r["endTime"]) for r in rows)


def test_write_json_array_is_valid_json() -> None:
    for rows in ([], [{"a": 1}], [{"a": "é"}, {"b": None}]):
        buffer = io.StringIO()
        assert write_json_array(iter(rows), buffer) == len(rows)
        assert json.loads(buffer.getvalue()) == rows


def test_extended_zip_layout(plays: list[SyntheticPlay], tmp_path: Path) -> None:
    summary = write_export_zip(
        tmp_path / "x.zip", plays=plays, rows_per_file=600, seed=2, podcast_rate=0.05
    )
    with zipfile.ZipFile(summary.path) as archive:
        names = archive.namelist()
        folder = "Spotify Extended Streaming History/"
        audio = [n for n in names if "Streaming_History_Audio_" in n]
        assert len(audio) == 4  # 2,000 plays + ~100 podcast rows in files of 600
        for n, name in enumerate(audio):
            assert re.fullmatch(
                re.escape(folder) + rf"Streaming_History_Audio_\d{{4}}(-\d{{4}})?_{n}\.json", name
            )
            rows = json.loads(archive.read(name))
            years = name.rsplit("_", 2)[-2].split("-")
            assert rows[0]["ts"][:4] == years[0] and rows[-1]["ts"][:4] == years[-1]
            assert len(rows) == (600 if n < 3 else summary.files[name])
        assert any(
            re.fullmatch(re.escape(folder) + r"Streaming_History_Video_\d{4}(-\d{4})?\.json", n)
            for n in names
        )
        assert archive.read(folder + "ReadMeFirst_ExtendedStreamingHistory.pdf").startswith(b"%PDF")
        all_rows = [r for name in audio for r in json.loads(archive.read(name))]
    assert summary.rows == len(all_rows)
    assert sum(1 for r in all_rows if r["spotify_track_uri"]) == len(plays)
    assert [r["ts"] for r in all_rows] == sorted(r["ts"] for r in all_rows)


def test_extended_zip_without_video_and_old_format(
    plays: list[SyntheticPlay], tmp_path: Path
) -> None:
    plain = write_export_zip(tmp_path / "x.zip", plays=plays, include_video=False)
    assert not any("Video" in name for name in plain.files)
    old = write_export_zip(tmp_path / "o.zip", plays=plays, rows_per_file=1_000, old_format=True)
    assert list(old.files) == ["MyData/endsong_0.json", "MyData/endsong_1.json"]


def test_account_zip_layout(plays: list[SyntheticPlay], tmp_path: Path) -> None:
    summary = write_export_zip(
        tmp_path / "a.zip", plays=plays, rows_per_file=900, kind="account", seed=2, podcast_rate=0.1
    )
    folder = "Spotify Account Data/"
    with zipfile.ZipFile(summary.path) as archive:
        names = archive.namelist()
        music = [n for n in names if "StreamingHistory_music_" in n]
        assert music == [f"{folder}StreamingHistory_music_{n}.json" for n in range(3)]
        rows = [r for n in music for r in json.loads(archive.read(n))]
        podcasts = json.loads(archive.read(folder + "StreamingHistory_podcast_0.json"))
    assert len(rows) == len(plays) == summary.rows
    assert all("trackName" in r for r in rows)
    assert podcasts and all("podcastName" in r for r in podcasts)
    without = write_export_zip(
        tmp_path / "b.zip", plays=plays, kind="account", include_podcast_files=False
    )
    assert not any("podcast" in name for name in without.files)


def test_generators_stream() -> None:
    assert inspect.isgeneratorfunction(extended_history_rows)
    assert inspect.isgeneratorfunction(account_data_rows)
    # Rows are produced on demand, so even an endless input works.
    play = next(iter(synthetic_plays(1, seed=1)))
    assert len(list(islice(extended_history_rows(repeat(play), seed=1), 5))) == 5
    assert len(list(islice(account_data_rows(repeat(play), seed=1), 5))) == 5


def test_writer_memory_does_not_grow_with_rows(tmp_path: Path) -> None:
    play = next(iter(synthetic_plays(1, seed=1)))
    path = tmp_path / "mid.json"
    tracemalloc.start()
    try:
        with path.open("w", encoding="utf-8") as fp:
            count = write_json_array(extended_history_rows(repeat(play, 30_000), seed=1), fp)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 30_000
    assert path.stat().st_size > 15_000_000
    assert peak < 1_000_000  # a list of these rows would take ~50 MB


def test_million_rows_are_written_without_building_a_list(tmp_path: Path) -> None:
    play = next(iter(synthetic_plays(1, seed=1)))
    path = tmp_path / "big.json"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with path.open("w", encoding="utf-8") as fp:
        count = write_json_array(account_data_rows(repeat(play, 1_000_000), seed=1), fp)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert count == 1_000_000
    assert path.stat().st_size > 80_000_000
    # Loose on purpose (peak RSS is per process): a million row dicts would add ~500 MB.
    assert grown_kib < 50_000


def test_cli_writes_a_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.zip"
    assert (
        main(
            [
                "--plays",
                "1500",
                "--out",
                str(out),
                "--kind",
                "account",
                "--seed",
                "5",
                "--rows-per-file",
                "1000",
            ]
        )
        == 0
    )
    with zipfile.ZipFile(out) as archive:
        rows = sum(len(json.loads(archive.read(n))) for n in archive.namelist() if "music" in n)
    assert rows == 1_500
    assert "1500 history rows" in capsys.readouterr().out


def test_synthetic_plays_count_and_precision() -> None:
    plays = list(synthetic_plays(5_000, seed=8))
    assert len(plays) == 5_000
    assert all(p.played_at.microsecond == 0 for p in plays)
    assert plays[0].played_at >= datetime(2016, 1, 1, tzinfo=UTC)
    assert Counter(p.played_at for p in plays).most_common(1)[0][1] == 1
