"""Import parsing: kind detection, streaming reads, zip safety and the play rules (pure)."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from echostats_synthetic.exports import (
    account_data_rows,
    extended_history_rows,
    synthetic_plays,
    write_export_zip,
    write_json_array,
)
from ingestion_service.identity import play_key
from ingestion_service.imports import (
    ArchiveLimits,
    ImportedPlay,
    ImportFileKind,
    ImportRules,
    InvalidImport,
    RawRow,
    SkipReason,
    UnsafeArchive,
    UnsupportedImport,
    account_play_key,
    classify,
    count_rows,
    detect_kind,
    iter_rows,
)

EXTENDED = ImportFileKind.EXTENDED
ACCOUNT = ImportFileKind.ACCOUNT
RULES = ImportRules()
TRACK_ID = "4uLU6hMCjMI75M1A2tKUQC"


def _extended(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ts": "2024-08-02T22:44:31Z",
        "platform": "android",
        "ms_played": 181_000,
        "conn_country": "SE",
        "ip_addr": "10.0.0.1",
        "master_metadata_track_name": "Never Gonna Give You Up",
        "master_metadata_album_artist_name": "Rick Astley",
        "master_metadata_album_album_name": "Whenever You Need Somebody",
        "spotify_track_uri": f"spotify:track:{TRACK_ID}",
        "episode_name": None,
        "episode_show_name": None,
        "spotify_episode_uri": None,
        "audiobook_title": None,
        "audiobook_uri": None,
        "audiobook_chapter_uri": None,
        "audiobook_chapter_title": None,
        "reason_start": "clickrow",
        "reason_end": "trackdone",
        "shuffle": False,
        "skipped": False,
        "offline": False,
        "offline_timestamp": 1722638490.0,
        "incognito_mode": False,
    }
    row.update(overrides)
    return row


def _account(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "endTime": "2024-08-02 22:44",
        "artistName": "Rick Astley",
        "trackName": "Never Gonna Give You Up",
        "msPlayed": 118_990,
    }
    row.update(overrides)
    return row


def _write(path: Path, rows: list[Any], *, bom: bool = False) -> Path:
    data = json.dumps(rows, indent=2).encode()
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return path


def _rows(path: Path, filename: str | None = None, **kwargs: Any) -> list[RawRow]:
    return list(iter_rows(path, filename or path.name, **kwargs))


def _row(data: dict[str, Any], source: str = "Streaming_History_Audio_2024_0.json") -> RawRow:
    return RawRow(source_file=source, index=0, data=data)


# --- detect_kind -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "kind"),
    [
        ("Streaming_History_Audio_2023-2024_3.json", EXTENDED),
        ("endsong_0.json", EXTENDED),
        ("StreamingHistory_music_0.json", ACCOUNT),
        ("StreamingHistory3.json", ACCOUNT),
        ("my_export.zip", ImportFileKind.ZIP),
    ],
)
def test_detect_kind_by_name(filename: str, kind: ImportFileKind) -> None:
    head = b"PK\x03\x04rest" if kind is ImportFileKind.ZIP else b'[{"x": 1}]'
    assert detect_kind(filename, head) is kind


def test_detect_kind_by_content_for_other_json_names_and_bom() -> None:
    extended = json.dumps([_extended()]).encode()
    account = json.dumps([_account()]).encode()
    assert detect_kind("history.json", extended) is EXTENDED
    assert detect_kind("history.json", b"\xef\xbb\xbf \n" + account) is ACCOUNT
    # A head cut in the middle of the first row still names the keys seen so far.
    assert detect_kind("history.json", account[:30]) is ACCOUNT
    # Zip magic wins over a misleading name.
    assert detect_kind("history.json", b"PK\x03\x04....") is ImportFileKind.ZIP


@pytest.mark.parametrize(
    ("filename", "head", "error", "words"),
    [
        ("photo.png", b"\x89PNG\r\n", UnsupportedImport, "not a supported file type"),
        ("ReadMe.pdf", b"%PDF-1.4", UnsupportedImport, "not a supported file type"),
        ("export.zip", b"[]", InvalidImport, "not a zip archive"),
        ("history.json", b"", InvalidImport, "empty"),
        ("history.json", b"  \n", InvalidImport, "empty"),
        ("history.json", b'{"ts": 1}', InvalidImport, "expected a JSON array"),
        ("history.json", b"not json", InvalidImport, "expected a JSON array"),
        ("history.json", b"[]", InvalidImport, "no rows"),
        ("history.json", b'[{"foo": 1}]', InvalidImport, "does not look like Spotify"),
    ],
)
def test_detect_kind_refuses_with_a_clear_message(
    filename: str, head: bytes, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        detect_kind(filename, head)


# --- reading JSON files ----------------------------------------------------------------------


def test_reads_extended_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "Streaming_History_Audio_2024_0.json",
        [_extended(), _extended(ts="2024-08-02T22:50:00Z")],
    )
    rows = _rows(path)
    assert [row.index for row in rows] == [0, 1]
    assert rows[1].data["ts"] == "2024-08-02T22:50:00Z"
    assert rows[0].source_file == "Streaming_History_Audio_2024_0.json"
    # Non-integers come back as floats, not Decimals.
    assert isinstance(rows[0].data["offline_timestamp"], float)
    assert count_rows(path, path.name) == 2


def test_reads_endsong_file_with_bom(tmp_path: Path) -> None:
    rows = list(extended_history_rows(synthetic_plays(5, seed=3), seed=3, old_format=True))
    path = _write(tmp_path / "endsong_0.json", rows, bom=True)
    read = _rows(path)
    assert [row.data for row in read] == rows
    assert read[0].data["username"] and "ip_addr_decrypted" in read[0].data
    assert all(
        isinstance(classify(row, EXTENDED, ImportRules(min_ms_played=0)), ImportedPlay)
        for row in read
    )


def test_reads_account_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "StreamingHistory_music_0.json", [_account(), _account(msPlayed=5)])
    assert [row.data["msPlayed"] for row in _rows(path)] == [118_990, 5]


def test_malformed_json_mid_file_names_the_file_and_position(tmp_path: Path) -> None:
    good = json.dumps([_extended()] * 50)
    path = tmp_path / "Streaming_History_Audio_2024_1.json"
    path.write_text(good[:-1] + ', {"ts": "2024-01-01T00:00:00Z", "ms_played" 5}]')
    rows = iter_rows(path, path.name)
    assert sum(1 for _ in zip(range(50), rows, strict=False)) == 50  # the good rows stream first
    with pytest.raises(
        InvalidImport,
        match=r"Streaming_History_Audio_2024_1\.json: malformed JSON after row 50, near byte",
    ):
        next(rows)


def test_truncated_file_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "Streaming_History_Audio_2024_1.json"
    path.write_text(json.dumps([_extended()] * 3)[:-40])
    with pytest.raises(InvalidImport, match="malformed JSON"):
        count_rows(path, path.name)


def test_rows_must_be_objects(tmp_path: Path) -> None:
    path = _write(tmp_path / "StreamingHistory_music_0.json", [_account(), [1, 2]])
    with pytest.raises(
        InvalidImport, match=r"StreamingHistory_music_0\.json: row 2 is a list, not an object"
    ):
        _rows(path)


def test_top_level_object_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "StreamingHistory_music_0.json"
    path.write_text(json.dumps({"plays": [_account()]}))
    with pytest.raises(InvalidImport, match="expected a JSON array"):
        _rows(path)


@pytest.mark.parametrize("body", [b"", b"\xef\xbb\xbf  \n", b"[]", b"[\n ]\n"])
def test_empty_file_or_array_has_no_rows(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "Streaming_History_Audio_2024_0.json"
    path.write_bytes(body)
    with pytest.raises(InvalidImport, match=r"no rows|empty"):
        _rows(path)
    with pytest.raises(InvalidImport):
        count_rows(path, path.name)


def test_unsupported_upload(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(UnsupportedImport):
        _rows(path)


def test_streams_a_large_file_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "StreamingHistory_music_0.json"
    with path.open("w", encoding="utf-8") as fp:
        written = write_json_array(
            (
                {**_account(), "trackName": f"Track {i}", "msPlayed": 40_000 + i}
                for i in range(200_000)
            ),
            fp,
        )
    assert written == 200_000
    size = path.stat().st_size
    assert size > 15_000_000
    tracemalloc.start()
    try:
        rows = iter_rows(path, path.name)
        first = next(rows)
        _, peak_at_first = tracemalloc.get_traced_memory()
        count = 1 + sum(1 for _ in rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first.data["trackName"] == "Track 0"
    assert count == 200_000
    # The first row arrives after reading one buffer, not the file; the whole pass stays
    # far below the file's size (a list of its rows would take several times the file).
    assert peak_at_first < 1_000_000
    assert peak < size / 10


# --- zips ------------------------------------------------------------------------------------


def test_zip_reads_only_history_members(tmp_path: Path) -> None:
    folder = "Spotify Extended Streaming History/"
    path = _zip(
        tmp_path / "my_spotify_data.zip",
        {
            folder + "Streaming_History_Audio_2023_1.json": json.dumps(
                [_extended(ts="2023-05-01T00:00:00Z")]
            ).encode(),
            folder + "Streaming_History_Audio_2022-2023_0.json": json.dumps(
                [_extended()] * 2
            ).encode(),
            folder + "Streaming_History_Video_2022-2023.json": json.dumps([_extended()]).encode(),
            folder + "ReadMeFirst_ExtendedStreamingHistory.pdf": b"%PDF-1.4 dummy",
            "Spotify Account Data/StreamingHistory_podcast_0.json": b"[]",
            "Spotify Account Data/Userdata.json": b"{}",
        },
    )
    rows = _rows(path)
    assert [(row.source_file.rsplit("/", 1)[-1], row.index) for row in rows] == [
        ("Streaming_History_Audio_2022-2023_0.json", 0),
        ("Streaming_History_Audio_2022-2023_0.json", 1),
        ("Streaming_History_Audio_2023_1.json", 0),
    ]
    assert count_rows(path, path.name) == 3


def test_generated_export_zips_read_back(tmp_path: Path) -> None:
    plays = list(synthetic_plays(1_200, seed=5))
    extended = write_export_zip(
        tmp_path / "e.zip",
        plays=plays,
        rows_per_file=500,
        seed=5,
        podcast_rate=0.1,
        audiobook_rate=0.05,
    )
    account = write_export_zip(
        tmp_path / "a.zip", plays=plays, rows_per_file=500, kind="account", seed=5, podcast_rate=0.1
    )
    for summary in (extended, account):
        outcomes = Counter(
            "play"
            if isinstance(
                o := classify(row, ImportFileKind.ZIP, ImportRules(min_ms_played=0)), ImportedPlay
            )
            else o
            for row in iter_rows(summary.path, summary.path.name)
        )
        assert outcomes["play"] == 1_200
    assert count_rows(extended.path, "e.zip") == extended.rows
    assert count_rows(account.path, "a.zip") == 1_200  # podcast file ignored


def test_zip_without_history_files(tmp_path: Path) -> None:
    path = _zip(tmp_path / "x.zip", {"Spotify Account Data/Userdata.json": b"{}", "a.pdf": b"%PDF"})
    with pytest.raises(InvalidImport, match="no streaming history files"):
        _rows(path)


def test_zip_with_only_empty_history_files_has_no_rows(tmp_path: Path) -> None:
    path = _zip(tmp_path / "x.zip", {"StreamingHistory_music_0.json": b"[]"})
    with pytest.raises(InvalidImport, match="no rows"):
        _rows(path)


def test_corrupt_zip_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(InvalidImport, match="not a readable zip"):
        _rows(path)


def test_malformed_member_names_the_member(tmp_path: Path) -> None:
    path = _zip(
        tmp_path / "x.zip", {"MyData/endsong_0.json": b'[{"ts": "2020-01-01T00:00:00Z"}, {oops}]'}
    )
    with pytest.raises(InvalidImport, match=r"MyData/endsong_0\.json: malformed JSON after row 1"):
        _rows(path)


@pytest.mark.parametrize(
    "name",
    [
        "../Streaming_History_Audio_2024_0.json",
        "Spotify Extended Streaming History/../../etc/Streaming_History_Audio_2024_0.json",
        "/etc/cron.d/Streaming_History_Audio_2024_0.json",
        "C:/Users/x/Streaming_History_Audio_2024_0.json",
        "..\\..\\Streaming_History_Audio_2024_0.json",
        "evil/../../cron.json",
    ],
)
def test_zip_slip_names_are_refused(tmp_path: Path, name: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Streaming_History_Audio_2024_1.json", json.dumps([_extended()]))
        archive.writestr(zipfile.ZipInfo(name), b"[]")
    path = tmp_path / "x.zip"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(UnsafeArchive, match="unsafe path"):
        _rows(path)


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("Streaming_History_Audio_2024_0.json")
    link.create_system = 3
    link.external_attr = 0o120777 << 16
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(UnsafeArchive, match="symbolic link"):
        _rows(path)


def test_nested_zip_is_refused(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("Streaming_History_Audio_2024_0.json", json.dumps([_extended()]))
    path = _zip(
        tmp_path / "x.zip",
        {
            "Streaming_History_Audio_2024_1.json": json.dumps([_extended()]).encode(),
            "more.zip": inner.getvalue(),
        },
    )
    with pytest.raises(UnsafeArchive, match="nested archive"):
        _rows(path)


def test_too_many_members_is_refused(tmp_path: Path) -> None:
    members = {
        f"StreamingHistory_music_{i}.json": json.dumps([_account()]).encode() for i in range(12)
    }
    path = _zip(tmp_path / "x.zip", members)
    assert count_rows(path, path.name, limits=ArchiveLimits(max_members=12)) == 12
    with pytest.raises(UnsafeArchive, match="more than 11"):
        _rows(path, limits=ArchiveLimits(max_members=11))


def _bomb(path: Path, size: int) -> Path:
    """A zip whose history member is `[` + `size` spaces + `]`: a few KB on disk."""
    block = b" " * (1 << 20)
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("Streaming_History_Audio_2024_0.json", "w", force_zip64=True) as member,
    ):
        member.write(b"[")
        for _ in range(size >> 20):
            member.write(block)
        member.write(b"]")
    return path


def test_zip_bomb_ratio_is_refused_before_decompressing(tmp_path: Path) -> None:
    path = _bomb(tmp_path / "bomb.zip", 64 << 20)
    assert path.stat().st_size < 200_000
    with pytest.raises(UnsafeArchive, match="compression ratio above 100:1"):
        _rows(path)


def test_zip_bomb_total_is_refused(tmp_path: Path) -> None:
    path = _bomb(tmp_path / "bomb.zip", 8 << 20)
    with pytest.raises(UnsafeArchive, match="more than 1000000 bytes"):
        _rows(path, limits=ArchiveLimits(max_total_uncompressed=1_000_000, max_ratio=1e9))


def _lie_about_size(path: Path, member: str, declared: int) -> None:
    """Rewrite the uncompressed size a zip's headers declare for `member` (a lying header)."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    data = bytearray(path.read_bytes())
    real = info.file_size.to_bytes(4, "little")
    # Local header: size at offset 22; central directory entry: at offset 24.
    data[info.header_offset + 22 : info.header_offset + 26] = declared.to_bytes(4, "little")
    central = data.rfind(b"PK\x01\x02")
    assert data[central + 24 : central + 28] == real
    data[central + 24 : central + 28] = declared.to_bytes(4, "little")
    path.write_bytes(bytes(data))


