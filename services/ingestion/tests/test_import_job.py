"""Privacy-export imports end to end: UploadImport over gRPC, the import lane, real FerretDB."""

from __future__ import annotations

import asyncio
import io
import json
import random
import string
import zipfile
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from echostats.ingestion.v1 import ingestion_service_pb2 as pb
from echostats.observability.v1 import observability_service_pb2 as obs_pb
from echostats_grpc.client import error_reason
from ingestion_service.import_uploads import ImportUploads
from ingestion_service.imports_upload import ImportUploader, UploadOptions
from ingestion_service.job_ledger import JobLedgerClient
from ingestion_service.queues import PLAYS_STORED_STREAM

CHUNK = 64 * 1024
BASE = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
EXTENDED_NAME = "Streaming_History_Audio_2024_0.json"
ACCOUNT_NAME = "StreamingHistory_music_0.json"


def track_id(n: int) -> str:
    """A deterministic 22-character base62 track id."""
    rng = random.Random(n)
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(22))


def extended_row(n: int, *, at: datetime | None = None, ms: int = 200_000) -> dict[str, Any]:
    """An extended-history music row (play n ends n minutes after BASE)."""
    ended = at or BASE + timedelta(minutes=3 * n)
    return {
        "ts": ended.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "platform": "android",
        "ms_played": ms,
        "conn_country": "DE",
        "master_metadata_track_name": f"Track {n % 50}",
        "master_metadata_album_artist_name": f"Artist {n % 7}",
        "master_metadata_album_album_name": f"Album {n % 11}",
        "spotify_track_uri": f"spotify:track:{track_id(n % 50)}",
        "episode_name": None,
        "episode_show_name": None,
        "spotify_episode_uri": None,
        "reason_start": "trackdone",
        "reason_end": "trackdone",
        "shuffle": False,
        "skipped": None,
        "offline": False,
        "incognito_mode": False,
    }


def podcast_row(n: int) -> dict[str, Any]:
    """An extended-history podcast row."""
    row = extended_row(n)
    row.update(
        master_metadata_track_name=None,
        master_metadata_album_artist_name=None,
        master_metadata_album_album_name=None,
        spotify_track_uri=None,
        episode_name="Episode",
        episode_show_name="Show",
        spotify_episode_uri="spotify:episode:abc",
    )
    return row


def account_row(n: int, *, at: datetime | None = None, artist: str = "", track: str = "") -> dict:
    """An account-data music row (minute precision)."""
    ended = at or BASE + timedelta(days=30, minutes=3 * n)
    return {
        "endTime": ended.strftime("%Y-%m-%d %H:%M"),
        "artistName": artist or f"Account Artist {n % 5}",
        "trackName": track or f"Account Track {n % 40}",
        "msPlayed": 180_000,
    }


def as_json(rows: Iterable[dict[str, Any]]) -> bytes:
    """A history file's bytes."""
    return json.dumps(list(rows)).encode()


