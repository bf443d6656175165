"""Deterministic synthetic Spotify privacy exports (ref §5), for tests and benchmarks.

Renders `SyntheticPlay`s (from `history`) as the rows of the two export formats and writes
them the way Spotify ships them:

- extended streaming history: `Spotify Extended Streaming History/
  Streaming_History_Audio_<years>_<n>.json` (~15k rows each), a
  `Streaming_History_Video_<years>.json` and `ReadMeFirst_ExtendedStreamingHistory.pdf`;
  `old_format=True` gives the 2022-style `MyData/endsong_<n>.json` rows (`username`,
  `ip_addr_decrypted`, `user_agent_decrypted`, detailed platform strings, no audiobooks);
- account data: `Spotify Account Data/StreamingHistory_music_<n>.json` (minute-precision
  `endTime`, names only) beside `StreamingHistory_podcast_0.json` and other files.

Podcast, audiobook and incognito rows are mixed in at the given rates. Everything is a
generator or a streaming writer, so a million plays are written in bounded memory (one
file's worth of serialised rows at most, for the `<years>` part of its name). The same
plays and seed always give byte-identical files.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import IO, Any, Literal

from .catalog import generate_catalog
from .history import SyntheticPlay, generate_history
from .ids import random_id, stable_seed

ExportKind = Literal["extended", "account"]

EXTENDED_DIR = "Spotify Extended Streaming History"
OLD_EXTENDED_DIR = "MyData"
ACCOUNT_DIR = "Spotify Account Data"
DEFAULT_ROWS_PER_FILE = 15_000

_PLATFORMS = ("android", "ios", "windows", "osx", "web_player")
_OLD_PLATFORMS = (
    "Android OS 9 API 28 (samsung, SM-G960F)",
    "iOS 13.4 (iPhone11,8)",
    "Windows 10 (10.0.19041; x64)",
    "OS X 10.15.7 [x86 8]",
)
_USER_AGENTS = ("unknown", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", None)
_COUNTRIES = ("DE", "FR", "GB", "US", "SE", "NL", "ES")
_REASONS_START = ("trackdone", "trackdone", "trackdone", "clickrow", "playbtn", "fwdbtn", "appload")
_SKIP_REASONS_END = ("fwdbtn", "fwdbtn", "endplay", "backbtn")
_SHOWS = ("The Daily Loop", "Deep Dive Radio", "Morning Signal", "History Hour", "Code Talk")
_BOOKS = ("The Long Road", "Silent Harbour", "A Field Guide to Rivers")
_PDF_BYTES = b"%PDF-1.4\n% synthetic ReadMeFirst placeholder\n%%EOF\n"


def _ts(moment: datetime) -> str:
    """Extended-history `ts`: whole seconds (floored), `YYYY-MM-DDTHH:MM:SSZ`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _end_time(moment: datetime) -> str:
    """Account-data `endTime`: UTC, minute precision, `YYYY-MM-DD HH:MM`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _ip(rng: random.Random) -> str:
    return (
        f"{rng.randint(2, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    )


@dataclass
class _Listener:
    """Per-export constants drawn once from the seed (a listener has one country, a few IPs)."""

    rng: random.Random
    country: str
    ips: tuple[str, ...]
    username: str
    shows: tuple[tuple[str, str], ...] = field(default=())  # (name, show id)

    @classmethod
    def from_seed(cls, seed: int) -> _Listener:
        rng = random.Random(stable_seed("exports", str(seed)))
        return cls(
            rng=rng,
            country=rng.choice(_COUNTRIES),
            ips=tuple(_ip(rng) for _ in range(4)),
            username=f"user{rng.randint(10_000, 99_999)}",
            shows=tuple((name, random_id(rng)) for name in _SHOWS),
        )


def _extended_row(
    *,
    end: datetime,
    ms_played: int,
    listener: _Listener,
    old_format: bool,
    track: tuple[str | None, str | None, str | None, str | None] = (None, None, None, None),
    episode: tuple[str | None, str | None, str | None] = (None, None, None),
    audiobook: tuple[str | None, str | None, str | None, str | None] = (None, None, None, None),
    reason_end: str = "trackdone",
    skipped: bool = False,
    incognito: bool = False,
) -> dict[str, Any]:
    """One row in the field order of the real files."""
    rng = listener.rng
    offline = rng.random() < 0.05
    end_s = int(end.timestamp())
    row: dict[str, Any] = {"ts": _ts(end)}
    if old_format:
        row["username"] = listener.username
        row["platform"] = rng.choice(_OLD_PLATFORMS)
    else:
        row["platform"] = rng.choice(_PLATFORMS)
    row["ms_played"] = ms_played
    row["conn_country"] = listener.country
    if old_format:
        row["ip_addr_decrypted"] = rng.choice(listener.ips)
        row["user_agent_decrypted"] = rng.choice(_USER_AGENTS)
    else:
        row["ip_addr"] = rng.choice(listener.ips)
    (
        row["master_metadata_track_name"],
        row["master_metadata_album_artist_name"],
        row["master_metadata_album_album_name"],
        row["spotify_track_uri"],
    ) = track
    row["episode_name"], row["episode_show_name"], row["spotify_episode_uri"] = episode
    if not old_format:
        (
            row["audiobook_title"],
            row["audiobook_uri"],
            row["audiobook_chapter_uri"],
            row["audiobook_chapter_title"],
        ) = audiobook
    row["reason_start"] = rng.choice(_REASONS_START)
    row["reason_end"] = reason_end
    row["shuffle"] = rng.random() < 0.4
    row["skipped"] = skipped
    row["offline"] = offline
    # Units vary in real exports: ms in old ones, (float) seconds in recent ones.
    start_s = end_s - ms_played // 1000
    row["offline_timestamp"] = start_s * 1000 if old_format else float(start_s)
    row["incognito_mode"] = incognito
    return row


def _podcast_row(listener: _Listener, end: datetime, old_format: bool) -> dict[str, Any]:
    rng = listener.rng
    show, _ = rng.choice(listener.shows)
    episode = (f"{show} #{rng.randint(1, 400)}", show, f"spotify:episode:{random_id(rng)}")
    return _extended_row(
        end=end,
        ms_played=rng.randint(5_000, 3_600_000),
        listener=listener,
        old_format=old_format,
        episode=episode,
        reason_end=rng.choice(("trackdone", "endplay", "logout")),
    )


def _audiobook_row(listener: _Listener, end: datetime) -> dict[str, Any]:
    rng = listener.rng
    title = rng.choice(_BOOKS)
    chapter = rng.randint(1, 30)
    audiobook = (
        title,
        f"spotify:show:{random_id(rng)}",
        f"spotify:episode:{random_id(rng)}",
        f"Chapter {chapter}",
    )
    return _extended_row(
        end=end,
        ms_played=rng.randint(60_000, 1_800_000),
        listener=listener,
        old_format=False,
        audiobook=audiobook,
        reason_end="endplay",
    )


def extended_history_rows(
    plays: Iterable[SyntheticPlay],
    *,
    seed: int,
    podcast_rate: float = 0.0,
    audiobook_rate: float = 0.0,
    incognito_rate: float = 0.0,
    old_format: bool = False,
) -> Iterator[dict[str, Any]]:
    """Stream extended-history rows: one per play, plus podcast/audiobook rows at the rates.

    `ts` is the play's end, floored to the second. A podcast or audiobook row is placed
    just before the play it precedes (ending when that play started; rows stay in `ts`
    order). `old_format=True`
    renders endsong-style rows (and no audiobooks: those exports predate them).
    """
    listener = _Listener.from_seed(seed)
    rng = listener.rng
    previous_end: datetime | None = None
    for play in plays:
        started = play.played_at - timedelta(milliseconds=play.ms_played)
        # Keep rows in `ts` order, as in real files: whole seconds can make a play's start
        # fall before the previous end.
        if previous_end is not None and started < previous_end:
            started = previous_end
        previous_end = play.played_at
        if podcast_rate and rng.random() < podcast_rate:
            yield _podcast_row(listener, started, old_format)
        if audiobook_rate and not old_format and rng.random() < audiobook_rate:
            yield _audiobook_row(listener, started)
        track = play.track
        skipped = play.skipped
        yield _extended_row(
            end=play.played_at,
            ms_played=play.ms_played,
            listener=listener,
            old_format=old_format,
            track=(track.name, track.artists[0].name, track.album.name, track.uri),
            reason_end=rng.choice(_SKIP_REASONS_END) if skipped else "trackdone",
            skipped=skipped,
            incognito=bool(incognito_rate) and rng.random() < incognito_rate,
        )


def account_data_rows(
    plays: Iterable[SyntheticPlay], *, seed: int, podcast_rate: float = 0.0
) -> Iterator[dict[str, Any]]:
    """Stream account-data rows (`endTime` minute precision, UTC), plus podcast rows at a rate."""
    listener = _Listener.from_seed(seed)
    rng = listener.rng
    for play in plays:
        if podcast_rate and rng.random() < podcast_rate:
            started = play.played_at - timedelta(milliseconds=play.ms_played)
            show, _ = rng.choice(listener.shows)
            yield {
                "endTime": _end_time(started),
                "podcastName": show,
                "episodeName": f"{show} #{rng.randint(1, 400)}",
                "msPlayed": rng.randint(5_000, 3_600_000),
            }
        yield {
            "endTime": _end_time(play.played_at),
            "artistName": play.track.artists[0].name,
            "trackName": play.track.name,
            "msPlayed": play.ms_played,
        }


def _encode(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False)


def write_json_array(rows: Iterable[dict[str, Any]], fp: IO[str]) -> int:
    """Write `rows` to a text file as one JSON array, a row a line, streaming; return the count."""
    count = 0
    fp.write("[")
    for row in rows:
        fp.write(",\n  " if count else "\n  ")
        fp.write(_encode(row))
        count += 1
    fp.write("\n]\n" if count else "]\n")
    return count


@dataclass
class ExportSummary:
    """What `write_export_zip` wrote: member names and row counts."""

    path: Path
    files: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Rows written to history files (audio/music), podcast/video files excluded."""
        return sum(n for name, n in self.files.items() if _is_history_member(name))