def test_lying_headers_are_caught_while_reading(tmp_path: Path) -> None:
    # The headers claim 1 KB; the member really inflates to ~3 MB. The central-directory
    # checks pass; reading stops at the declared size and the member is refused.
    path = tmp_path / "liar.zip"
    body = json.dumps(
        [_extended(ts=f"2024-01-01T00:00:{i % 60:02d}Z") for i in range(4_000)]
    ).encode()
    _zip(path, {"Streaming_History_Audio_2024_0.json": body})
    _lie_about_size(path, "Streaming_History_Audio_2024_0.json", 1_000)
    with pytest.raises(UnsafeArchive, match=r"corrupt|declared"):
        _rows(path, limits=ArchiveLimits(max_ratio=1e9))


# --- rules -----------------------------------------------------------------------------------


def test_extended_music_play() -> None:
    play = classify(_row(_extended(incognito_mode=True, skipped=None)), EXTENDED, RULES)
    assert play == ImportedPlay(
        track_id=TRACK_ID,
        track_name="Never Gonna Give You Up",
        artist_name="Rick Astley",
        album_name="Whenever You Need Somebody",
        played_at=datetime(2024, 8, 2, 22, 44, 31, tzinfo=UTC),
        ms_played=181_000,
        source="import_extended",
        incognito=True,
        platform="android",
        reason_end="trackdone",
        skipped=None,
    )