def as_zip(members: dict[str, bytes]) -> bytes:
    """An export zip holding `members`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return buffer.getvalue()


def requests(
    user_id: str, filename: str, body: bytes, *, declared_size: int = 0
) -> list[pb.UploadImportRequest]:
    """The request stream of an upload: metadata, then 64 KiB chunks."""
    meta = pb.UploadImportMetadata(
        user_id=user_id,
        filename=filename,
        content_type="application/octet-stream",
        declared_size=declared_size,
    )
    parts = [pb.UploadImportRequest(metadata=meta)]
    parts += [pb.UploadImportRequest(data=body[i : i + CHUNK]) for i in range(0, len(body), CHUNK)]
    return parts


async def upload(
    harness: Any, user_id: str, filename: str, body: bytes, **kwargs: Any
) -> pb.UploadImportResponse:
    """UploadImport over the real gRPC stream."""
    return await harness.ingestion.UploadImport(iter(requests(user_id, filename, body, **kwargs)))


async def imported(harness: Any, user_id: str, filename: str, body: bytes) -> obs_pb.Job:
    """Upload, expect a started job, wait for it to end; returns the job."""
    response = await upload(harness, user_id, filename, body)
    assert response.started and response.job_id
    assert response.items_processed == 0
    return await harness.wait_for_job(response.job_id, user_id, timeout=120)


def uploads(harness: Any) -> ImportUploads:
    """The GridFS bucket, read directly."""
    return ImportUploads(harness.database)


def user() -> str:
    """A user id nobody else uses (imports need no Spotify account)."""
    return f"import-user-{random.getrandbits(48):012x}"


@pytest.fixture
async def worker(harness: Any) -> AsyncIterator[Any]:
    """A running worker for one test."""
    handle = await harness.start_worker()
    try:
        yield handle
    finally:
        await harness.stop_workers()


async def test_each_format_is_imported_with_counters(harness: Any, worker: Any) -> None:
    user_id = user()
    rows = [extended_row(n) for n in range(120)]
    rows += [podcast_row(500), podcast_row(501), extended_row(502, ms=5_000)]
    job = await imported(harness, user_id, EXTENDED_NAME, as_json(rows))
    assert job.status == obs_pb.JOB_STATUS_COMPLETED, job.error_message
    assert job.items_total == job.items_processed == 123
    assert dict(job.counters) == {
        "imported": 120,
        "already_present": 0,
        "skipped_podcast": 2,
        "skipped_too_short": 1,
    }
    assert job.steps[-1].action == "import"
    assert job.steps[-1].detail == (
        "Imported 120 plays; 0 already present; skipped 2 podcast, 1 too short"
    )
    stored = await harness.stored_plays(user_id)
    assert len(stored) == 120
    assert {doc["source"] for doc in stored} == {"import_extended"}
    assert {doc["import_job_id"] for doc in stored} == {job.id}

    account = await imported(
        harness, user_id, ACCOUNT_NAME, as_json(account_row(n) for n in range(40))
    )
    assert account.status == obs_pb.JOB_STATUS_COMPLETED, account.error_message
    assert dict(account.counters) == {"imported": 40, "already_present": 0}
    stored = await harness.stored_plays(user_id)
    assert sum(doc["source"] == "import_account" for doc in stored) == 40

    zipped = as_zip(
        {
            f"Spotify Extended Streaming History/{EXTENDED_NAME}": as_json(
                extended_row(n) for n in range(1000, 1030)
            ),
            "Spotify Extended Streaming History/Streaming_History_Video_2024.json": as_json(
                [extended_row(9999)]
            ),
            "Spotify Extended Streaming History/ReadMeFirst.pdf": b"%PDF-1.4",
        }
    )
    job = await imported(harness, user_id, "my_spotify_data.zip", zipped)
    assert job.status == obs_pb.JOB_STATUS_COMPLETED, job.error_message
    assert job.counters["imported"] == 30
    assert len(await harness.stored_plays(user_id)) == 190
    # Nothing left in GridFS; the history page shows the imported plays.
    assert await uploads(harness).count() == 0
    page = await harness.ingestion.ListPlays(pb.ListPlaysRequest(user_id=user_id, page_size=5))
    assert page.total == 190
    # StreamPlays hands the same plays out by UTC day, oldest first, within the bounds.
    days = [d async for d in harness.ingestion.StreamPlays(pb.StreamPlaysRequest(user_id=user_id))]
    assert [d.day for d in days] == sorted({d.day for d in days})
    streamed = [p for d in days for p in d.plays]
    assert len(streamed) == 190 and len({p.id for p in streamed}) == 190
    assert all(p.played_at.ToDatetime().date().isoformat() == d.day for d in days for p in d.plays)
    middle = sorted(p.played_at.ToDatetime() for p in streamed)[50:60]
    bounded = pb.StreamPlaysRequest(user_id=user_id)
    bounded.start.FromDatetime(middle[0])
    bounded.end.FromDatetime(middle[-1])
    within = [p async for d in harness.ingestion.StreamPlays(bounded) for p in d.plays]
    assert len(within) == sum(middle[0] <= p.played_at.ToDatetime() <= middle[-1] for p in streamed)
    other = [d async for d in harness.ingestion.StreamPlays(pb.StreamPlaysRequest(user_id=user()))]
    assert other == []
    events = [
        f for _, f in await harness.redis.xrange(PLAYS_STORED_STREAM) if f["user_id"] == user_id
    ]
    assert {e["source"] for e in events} == {"import_extended", "import_account"}


async def test_reimports_and_overlaps_add_only_new_plays(harness: Any, worker: Any) -> None:
    user_id = user()
    body = as_json(extended_row(n) for n in range(200))
    for attempt in range(3):
        job = await imported(harness, user_id, EXTENDED_NAME, body)
        assert job.status == obs_pb.JOB_STATUS_COMPLETED
        expected = (
            {"imported": 200, "already_present": 0}
            if attempt == 0
            else {
                "imported": 0,
                "already_present": 200,
            }
        )
        assert dict(job.counters) == expected
        assert len(await harness.stored_plays(user_id)) == 200

    overlap = as_json(extended_row(n) for n in range(150, 260))
    job = await imported(harness, user_id, "endsong_1.json", overlap)
    assert dict(job.counters) == {"imported": 60, "already_present": 50}
    assert len(await harness.stored_plays(user_id)) == 260

    account = as_json(account_row(n) for n in range(30))
    for attempt in range(2):
        job = await imported(harness, user_id, ACCOUNT_NAME, account)
        assert job.counters["imported"] == (30 if attempt == 0 else 0)
    assert len(await harness.stored_plays(user_id)) == 290


async def test_live_synced_plays_are_stored_once(harness: Any, worker: Any) -> None:
    user_id, sim_user = await harness.sign_in()
    await harness.sim.add_plays(sim_user, 6, spacing_seconds=300)
    sync = await harness.wait_for_job(await harness.trigger(user_id), user_id)
    assert sync.status == obs_pb.JOB_STATUS_COMPLETED
    live = await harness.stored_plays(user_id)
    assert len(live) == 6

    # The same plays as an extended export (seconds, not ms) plus two new ones.
    rows = []
    for doc in live[:3]:
        row = extended_row(0, at=doc["played_at"])
        row["spotify_track_uri"] = f"spotify:track:{doc['track']['spotify_id']}"
        rows.append(row)
    rows += [extended_row(1), extended_row(2)]
    job = await imported(harness, user_id, EXTENDED_NAME, as_json(rows))
    assert dict(job.counters) == {"imported": 2, "already_present": 3}

    # Account data: the other three live plays by name and minute, and one new play.
    account = [
        account_row(
            0,
            at=doc["played_at"],
            artist=doc["track"]["artist_name"].upper(),
            track=doc["track"]["name"],
        )
        for doc in live[3:]
    ]
    account.append(account_row(7))
    job = await imported(harness, user_id, ACCOUNT_NAME, as_json(account))
    assert dict(job.counters) == {"imported": 1, "already_present": 3}
    stored = await harness.stored_plays(user_id)
    assert len(stored) == 6 + 2 + 1
    assert sum(doc["source"] == "api" for doc in stored) == 6


async def _refused(harness: Any, user_id: str, filename: str, body: bytes, **kw: Any) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await upload(harness, user_id, filename, body, **kw)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return f"{error_reason(caught.value)}: {caught.value.details()}"


async def test_bad_inputs_are_refused_and_store_nothing(harness: Any) -> None:
    user_id = user()
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"../../{EXTENDED_NAME}", as_json([extended_row(1)]))
    cases = {
        "UNSUPPORTED_MEDIA_TYPE": [("notes.txt", b"hello"), ("photo.png", b"\x89PNG")],
        "INVALID_IMPORT": [
            (EXTENDED_NAME, b"this is not json"),
            (EXTENDED_NAME, b'{"ts": "2024-01-01T00:00:00Z"}'),
            (EXTENDED_NAME, b""),
            (EXTENDED_NAME, b"[]"),
            (EXTENDED_NAME, b'[{"ts": "2024-01-01T00:00:00Z", "ms_played": 1'),
            ("export.zip", b"not a zip at all"),
        ],
        "UNSAFE_ARCHIVE": [("export.zip", bomb.getvalue())],
    }
    for reason, inputs in cases.items():
        for filename, body in inputs:
            refused = await _refused(harness, user_id, filename, body)
            assert refused.startswith(reason + ":"), (filename, body[:40], refused)
    too_large = await _refused(
        harness, user_id, EXTENDED_NAME, b"[]", declared_size=harness.settings.import_max_bytes + 1
    )
    assert too_large.startswith("PAYLOAD_TOO_LARGE:")

    # Bytes beyond the limit (a small limit, the real GridFS bucket) abort the upload.
    uploader = ImportUploader(
        uploads=uploads(harness),
        starter=None,  # type: ignore[arg-type]  # never reached
        ledger=JobLedgerClient(harness.observability),
        options=UploadOptions(max_bytes=100 * 1024),
    )

    async def stream() -> AsyncIterator[pb.UploadImportRequest]:
        for part in requests(user_id, EXTENDED_NAME, as_json(extended_row(n) for n in range(600))):
            yield part

    with pytest.raises(Exception) as caught:
        await uploader.upload(stream())
    assert getattr(caught.value, "reason", None) == "PAYLOAD_TOO_LARGE"

    assert await uploads(harness).count() == 0
    assert await harness.database["import_uploads.chunks"].count_documents({}) == 0
    assert await harness.stored_plays(user_id) == []
    jobs = await harness.observability.ListJobs(obs_pb.ListJobsRequest(user_id=user_id))
    assert list(jobs.jobs) == []


async def test_uploads_without_metadata_are_refused(harness: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.ingestion.UploadImport(iter([pb.UploadImportRequest(data=b"[]")]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_one_import_at_a_time_and_cancelled_uploads_leave_nothing(harness: Any) -> None:
    user_id = user()
    body = as_json(extended_row(n) for n in range(50))
    first = await upload(harness, user_id, EXTENDED_NAME, body)
    second = await upload(harness, user_id, EXTENDED_NAME, body)
    assert first.started and not second.started
    assert second.job_id == first.job_id and second.items_total == 50
    assert await uploads(harness).count() == 1  # the refused one was never stored
    # Even a file ingestion would refuse gets the running job: nothing is read into storage.
    third = await upload(harness, user_id, "notes.txt", b"hello")
    assert not third.started and third.job_id == first.job_id
    assert await uploads(harness).count() == 1

    # A client that goes away mid-stream leaves no upload behind.
    gate = asyncio.Event()

    async def slow() -> AsyncIterator[pb.UploadImportRequest]:
        parts = requests(user(), EXTENDED_NAME, as_json(extended_row(n) for n in range(2000)))
        for index, part in enumerate(parts):
            if index == 3:
                gate.set()
                await asyncio.sleep(30)
            yield part

    call = harness.ingestion.UploadImport(slow())
    await gate.wait()
    await asyncio.sleep(0.3)
    call.cancel()
    async with asyncio.timeout(10):
        while True:
            if await uploads(harness).count() == 1:
                break
            await asyncio.sleep(0.05)
    files = [doc["_id"] async for doc in harness.database["import_uploads.files"].find({})]
    chunks = harness.database["import_uploads.chunks"]
    assert await chunks.count_documents({"files_id": {"$nin": files}}) == 0

    await harness.start_worker()
    try:
        job = await harness.wait_for_job(first.job_id, user_id)
    finally:
        await harness.stop_workers()
    assert job.counters["imported"] == 50
    assert await uploads(harness).count() == 0


async def test_a_worker_killed_mid_import_leaves_exact_counters(harness: Any) -> None:
    options = {"import_batch_size": 250}
    user_id = user()
    total = 4000
    rows = [extended_row(n, at=BASE + timedelta(minutes=n)) for n in range(total)]
    rows += [podcast_row(n) for n in range(5)]
    first = await harness.start_worker(**options)
    started = await upload(harness, user_id, EXTENDED_NAME, as_json(rows))
    seen: list[int] = []
    async with asyncio.timeout(60):
        while True:
            job = await harness.job(started.job_id, user_id)
            if job.items_processed and (not seen or seen[-1] != job.items_processed):
                seen.append(job.items_processed)
            if len(seen) >= 3 and job.items_processed < job.items_total:
                break
            assert job.status != obs_pb.JOB_STATUS_COMPLETED, "finished before the crash"
            await asyncio.sleep(0.01)
    await first.crash()
    stored_at_crash = len(await harness.stored_plays(user_id))

    await harness.start_worker(**options)
    try:
        job = await harness.wait_for_job(started.job_id, user_id, timeout=120)
    finally:
        await harness.stop_workers()

    stored = await harness.stored_plays(user_id)
    # Progress advanced batch by batch while it ran.
    assert seen == sorted(seen) and len(set(seen)) >= 3
    assert 0 < stored_at_crash < total
    assert job.status == obs_pb.JOB_STATUS_COMPLETED, job.error_message
    assert len(stored) == len({doc["_id"] for doc in stored}) == total
    # Exact although part of the file was stored by the first delivery.
    assert dict(job.counters) == {"imported": total, "already_present": 0, "skipped_podcast": 5}
    assert job.items_processed == job.items_total == total + 5
    assert await uploads(harness).count() == 0