def _is_history_member(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.startswith(("Streaming_History_Audio_", "endsong_", "StreamingHistory_music_"))


def _years(first: str, last: str) -> str:
    return first if first == last else f"{first}-{last}"


def _write_member(archive: zipfile.ZipFile, name: str, lines: Iterable[str]) -> int:
    """Write already-encoded rows as one JSON array member; return the count."""
    count = 0
    with (
        archive.open(name, "w", force_zip64=True) as raw,
        io.TextIOWrapper(raw, encoding="utf-8") as fp,
    ):
        fp.write("[")
        for line in lines:
            fp.write(",\n  " if count else "\n  ")
            fp.write(line)
            count += 1
        fp.write("\n]\n" if count else "]\n")
    return count


def _chunks(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def write_export_zip(
    path: Path | str,
    *,
    plays: Iterable[SyntheticPlay],
    rows_per_file: int = DEFAULT_ROWS_PER_FILE,
    kind: ExportKind = "extended",
    include_video: bool = True,
    include_podcast_files: bool = True,
    seed: int = 0,
    podcast_rate: float = 0.0,
    audiobook_rate: float = 0.0,
    incognito_rate: float = 0.0,
    old_format: bool = False,
) -> ExportSummary:
    """Write a real-looking export zip of `plays`; memory is bounded by one file's rows."""
    if rows_per_file < 1:
        raise ValueError("rows_per_file must be >= 1")
    if kind not in ("extended", "account"):
        raise ValueError(f"unknown export kind {kind!r}")
    path = Path(path)
    summary = ExportSummary(path=path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        if kind == "extended":
            _write_extended(
                archive,
                summary,
                plays=plays,
                rows_per_file=rows_per_file,
                include_video=include_video,
                seed=seed,
                podcast_rate=podcast_rate,
                audiobook_rate=audiobook_rate,
                incognito_rate=incognito_rate,
                old_format=old_format,
            )
        else:
            _write_account(
                archive,
                summary,
                plays=plays,
                rows_per_file=rows_per_file,
                include_podcast_files=include_podcast_files,
                seed=seed,
                podcast_rate=podcast_rate,
            )
    return summary


def _write_extended(
    archive: zipfile.ZipFile,
    summary: ExportSummary,
    *,
    plays: Iterable[SyntheticPlay],
    rows_per_file: int,
    include_video: bool,
    seed: int,
    podcast_rate: float,
    audiobook_rate: float,
    incognito_rate: float,
    old_format: bool,
) -> None:
    folder = OLD_EXTENDED_DIR if old_format else EXTENDED_DIR
    rows = extended_history_rows(
        plays,
        seed=seed,
        podcast_rate=podcast_rate,
        audiobook_rate=audiobook_rate,
        incognito_rate=incognito_rate,
        old_format=old_format,
    )
    first_year = last_year = None
    for n, chunk in enumerate(_chunks(rows, rows_per_file)):
        # The file name holds the years it covers, known only once its rows are drawn.
        first, last = chunk[0]["ts"][:4], chunk[-1]["ts"][:4]
        first_year, last_year = first_year or first, last
        if old_format:
            name = f"{folder}/endsong_{n}.json"
        else:
            name = f"{folder}/Streaming_History_Audio_{_years(first, last)}_{n}.json"
        summary.files[name] = _write_member(archive, name, map(_encode, chunk))
    if old_format:
        return
    if include_video and first_year and last_year:
        listener = _Listener.from_seed(seed + 1)
        video = [
            _podcast_row(listener, datetime(int(last_year), m, 10 + m, 20, m, tzinfo=UTC), False)
            for m in range(1, 4)
        ]
        name = f"{folder}/Streaming_History_Video_{_years(first_year, last_year)}.json"
        summary.files[name] = _write_member(archive, name, map(_encode, video))
    name = f"{folder}/ReadMeFirst_ExtendedStreamingHistory.pdf"
    archive.writestr(name, _PDF_BYTES)
    summary.files[name] = 0


def _write_account(
    archive: zipfile.ZipFile,
    summary: ExportSummary,
    *,
    plays: Iterable[SyntheticPlay],
    rows_per_file: int,
    include_podcast_files: bool,
    seed: int,
    podcast_rate: float,
) -> None:
    rows = account_data_rows(plays, seed=seed, podcast_rate=podcast_rate)
    # Podcast rows go to their own file; a zip takes one open member at a time, so they
    # wait in a temporary file (not in memory) until the music files are written.
    with tempfile.TemporaryFile("w+", encoding="utf-8") as podcasts:
        podcast_count = 0

        def music() -> Iterator[dict[str, Any]]:
            nonlocal podcast_count
            for row in rows:
                if "podcastName" in row:
                    podcasts.write(_encode(row) + "\n")
                    podcast_count += 1
                else:
                    yield row

        for n, chunk in enumerate(_chunks(music(), rows_per_file)):
            name = f"{ACCOUNT_DIR}/StreamingHistory_music_{n}.json"
            summary.files[name] = _write_member(archive, name, map(_encode, chunk))
        if include_podcast_files:
            podcasts.seek(0)
            name = f"{ACCOUNT_DIR}/StreamingHistory_podcast_0.json"
            summary.files[name] = _write_member(
                archive, name, (line.rstrip("\n") for line in podcasts)
            )
    for name, body in (
        (f"{ACCOUNT_DIR}/Userdata.json", b'{"username": "synthetic", "country": "SE"}\n'),
        (f"{ACCOUNT_DIR}/Read_Me_First.pdf", _PDF_BYTES),
    ):
        archive.writestr(name, body)
        summary.files[name] = 0


def synthetic_plays(
    count: int,
    *,
    seed: int = 7,
    start: datetime = datetime(2016, 1, 1, tzinfo=UTC),
    plays_per_day: float | None = None,
) -> Iterator[SyntheticPlay]:
    """`count` plays of listener `seed` from `start` (whole seconds, like the exports).

    Unless given, `plays_per_day` grows with `count` so a large export spans ~8 years.
    """
    per_day = plays_per_day or max(40.0, count / (8 * 365) * 1.3)
    days = int(count / per_day * 2) + 30
    history = generate_history(
        generate_catalog(),
        seed=seed,
        start=start,
        end=start + timedelta(days=days),
        plays_per_day=per_day,
        with_ms=False,
    )
    return islice(history, count)


def main(argv: list[str] | None = None) -> int:
    """CLI: write a synthetic export zip (`python -m echostats_synthetic.exports --help`)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--plays", type=int, required=True, help="music plays to generate")
    parser.add_argument("--out", type=Path, required=True, help="zip file to write")
    parser.add_argument("--kind", choices=("extended", "account"), default="extended")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rows-per-file", type=int, default=DEFAULT_ROWS_PER_FILE)
    parser.add_argument("--podcast-rate", type=float, default=0.0)
    parser.add_argument("--audiobook-rate", type=float, default=0.0)
    parser.add_argument("--incognito-rate", type=float, default=0.0)
    parser.add_argument("--old-format", action="store_true", help="endsong_<n>.json rows")
    args = parser.parse_args(argv)
    summary = write_export_zip(
        args.out,
        plays=synthetic_plays(args.plays, seed=args.seed),
        rows_per_file=args.rows_per_file,
        kind=args.kind,
        seed=args.seed,
        podcast_rate=args.podcast_rate,
        audiobook_rate=args.audiobook_rate,
        incognito_rate=args.incognito_rate,
        old_format=args.old_format,
    )
    print(f"{summary.path}: {summary.rows} history rows in {len(summary.files)} members")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