def test_extended_played_at_is_the_end_and_matches_live_identity() -> None:
    play = classify(_row(_extended(ts="2024-08-02T22:44:31.900Z")), EXTENDED, RULES)
    assert isinstance(play, ImportedPlay)
    assert play.played_at.tzinfo is not None and play.played_at.utcoffset().total_seconds() == 0
    # A live play reported with milliseconds is the same play (identity floors to seconds).
    live = datetime(2024, 8, 2, 22, 44, 31, 123_000, tzinfo=UTC)
    assert play_key(TRACK_ID, play.played_at) == play_key(TRACK_ID, live)


def test_account_music_play() -> None:
    play = classify(_row(_account(), "StreamingHistory_music_0.json"), ACCOUNT, RULES)
    assert play == ImportedPlay(
        track_id=None,
        track_name="Never Gonna Give You Up",
        artist_name="Rick Astley",
        album_name=None,
        played_at=datetime(2024, 8, 2, 22, 44, tzinfo=UTC),
        ms_played=118_990,
        source="import_account",
        incognito=False,
        platform=None,
        reason_end=None,
        skipped=None,
    )


@pytest.mark.parametrize(
    ("data", "kind", "reason"),
    [
        (
            _extended(
                spotify_track_uri=None,
                master_metadata_track_name=None,
                master_metadata_album_artist_name=None,
                episode_name="Ep 1",
                episode_show_name="Show",
                spotify_episode_uri="spotify:episode:abc",
            ),
            EXTENDED,
            SkipReason.PODCAST,
        ),
        (
            _extended(
                spotify_track_uri=None,
                master_metadata_track_name=None,
                audiobook_title="Book",
                audiobook_uri="spotify:show:x",
                audiobook_chapter_uri="spotify:episode:y",
            ),
            EXTENDED,
            SkipReason.AUDIOBOOK,
        ),
        (_extended(ms_played=29_999), EXTENDED, SkipReason.TOO_SHORT),
        (_extended(ms_played=None), EXTENDED, SkipReason.MISSING_FIELDS),
        (_extended(ms_played=-5), EXTENDED, SkipReason.MISSING_FIELDS),
        (_extended(ms_played="180000"), EXTENDED, SkipReason.MISSING_FIELDS),
        (_extended(ts="yesterday"), EXTENDED, SkipReason.MISSING_FIELDS),
        ({k: v for k, v in _extended().items() if k != "ts"}, EXTENDED, SkipReason.MISSING_FIELDS),
        (
            _extended(spotify_track_uri=None, master_metadata_track_name=None),
            EXTENDED,
            SkipReason.MISSING_FIELDS,
        ),
        (_extended(master_metadata_album_artist_name=None), EXTENDED, SkipReason.MISSING_FIELDS),
        (
            _extended(spotify_track_uri="spotify:local:Artist:Album:Song:200"),
            EXTENDED,
            SkipReason.LOCAL_OR_UNKNOWN_TRACK,
        ),
        (_extended(spotify_track_uri=None), EXTENDED, SkipReason.LOCAL_OR_UNKNOWN_TRACK),
        (
            _extended(spotify_track_uri="spotify:track:short"),
            EXTENDED,
            SkipReason.LOCAL_OR_UNKNOWN_TRACK,
        ),
        (
            _account(podcastName="Show", episodeName="Ep", trackName=None, artistName=None),
            ACCOUNT,
            SkipReason.PODCAST,
        ),
        (_account(msPlayed=1_000), ACCOUNT, SkipReason.TOO_SHORT),
        (_account(endTime="2024-08-02T22:44"), ACCOUNT, SkipReason.MISSING_FIELDS),
        (_account(trackName=""), ACCOUNT, SkipReason.MISSING_FIELDS),
        ({"endTime": "2024-08-02 22:44", "msPlayed": 40_000}, ACCOUNT, SkipReason.MISSING_FIELDS),
        (
            _account(trackName="Unknown Track", artistName="Unknown Artist"),
            ACCOUNT,
            SkipReason.LOCAL_OR_UNKNOWN_TRACK,
        ),
    ],
)
def test_skip_reasons(data: dict[str, Any], kind: ImportFileKind, reason: SkipReason) -> None:
    assert classify(_row(data), kind, RULES) is reason


def test_video_rows_are_skipped() -> None:
    row = _row(
        _extended(), "Spotify Extended Streaming History/Streaming_History_Video_2023-2024.json"
    )
    assert classify(row, EXTENDED, RULES) is SkipReason.VIDEO


def test_incognito_is_configurable() -> None:
    row = _row(_extended(incognito_mode=True))
    assert isinstance(classify(row, EXTENDED, RULES), ImportedPlay)
    assert classify(row, EXTENDED, ImportRules(keep_incognito=False)) is SkipReason.INCOGNITO


def test_min_ms_played_is_configurable() -> None:
    row = _row(_extended(ms_played=10_000))
    assert classify(row, EXTENDED, RULES) is SkipReason.TOO_SHORT
    assert isinstance(classify(row, EXTENDED, ImportRules(min_ms_played=5_000)), ImportedPlay)
    assert classify(_row(_extended(ms_played=30_000)), EXTENDED, RULES) != SkipReason.TOO_SHORT


def test_zip_kind_classifies_each_row_by_its_member_or_keys() -> None:
    assert (
        classify(
            _row(_account(), "Spotify Account Data/StreamingHistory_music_1.json"),
            ImportFileKind.ZIP,
            RULES,
        ).source
        == "import_account"
    )  # type: ignore[union-attr]
    assert (
        classify(_row(_extended(), "MyData/endsong_2.json"), ImportFileKind.ZIP, RULES).source
        == "import_extended"
    )  # type: ignore[union-attr]
    assert (
        classify(_row(_account(), "odd.json"), ImportFileKind.ZIP, RULES).source == "import_account"
    )  # type: ignore[union-attr]
    assert (
        classify(_row({"foo": 1}, "odd.json"), ImportFileKind.ZIP, RULES)
        is SkipReason.MISSING_FIELDS
    )


def test_account_play_key_matches_across_sources() -> None:
    account = classify(
        _row(_account(artistName="  Rick  ASTLEY ", trackName="Never Gonna Give You Up")),
        ACCOUNT,
        RULES,
    )
    assert isinstance(account, ImportedPlay)
    live_end = datetime(2024, 8, 2, 22, 44, 59, 999_000, tzinfo=UTC)
    key = account_play_key("Rick Astley", "Never Gonna Give You Up", live_end)
    assert account_play_key(account.artist_name, account.track_name, account.played_at) == key
    assert (
        account_play_key("\uff32\uff49\uff43\uff4b Astley", "never gonna give you up", live_end)
        == key
    )  # NFKC + case
    assert (
        account_play_key(
            "Rick Astley", "Never Gonna Give You Up", datetime(2024, 8, 2, 22, 45, tzinfo=UTC)
        )
        != key
    )
    assert account_play_key("Rick Astley", "Together Forever", live_end) != key
    # Names are separated by a character names cannot hold, so shifting text does not collide.
    assert account_play_key("a b", "c", live_end) != account_play_key("a", "b c", live_end)


def test_generated_rows_cover_every_skip_reason_they_can(tmp_path: Path) -> None:
    plays = list(synthetic_plays(3_000, seed=9))
    rows = extended_history_rows(
        plays, seed=9, podcast_rate=0.05, audiobook_rate=0.05, incognito_rate=0.1
    )
    outcomes = Counter(
        "play"
        if isinstance(
            o := classify(_row(r), EXTENDED, ImportRules(keep_incognito=False)), ImportedPlay
        )
        else o
        for r in rows
    )
    assert {
        SkipReason.PODCAST,
        SkipReason.AUDIOBOOK,
        SkipReason.TOO_SHORT,
        SkipReason.INCOGNITO,
    } <= set(outcomes)
    assert outcomes["play"] > 2_000
    account = Counter(
        "play" if isinstance(o := classify(_row(r), ACCOUNT, RULES), ImportedPlay) else o
        for r in account_data_rows(plays, seed=9, podcast_rate=0.05)
    )
    assert set(account) == {"play", SkipReason.PODCAST, SkipReason.TOO_SHORT}
